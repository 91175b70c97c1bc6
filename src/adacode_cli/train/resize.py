"""Image resizing that reproduces the two resizers the official data pipeline calls.

The official code resizes with OpenCV (`cv2.resize`, INTER_LINEAR / INTER_CUBIC / INTER_AREA) and
with a MATLAB-style bicubic (`imresize_np`). We have neither OpenCV nor MATLAB, so both are written
here as separable weight matrices: output = Wh @ image @ Ww^T, one matrix per axis. Building the
matrices from each resizer's sampling rule (pixel-centre mapping, kernel, border handling) gives the
same numbers as the originals up to float rounding.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

Cv2Mode = Literal["bilinear", "bicubic", "area"]
CV2_MODES: tuple[Cv2Mode, ...] = ("bilinear", "bicubic", "area")


def resize_to(image: np.ndarray, height: int, width: int, mode: Cv2Mode) -> np.ndarray:
    """`cv2.resize(image, (width, height), interpolation=mode)` for an HxW or HxWxC float image."""
    in_h, in_w = image.shape[:2]
    return _resize_cv2(image, (height, width), (in_h / height, in_w / width), mode)


def resize_by(image: np.ndarray, factor: float, mode: Cv2Mode) -> np.ndarray:
    """`cv2.resize(image, None, fx=factor, fy=factor, ...)`: size rounded, sampling at 1/factor."""
    in_h, in_w = image.shape[:2]
    size = (max(1, round(in_h * factor)), max(1, round(in_w * factor)))
    return _resize_cv2(image, size, (1 / factor, 1 / factor), mode)


def imresize_matlab(image: np.ndarray, scale: float, antialias: bool = True) -> np.ndarray:
    """MATLAB `imresize(image, scale, 'bicubic')`: Keys a=-0.5, widened kernel when shrinking,
    symmetric borders, output side ceil(side * scale); what the official `imresize_np` computes."""
    in_h, in_w = image.shape[:2]
    rows = _matlab_matrix(in_h, math.ceil(in_h * scale), scale, antialias)
    cols = _matlab_matrix(in_w, math.ceil(in_w * scale), scale, antialias)
    return _apply(image, rows, cols)


def _resize_cv2(
    image: np.ndarray, size: tuple[int, int], src_per_dst: tuple[float, float], mode: Cv2Mode
) -> np.ndarray:
    in_h, in_w = image.shape[:2]
    (out_h, out_w), (step_h, step_w) = size, src_per_dst
    if mode == "area" and step_h >= 1 and step_w >= 1:
        rows, cols = _area_matrix(in_h, out_h, step_h), _area_matrix(in_w, out_w, step_w)
    elif mode == "area":  # OpenCV's INTER_AREA falls back to this linear rule if either axis grows
        rows, cols = _area_up_matrix(in_h, out_h, step_h), _area_up_matrix(in_w, out_w, step_w)
    else:
        rows = _kernel_matrix(in_h, out_h, step_h, mode)
        cols = _kernel_matrix(in_w, out_w, step_w, mode)
    return _apply(image, rows, cols)


def _apply(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """rows @ image @ cols^T per channel, as two plain matrix products (BLAS, fast)."""
    dtype = image.dtype if np.issubdtype(image.dtype, np.floating) else np.float32
    height, width = image.shape[:2]
    out_h, out_w = rows.shape[0], cols.shape[0]
    out = rows @ image.astype(np.float64).reshape(height, -1)  # (out_h, width * channels)
    out = out.reshape(out_h, width, -1).transpose(1, 0, 2).reshape(width, -1)
    out = (cols @ out).reshape(out_w, out_h, -1).transpose(1, 0, 2)
    return out.reshape(out_h, out_w, *image.shape[2:]).astype(dtype)


def _keys(distance: np.ndarray, a: float) -> np.ndarray:
    """The Keys cubic convolution kernel; OpenCV uses a=-0.75, MATLAB a=-0.5."""
    d = np.abs(distance)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def _kernel_matrix(in_len: int, out_len: int, step: float, mode: Cv2Mode) -> np.ndarray:
    """OpenCV linear/cubic: centre (i+0.5)*step-0.5, 2 or 4 taps, edge pixels replicated."""
    centre = (np.arange(out_len) + 0.5) * step - 0.5
    left = np.floor(centre)
    offsets = np.arange(0, 2) if mode == "bilinear" else np.arange(-1, 3)
    taps = left[:, None] + offsets[None, :]
    distance = centre[:, None] - taps
    if mode == "bilinear":
        weights = np.clip(1 - np.abs(distance), 0, None)
    else:
        weights = _keys(distance, -0.75)
    return _scatter(weights, np.clip(taps, 0, in_len - 1).astype(np.int64), in_len)


def _area_matrix(in_len: int, out_len: int, step: float) -> np.ndarray:
    """OpenCV INTER_AREA when shrinking: each output averages the input it covers, by overlap."""
    start = np.arange(out_len)[:, None] * step
    pixel = np.arange(in_len)[None, :]
    overlap = np.clip(np.minimum(start + step, pixel + 1) - np.maximum(start, pixel), 0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def _area_up_matrix(in_len: int, out_len: int, step: float) -> np.ndarray:
    """OpenCV INTER_AREA when enlarging: two taps, fraction (i+1) - (floor(i*step)+1)/step."""
    index = np.arange(out_len)
    left = np.floor(index * step)
    frac = (index + 1) - (left + 1) / step
    frac = np.where(frac <= 0, 0.0, frac - np.floor(frac))
    weights = np.stack([1 - frac, frac], axis=1)
    taps = np.clip(left[:, None] + np.arange(2)[None, :], 0, in_len - 1).astype(np.int64)
    return _scatter(weights, taps, in_len)


def _matlab_matrix(in_len: int, out_len: int, scale: float, antialias: bool) -> np.ndarray:
    shrink = scale < 1 and antialias
    width = 4 / scale if shrink else 4.0
    centre = (np.arange(out_len) + 1) / scale + 0.5 * (1 - 1 / scale)  # 1-based, as MATLAB
    left = np.floor(centre - width / 2)
    taps = left[:, None] + np.arange(math.ceil(width) + 2)[None, :]
    distance = centre[:, None] - taps
    weights = scale * _keys(distance * scale, -0.5) if shrink else _keys(distance, -0.5)
    weights = weights / weights.sum(axis=1, keepdims=True)
    zero_based = taps.astype(np.int64) - 1
    symmetric = np.where(zero_based < 0, -zero_based - 1, zero_based)
    symmetric = np.where(symmetric >= in_len, 2 * in_len - 1 - symmetric, symmetric)
    return _scatter(weights, np.clip(symmetric, 0, in_len - 1), in_len)  # clip: tiny inputs


def _scatter(weights: np.ndarray, taps: np.ndarray, in_len: int) -> np.ndarray:
    """Dense (out, in) matrix; taps that land on the same (clamped) pixel add up."""
    matrix = np.zeros((weights.shape[0], in_len))
    np.add.at(matrix, (np.repeat(np.arange(weights.shape[0]), weights.shape[1]), taps.ravel()),
              weights.ravel())
    return matrix
