"""EXIF orientation applied to pixel arrays, so 16-bit data gets it as well as Pillow images."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

ORIENTATION_TAG = 0x0112

# EXIF orientation -> how to turn the stored pixels (rows, columns, ...) upright;
# the same transforms as PIL.ImageOps.exif_transpose.
_UPRIGHT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def orientation_of(image: Image.Image) -> int:
    """The image's EXIF orientation (1..8); 1 when absent or invalid."""
    value = image.getexif().get(ORIENTATION_TAG, 1)
    return value if value in _UPRIGHT else 1


def make_upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """`pixels` (HxW or HxWxC) turned as `orientation` says; a contiguous array."""
    turn = _UPRIGHT.get(orientation)
    return np.ascontiguousarray(turn(pixels) if turn else pixels)


def reset_orientation(exif: bytes) -> bytes:
    """`exif` with its orientation tag set to 1, since the pixels are now upright."""
    parsed = Image.Exif()
    parsed.load(exif)
    if ORIENTATION_TAG in parsed:
        parsed[ORIENTATION_TAG] = 1
    return parsed.tobytes()
