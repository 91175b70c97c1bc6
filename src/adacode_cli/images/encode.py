"""Write restored pixels in the format the file name asks for, keeping depth, alpha and metadata."""

from __future__ import annotations

import struct
from os import PathLike
from pathlib import Path

import numpy as np
from PIL import Image

from adacode_cli.atomic import atomic_path
from adacode_cli.errors import ImageError
from adacode_cli.images.depth import FLOAT_DEPTH, to_bit_depth, to_float
from adacode_cli.images.formats import (
    ALPHA_FORMATS,
    FLOAT_FORMATS,
    SIXTEEN_BIT_FORMATS,
    writable_format,
)
from adacode_cli.images.png16 import encode_png16
from adacode_cli.images.tiff16 import encode_tiff

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as Pillow's RGB -> L
_ICC_SPACE = {b"RGB ": 3, b"GRAY": 1}  # ICC header colour space -> colour channels


def write_image(
    path: str | PathLike[str],
    rgb: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    grayscale: bool = False,
    bit_depth: int = 8,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    quality: int = 95,
) -> None:
    """Write HxWx3 `rgb` (uint8, uint16 or float32 in [0, 1]) to `path`, atomically.

    The extension picks the format (png, jpg/jpeg, webp, tif/tiff). `bit_depth` FLOAT_DEPTH
    (float32 samples) is kept by TIFF and becomes 16 for PNG; 16 is kept where the format stores
    it (PNG, TIFF); JPEG and WebP are 8-bit. `alpha` (HxW) is dropped for JPEG; `grayscale`
    writes one luma channel. ICC and EXIF go wherever the format carries them, except that
    16-bit and float TIFFs carry no EXIF.
    """
    path = Path(path)
    fmt = writable_format(path)
    if bit_depth not in (8, 16, FLOAT_DEPTH):
        raise ValueError(f"bit_depth must be 8, 16 or {FLOAT_DEPTH}, not {bit_depth}")
    if bit_depth == FLOAT_DEPTH and fmt not in FLOAT_FORMATS:
        bit_depth = 16
    if fmt not in SIXTEEN_BIT_FORMATS:
        bit_depth = 8
    pixels = _assemble(rgb, alpha if fmt in ALPHA_FORMATS else None, grayscale, bit_depth)
    if fmt == "TIFF" and pixels.shape[2] == 2 and bit_depth != 8:
        # No reader we rely on opens 16-bit or float grey+alpha TIFF: store it as RGBA.
        pixels = np.concatenate([np.repeat(pixels[..., :1], 3, axis=2), pixels[..., 1:]], axis=2)
    icc_profile = _matching_profile(icc_profile, pixels.shape[2])
    try:
        with atomic_path(path) as temp:
            _save(temp, pixels, fmt, bit_depth, icc_profile, exif, quality)
    except (OSError, ValueError, struct.error) as exc:
        raise ImageError(f"{path}: cannot write image ({' '.join(str(exc).split())})") from exc


def _assemble(
    rgb: np.ndarray, alpha: np.ndarray | None, grayscale: bool, bit_depth: int
) -> np.ndarray:
    """HxWxC samples at `bit_depth`: C is 1 or 3 colour channels, plus one when alpha is kept."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 array, got shape {rgb.shape}")
    if grayscale:
        luma = np.tensordot(to_float(rgb), _LUMA, axes=([2], [0]))
        colour = to_bit_depth(luma[..., None], bit_depth)
    else:
        colour = to_bit_depth(rgb, bit_depth)
    if alpha is None:
        return np.ascontiguousarray(colour)
    if alpha.shape != rgb.shape[:2]:
        raise ValueError(f"alpha shape {alpha.shape} does not match image {rgb.shape[:2]}")
    return np.concatenate([colour, to_bit_depth(alpha, bit_depth)[..., None]], axis=2)


def _matching_profile(icc_profile: bytes | None, channels: int) -> bytes | None:
    """Drop a profile for the wrong colour space (an RGB profile on a grey file is invalid)."""
    if not icc_profile:
        return None
    colour_channels = 1 if channels <= 2 else 3
    space = _ICC_SPACE.get(icc_profile[16:20])
    return icc_profile if space in (None, colour_channels) else None


def _save(
    temp: Path,
    pixels: np.ndarray,
    fmt: str,
    bit_depth: int,
    icc_profile: bytes | None,
    exif: bytes | None,
    quality: int,
) -> None:
    if bit_depth == 16 and fmt == "PNG":
        with open(temp, "wb") as out:
            out.writelines(encode_png16(pixels, icc_profile=icc_profile, exif=exif))
        return
    if bit_depth != 8:
        temp.write_bytes(encode_tiff(pixels, icc_profile=icc_profile))
        return
    image = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
    options: dict[str, object] = {}
    if icc_profile:
        options["icc_profile"] = icc_profile
    if exif:
        options["exif"] = exif
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    image.save(temp, format=fmt, **options)
