"""Weight-map pictures: fixed colour per codebook, shares per position, nearest upsampling."""

from __future__ import annotations

import numpy as np
import pytest

from adacode_cli.images.weightmap import (
    SEPARATOR,
    codebook_colours,
    colorize_weight_map,
    tile_weight_maps,
    weight_map_image,
)


def test_shape_and_dtype() -> None:
    weights = np.random.default_rng(0).normal(size=(4, 3, 5)).astype(np.float32)
    picture = colorize_weight_map(weights)
    assert picture.shape == (3, 5, 3) and picture.dtype == np.uint8


@pytest.mark.parametrize("count", [1, 4, 12])
def test_all_weight_on_one_codebook_gives_its_colour(count: int) -> None:
    colours = codebook_colours(count)
    for k in range(count):
        weights = np.zeros((count, 2, 3), dtype=np.float32)
        weights[k] = 0.7 if k % 2 else -2.5  # any non-zero weight; the sign does not matter
        assert np.all(colorize_weight_map(weights) == colours[k])


def test_colours_are_distinct_and_stable() -> None:
    colours = codebook_colours(16)
    assert len({tuple(c) for c in colours}) == 16
    assert np.array_equal(codebook_colours(4), colours[:4])


def test_even_mix_blends_and_zero_weight_is_black() -> None:
    weights = np.zeros((2, 1, 2), dtype=np.float32)
    weights[:, 0, 0] = 1.0
    picture = colorize_weight_map(weights)
    expected = np.rint(codebook_colours(2).astype(float).mean(axis=0))
    assert np.array_equal(picture[0, 0], expected)
    assert picture[0, 1].tolist() == [0, 0, 0]


def test_tiles_side_by_side_in_grey() -> None:
    weights = np.zeros((3, 2, 4), dtype=np.float32)
    weights[1] = 5.0
    tiles = tile_weight_maps(weights, gap=2)
    assert tiles.shape == (2, 3 * 4 + 2 * 2, 3)
    assert np.all(tiles[:, :4] == 0) and np.all(tiles[:, 6:10] == 255)
    assert np.all(tiles[:, 4:6] == SEPARATOR)


def test_upsampled_to_output_size_by_nearest() -> None:
    weights = np.random.default_rng(1).random((4, 2, 3))
    small = colorize_weight_map(weights)
    big = weight_map_image(weights, (16, 24))
    assert big.shape == (16, 24, 3)
    assert np.array_equal(big, small.repeat(8, axis=0).repeat(8, axis=1))
    tiled = weight_map_image(weights, (16, 24), tiled=True)
    assert tiled.shape == (16, 4 * 24 + 3 * 2, 3)


def test_rejects_wrong_rank() -> None:
    with pytest.raises(ValueError, match="N x h x w"):
        colorize_weight_map(np.zeros((3, 3)))
