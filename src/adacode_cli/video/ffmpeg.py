"""The ffmpeg binary of the optional `video` extra, and running it with one-line errors."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from adacode_cli.errors import AdaCodeError, ImageError

INSTALL_HINT = 'video needs the optional video extra: pip install "adacode-cli[video]"'


class VideoError(ImageError):
    """One video cannot be read or written; the batch reports it and goes on."""


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary that `imageio-ffmpeg` ships; a usage error naming the extra when
    the package is missing (image users never install it)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise AdaCodeError(INSTALL_HINT) from None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as error:
        raise AdaCodeError(f"{INSTALL_HINT} ({error})") from error


def base_command() -> list[str]:
    """ffmpeg without its banner, without reading stdin, printing only errors."""
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error"]


#: ffmpeg runs in its own session: Ctrl-C in the terminal reaches only adacode, which stops
#: cleanly and then closes the pipes itself (ffmpeg would otherwise end a segment early).
SESSION = {"start_new_session": True}


def run_process(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ffmpeg (banner off) with `arguments` to completion, its output captured as text."""
    return subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", *arguments],
        capture_output=True, text=True, errors="replace", **SESSION,
    )


def run_ffmpeg(arguments: list[str], source: Path, what: str) -> str:
    """Run ffmpeg with `arguments` to completion; its stdout as text. A failure raises
    `VideoError` naming `source` and `what` was being done, with ffmpeg's first error line."""
    done = run_process(["-v", "error", *arguments])
    if done.returncode != 0:
        raise VideoError(f"{source}: {what} failed: {first_error(done.stderr)}")
    return done.stdout


def first_error(stderr: str) -> str:
    """The most telling line of ffmpeg's error output, without its `[component @ 0x..]` tag."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return "ffmpeg reported no reason"
    line = lines[0]
    if line.startswith("[") and "] " in line:
        line = line.split("] ", 1)[1]
    return line
