"""Resizing that keeps the sample type: Lanczos for pictures, nearest neighbour for masks and maps.

Shapes are (height, width), as numpy's `array.shape[:2]`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_INTEGER_MAX = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}


def resize_lanczos(pixels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """`pixels` (HxW or HxWxC; uint8, uint16 or float in [0, 1]) resized to `shape` with Lanczos.

    Each channel goes through Pillow's 32-bit float mode, so 16-bit data keeps its precision;
    the result has the input's dtype, rounded and clipped to its range.
    """
    height, width = _check_shape(shape)
    if pixels.shape[:2] == (height, width):
        return pixels.copy()
    planes = pixels[..., None] if pixels.ndim == 2 else pixels
    resized = np.stack(
        [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(planes[..., c], dtype=np.float32)).resize(
                    (width, height), Image.Resampling.LANCZOS
                )
            )
            for c in range(planes.shape[2])
        ],
        axis=2,
    )
    top = _INTEGER_MAX.get(pixels.dtype)
    if top is None:
        resized = np.clip(resized, 0.0, 1.0).astype(pixels.dtype, copy=False)
    else:
        resized = np.clip(np.rint(resized), 0, top).astype(pixels.dtype)
    return resized[..., 0] if pixels.ndim == 2 else resized


def resize_nearest(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """`array` (HxW or HxWxC, any dtype, bool included) resized to `shape` by nearest neighbour.

    Each output pixel takes the input pixel under its centre, so an integer upscale repeats
    every input pixel exactly `factor` times in each direction.
    """
    height, width = _check_shape(shape)
    rows = ((np.arange(height) + 0.5) * array.shape[0] / height).astype(np.intp)
    cols = ((np.arange(width) + 0.5) * array.shape[1] / width).astype(np.intp)
    return array[rows[:, None], cols[None, :]]


def _check_shape(shape: tuple[int, int]) -> tuple[int, int]:
    height, width = (int(n) for n in shape)
    if height < 1 or width < 1:
        raise ValueError(f"cannot resize to {height}x{width}")
    return height, width
