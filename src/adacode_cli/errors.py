"""Errors a user can cause, and the exit codes of every command (defined here once).

The CLI prints an error's message as one line and exits with its `exit_code`; README's "Exit
codes" section documents the same table.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What an `adacode` process's exit status means."""

    OK = 0
    SOME_FAILED = 1  # some inputs failed; the others were done
    USAGE = 2  # nothing was done: a usage or setup error the user can fix
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)


class AdaCodeError(Exception):
    """Base class for every error the user can cause or fix (exit code 2 unless a subclass says)."""

    exit_code = ExitCode.USAGE


class CheckpointError(AdaCodeError):
    """A weights file that is unreadable, truncated, unsafe or of the wrong architecture."""


class WeightsError(AdaCodeError):
    """The registry, the cache or a download failed in a way the user can act on."""


class ImageError(AdaCodeError):
    """One input image cannot be read or written; a batch reports it and goes on."""

    exit_code = ExitCode.SOME_FAILED
