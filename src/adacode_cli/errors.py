"""Errors a user can cause: the CLI prints their message as one line and exits with `exit_code`."""

from __future__ import annotations


class AdaCodeError(Exception):
    """Base class for every error the user can cause or fix (exit code 2 unless a subclass says)."""

    exit_code = 2


class CheckpointError(AdaCodeError):
    """A weights file that is unreadable, truncated, unsafe or of the wrong architecture."""


class WeightsError(AdaCodeError):
    """The registry, the cache or a download failed in a way the user can act on."""


class ImageError(AdaCodeError):
    """One input image cannot be read or written; a batch reports it and goes on."""

    exit_code = 1
