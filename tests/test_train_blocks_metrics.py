"""PSNR / SSIM on Y against hand-computed and independently computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adacode_cli.train.metrics import psnr_y, rgb_to_y, ssim_y


def grey(value: float, size: int = 24) -> np.ndarray:
    return np.full((size, size, 3), value, dtype=np.float64)


def test_rgb_to_y_is_bt601_studio_range() -> None:
    assert rgb_to_y(grey(0, 1))[0, 0] == pytest.approx(16.0)
    assert rgb_to_y(grey(255, 1))[0, 0] == pytest.approx(235.0)
    red = np.array([[[255, 0, 0]]], dtype=np.uint8)
    assert rgb_to_y(red)[0, 0] == pytest.approx(16 + 65.481)


def test_identical_images_give_infinite_psnr_and_unit_ssim() -> None:
    image = np.random.default_rng(0).integers(0, 256, (32, 40, 3)).astype(np.uint8)
    assert psnr_y(image, image) == math.inf
    assert ssim_y(image, image) == pytest.approx(1.0)


def test_known_mse_gives_known_psnr() -> None:
    # Grey levels differing by 2550/219 differ by exactly 10 in Y: MSE 100.
    psnr = psnr_y(grey(2550 / 219), grey(0))
    assert psnr == pytest.approx(10 * math.log10(255**2 / 100))
    assert psnr_y(grey(73).astype(np.uint8), grey(0).astype(np.uint8)) == pytest.approx(
        20 * math.log10(255 / (73 * 219 / 255))
    )


def test_crop_border_ignores_the_frame() -> None:
    base = np.random.default_rng(1).integers(0, 256, (32, 32, 3)).astype(np.uint8)
    framed = base.copy()
    framed[:4] = 0
    framed[:, -4:] = 255
    assert psnr_y(framed, base, crop_border=4) == math.inf
    assert psnr_y(framed, base, crop_border=0) < 30
    assert ssim_y(framed, base, crop_border=4) == pytest.approx(1.0)


def brute_force_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """The SSIM definition, one 11x11 window at a time."""
    offsets = np.arange(11) - 5
    window = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * 1.5**2))
    window /= window.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            a, b = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mu_a, mu_b = (window * a).sum(), (window * b).sum()
            var_a = (window * (a - mu_a) ** 2).sum()
            var_b = (window * (b - mu_b) ** 2).sum()
            cov = (window * (a - mu_a) * (b - mu_b)).sum()
            values.append(((2 * mu_a * mu_b + c1) * (2 * cov + c2))
                          / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)))
    return float(np.mean(values))


def test_ssim_matches_brute_force_definition() -> None:
    rng = np.random.default_rng(2)
    reference = rng.integers(0, 256, (24, 27, 3)).astype(np.uint8)
    restored = np.clip(reference + rng.normal(0, 20, reference.shape), 0, 255).astype(np.uint8)
    expected = brute_force_ssim(rgb_to_y(restored[2:-2, 2:-2]), rgb_to_y(reference[2:-2, 2:-2]))
    assert ssim_y(restored, reference, crop_border=2) == pytest.approx(expected, rel=1e-9)
    assert 0 < expected < 1


def test_bad_shapes_are_value_errors() -> None:
    with pytest.raises(ValueError, match="HxWx3"):
        psnr_y(np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(ValueError, match="11x11"):
        ssim_y(grey(0, 16), grey(0, 16))  # 8x8 left after cropping 4
