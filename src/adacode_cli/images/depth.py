"""Conversions between the sample types the engine uses: uint8, uint16 and float32 in [0, 1]."""

from __future__ import annotations

import numpy as np

_MAX = {8: 255, 16: 65535}
#: The bit depth that stands for float32 samples in [0, 1] (TIFF's 32-bit float).
FLOAT_DEPTH = 32


def to_bit_depth(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    """`pixels` as uint8 (bit_depth 8), uint16 (16), rescaled exactly: 255 <-> 65535, or
    float32 in [0, 1] (FLOAT_DEPTH)."""
    if bit_depth == FLOAT_DEPTH:
        return np.clip(to_float(pixels), 0.0, 1.0)
    target = np.uint8 if bit_depth == 8 else np.uint16
    if pixels.dtype == target:
        return pixels
    if pixels.dtype == np.uint8:  # 8 -> 16: x * 257 maps 0..255 onto 0..65535 exactly
        return pixels.astype(np.uint16) * np.uint16(257)
    if pixels.dtype == np.uint16:  # 16 -> 8: nearest 8-bit value
        return ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(pixels.dtype, np.floating):
        scaled = np.clip(pixels, 0.0, 1.0) * _MAX[bit_depth]
        return np.rint(scaled).astype(target)
    raise TypeError(f"unsupported sample type {pixels.dtype}")


def white(dtype: np.dtype) -> float:
    """The brightest sample of `dtype`: 255, 65535, or 1.0 for float."""
    return 1.0 if np.issubdtype(dtype, np.floating) else float(np.iinfo(dtype).max)


def to_float(pixels: np.ndarray) -> np.ndarray:
    """`pixels` as float32 in [0, 1], whatever their integer type."""
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) / 255.0
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32) / 65535.0
    return pixels.astype(np.float32, copy=False)
