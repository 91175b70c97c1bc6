"""Helpers for the video tests: clips made with the ffmpeg binary of the `video` extra, and
frames and audio packets read back with it, independently of our video layer."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def run(*arguments: str) -> str:
    done = subprocess.run([ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", *arguments],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def make_clip(
    path: Path, *, frames: int = 12, size: tuple[int, int] = (64, 48), rate: int = 12,
    video: tuple[str, ...] = ("-c:v", "libx264", "-pix_fmt", "yuv420p"),
    audio: bool = True, before_input: tuple[str, ...] = (),
) -> Path:
    """A moving test pattern of `frames` frames at `rate` fps, with a 440 Hz tone as long as the
    video when `audio` (AAC)."""
    seconds = frames / rate
    tone = ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"] if audio else []
    run("-y", *before_input, "-f", "lavfi",
        "-i", f"testsrc2=size={size[0]}x{size[1]}:rate={rate}",
        *tone, "-frames:v", str(frames), *video, *(["-c:a", "aac"] if audio else []), str(path))
    return path


def read_frames(path: Path, size: tuple[int, int]) -> np.ndarray:
    """Every frame of `path` as N x H x W x 3 uint8 (stored orientation)."""
    raw = subprocess.run(
        [ffmpeg(), "-v", "error", "-noautorotate", "-i", str(path), "-map", "0:v:0",
         "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout
    width, height = size
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def extract_frame(path: Path, index: int, target: Path) -> Path:
    """Frame `index` of `path` as a PNG image."""
    run("-y", "-i", str(path), "-vf", f"select=eq(n\\,{index})", "-fps_mode", "passthrough",
        "-frames:v", "1", str(target))
    return target


def packets(path: Path, kind: str) -> tuple[Fraction, list[tuple[int, str, str]]]:
    """(time base, [(duration, size, checksum)]) of the first `kind` ('v' or 'a') stream's
    packets, copied without decoding."""
    text = run("-i", str(path), "-map", f"0:{kind}:0", "-c", "copy", "-f", "framecrc", "-")
    base = Fraction(1)
    found = []
    for line in text.splitlines():
        if line.startswith("#tb"):
            base = Fraction(line.split(":", 1)[1].strip())
        elif line and not line.startswith("#"):
            fields = [field.strip() for field in line.split(",")]
            found.append((int(fields[3]), fields[4], fields[5]))
    return base, found


def duration(path: Path, kind: str) -> Fraction:
    """Summed packet durations of the first `kind` stream, in seconds."""
    base, found = packets(path, kind)
    return sum((entry[0] for entry in found), 0) * base


def stream_header(path: Path) -> str:
    """ffmpeg's description of `path` (streams, rotation)."""
    done = subprocess.run([ffmpeg(), "-hide_banner", "-nostdin", "-i", str(path)],
                          capture_output=True, text=True, check=False)
    return done.stderr
