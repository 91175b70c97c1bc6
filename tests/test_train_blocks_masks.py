"""Brush-stroke inpainting masks: deterministic per seed, sane coverage, white holes."""

from __future__ import annotations

import numpy as np

from adacode_cli.train.masks import brush_stroke_mask, punch_holes


def test_masks_are_seeded() -> None:
    first = brush_stroke_mask(256, 256, np.random.default_rng(5))
    again = brush_stroke_mask(256, 256, np.random.default_rng(5))
    other = brush_stroke_mask(256, 256, np.random.default_rng(6))
    assert first.dtype == bool and first.shape == (256, 256)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_coverage_is_within_sane_bounds() -> None:
    coverage = [brush_stroke_mask(256, 256, np.random.default_rng(s)).mean() for s in range(24)]
    assert min(coverage) > 0.005 and max(coverage) < 0.95
    assert 0.1 < float(np.median(coverage)) < 0.6


def test_non_square_images_get_holes_anywhere() -> None:
    union = np.zeros((96, 320), dtype=bool)
    for seed in range(20):
        union |= brush_stroke_mask(96, 320, np.random.default_rng(seed))
    assert union[:, 240:].any()  # the official swaps axes; strokes must reach the far right


def test_holes_are_pure_white_and_the_rest_untouched() -> None:
    image = np.random.default_rng(0).integers(0, 200, (64, 80, 3)).astype(np.uint8)
    mask = brush_stroke_mask(64, 80, np.random.default_rng(1))
    holed = punch_holes(image, mask)
    assert (holed[mask] == 255).all()
    np.testing.assert_array_equal(holed[~mask], image[~mask])
    assert image.max() < 255  # the input was not modified
