"""Video files: probe, decode frames, encode segments, mux the result (no terminal, no model).

The optional `video` extra installs `imageio-ffmpeg`, whose wheel ships an ffmpeg binary; every
step runs that binary in a subprocess, frames travel as raw RGB through pipes.
"""
