"""Thin Typer commands: parse arguments, call the engine/weights/train layers, print results."""
