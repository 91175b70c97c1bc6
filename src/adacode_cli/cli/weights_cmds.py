"""Placeholder: this area's commands are registered here (see cli/app.py)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
