"""Resizing keeps the sample type: Lanczos for pictures, nearest neighbour for masks and maps."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from adacode_cli.images.resize import resize_lanczos, resize_nearest


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_lanczos_keeps_dtype_and_flat_colour(dtype: type) -> None:
    value = {np.uint8: 200, np.uint16: 40000, np.float32: 0.25}[dtype]
    pixels = np.full((5, 7, 3), value, dtype=dtype)
    resized = resize_lanczos(pixels, (13, 3))
    assert resized.shape == (13, 3, 3) and resized.dtype == dtype
    assert np.all(resized == value)


def test_lanczos_keeps_16_bit_precision() -> None:
    ramp = np.linspace(1000, 1010, 40).astype(np.uint16)[None, :].repeat(4, axis=0)
    resized = resize_lanczos(ramp, (4, 80))
    assert len(np.unique(resized)) == 11  # all the steps survive, none collapse to 8 bits


def test_lanczos_matches_pillow_for_8_bit() -> None:
    # Smooth content: on noise Pillow's 8-bit path clips between its two passes and we do not.
    y, x = np.mgrid[0:16, 0:12]
    pixels = np.stack([y * 15, x * 20, (x + y) * 9], axis=2).astype(np.uint8)
    expected = np.asarray(Image.fromarray(pixels).resize((24, 32), Image.Resampling.LANCZOS))
    assert np.abs(resize_lanczos(pixels, (32, 24)).astype(int) - expected).max() <= 1


def test_lanczos_clips_overshoot() -> None:
    edge = np.zeros((4, 8), dtype=np.float32)
    edge[:, 4:] = 1.0
    resized = resize_lanczos(edge, (4, 32))
    assert resized.min() >= 0.0 and resized.max() <= 1.0
    assert resized.ndim == 2


def test_nearest_repeats_pixels_for_integer_factors() -> None:
    labels = np.arange(6).reshape(2, 3)
    assert np.array_equal(resize_nearest(labels, (4, 6)), labels.repeat(2, 0).repeat(2, 1))


def test_nearest_on_bool_and_downscale() -> None:
    mask = np.zeros((4, 4), dtype=bool)
    mask[1, 1] = True
    small = resize_nearest(mask, (2, 2))
    assert small.dtype == bool and small.tolist() == [[True, False], [False, False]]


def test_bad_target_shape() -> None:
    with pytest.raises(ValueError):
        resize_nearest(np.zeros((2, 2)), (0, 3))
