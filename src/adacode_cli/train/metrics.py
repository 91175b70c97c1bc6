"""PSNR and SSIM on the luma channel, the way super-resolution papers (and basicsr) report them.

Both images are converted to Y of ITU-R BT.601 YCbCr ([16, 235] on the 8-bit scale), `crop_border`
pixels are dropped from every side (the official option files use 4), and SSIM uses an 11x11
Gaussian window of sigma 1.5 over valid positions only, with C1 = (0.01 * 255)^2 and
C2 = (0.03 * 255)^2: basicsr's `calculate_psnr` / `calculate_ssim(test_y_channel=True)`.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_CROP_BORDER = 4
LPIPS_MIN_SIDE = 16  # VGG16 halves the image four times before its last LPIPS layer
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0  # R, G, B on the 8-bit scale
_WINDOW, _SIGMA = 11, 1.5


def psnr_label(crop_border: int = DEFAULT_CROP_BORDER) -> str:
    """How every PSNR adacode prints is measured, for the line or heading that shows it."""
    return f"PSNR-Y ({crop_border} px border)"


def min_scored_side(crop_border: int = DEFAULT_CROP_BORDER) -> int:
    """The smallest image side that PSNR, SSIM (after the border crop) and LPIPS can score."""
    return max(2 * crop_border + _WINDOW, LPIPS_MIN_SIDE)


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """HxWx3 RGB on the 8-bit scale (uint8 or float) -> HxW float64 luma in [16, 235]."""
    return image.astype(np.float64) @ _Y_WEIGHTS + 16.0


def psnr_y(
    restored: np.ndarray, reference: np.ndarray, crop_border: int = DEFAULT_CROP_BORDER
) -> float:
    """PSNR in dB between the Y channels (peak 255); inf for identical images. The one PSNR
    of adacode: `recon`, `eval` and training validation all report this number."""
    diff = _cropped_y(restored, crop_border) - _cropped_y(reference, crop_border)
    mse = float(np.mean(diff**2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ssim_y(
    restored: np.ndarray, reference: np.ndarray, crop_border: int = DEFAULT_CROP_BORDER
) -> float:
    """Mean SSIM between the Y channels; 1 for identical images."""
    x, y = _cropped_y(restored, crop_border), _cropped_y(reference, crop_border)
    if min(x.shape) < _WINDOW:
        raise ValueError(f"SSIM needs at least {_WINDOW}x{_WINDOW} pixels after cropping")
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_x, mu_y = _gaussian_valid(x), _gaussian_valid(y)
    var_x = _gaussian_valid(x * x) - mu_x**2
    var_y = _gaussian_valid(y * y) - mu_y**2
    cov = _gaussian_valid(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return float(ssim_map.mean())


def _cropped_y(image: np.ndarray, crop_border: int) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {image.shape}")
    if min(image.shape[:2]) <= 2 * crop_border:
        raise ValueError(f"{image.shape[1]}x{image.shape[0]} leaves no pixel inside a "
                         f"{crop_border} px border")
    if crop_border:
        image = image[crop_border:-crop_border, crop_border:-crop_border]
    return rgb_to_y(image)


def _gaussian_valid(plane: np.ndarray) -> np.ndarray:
    """Separable 11x11 Gaussian filter, keeping only positions where the window fits."""
    offsets = np.arange(_WINDOW) - _WINDOW // 2
    taps = np.exp(-(offsets**2) / (2 * _SIGMA**2))
    taps /= taps.sum()
    rows = np.lib.stride_tricks.sliding_window_view(plane, _WINDOW, axis=0) @ taps
    return np.lib.stride_tricks.sliding_window_view(rows, _WINDOW, axis=1) @ taps
