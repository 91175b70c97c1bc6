"""Which file extensions are images we read, and which of them we can write."""

from __future__ import annotations

from pathlib import Path

from adacode_cli.errors import AdaCodeError

#: Extensions collected from folders and globs (lower case, with the dot).
READABLE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"})

#: Pillow decoders `read_image` lets open a file: the formats above (the JPEG decoder also opens
#: camera MPO files). Others are refused rather than handed to, say, Ghostscript for an EPS file.
PILLOW_READ_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "DIB", "GIF")

#: Extension -> Pillow format name for the formats `write_image` produces.
WRITABLE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

#: Formats that store an alpha channel / 16 bits per sample / 32-bit float samples.
ALPHA_FORMATS = frozenset({"PNG", "WEBP", "TIFF"})
SIXTEEN_BIT_FORMATS = frozenset({"PNG", "TIFF"})
FLOAT_FORMATS = frozenset({"TIFF"})


def is_image_path(path: Path) -> bool:
    """True for a name with an image extension we read (case-insensitive)."""
    return path.suffix.lower() in READABLE_EXTENSIONS


def writable_format(path: Path) -> str:
    """The Pillow format for `path`'s extension; a usage error for anything else."""
    fmt = WRITABLE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        choices = ", ".join(sorted(WRITABLE_FORMATS))
        kind = path.suffix or "extension-less"
        raise AdaCodeError(f"{path}: cannot write {kind} files (use {choices})")
    return fmt
