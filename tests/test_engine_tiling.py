"""Tile placement and seam blending."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from adacode_cli.engine.canvas import BlendCanvas
from adacode_cli.engine.tiling import plan_tiles, side_for_core
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.padding import padded_size
from engine_helpers import photo_like, psnr, tiny_restorer


@pytest.mark.parametrize(
    ("size", "tile", "overlap"), [(480, 256, 64), (1024, 192, 64), (96, 128, 32)]
)
def test_tiles_are_aligned_overlap_enough_and_cores_partition_the_image(size, tile, overlap):
    grid = plan_tiles(size, size + 32, tile, overlap, align=32, unit=4, blend=32)
    for axis, extent in ((grid.rows, size), (grid.cols, size + 32)):
        starts = axis.starts
        assert all(start % 32 == 0 for start in starts)
        assert starts[0] == 0 and starts[-1] + axis.length == extent
        assert all(b - a <= axis.length - overlap for a, b in itertools.pairwise(starts))
        cores = [axis.core(i, extent) for i in range(len(starts))]
        assert cores[0][0] == 0 and cores[-1][1] == extent
        assert all(a[1] == b[0] and a[1] % 4 == 0 for a, b in itertools.pairwise(cores))
        for i, (low, high) in enumerate(axis.support(i, extent) for i in range(len(starts))):
            assert starts[i] <= low and high <= starts[i] + axis.length


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_blending_is_exact_for_a_constant_output(dtype) -> None:
    grid = plan_tiles(320, 416, 128, 64, align=32, unit=4, blend=48)
    canvas = BlendCanvas(grid, 2, 600, 800, np.dtype(dtype))
    value = 0.6
    for tile in grid.tiles:
        canvas.add(tile, torch.full((3, tile.height * 2, tile.width * 2), value))
    expected = np.full((600, 800, 3), value, dtype=np.float32)
    if dtype == np.uint8:
        expected = np.full((600, 800, 3), round(value * 255), dtype=np.uint8)
        assert np.array_equal(canvas.image, expected)
    else:
        assert np.abs(canvas.image - expected).max() < 1e-6


def test_blending_reassembles_tiles_cut_from_one_image() -> None:
    grid = plan_tiles(192, 256, 96, 32, align=16, unit=2, blend=32)
    truth = torch.rand(3, 192 * 4, 256 * 4)
    canvas = BlendCanvas(grid, 4, 190 * 4, 250 * 4, np.dtype(np.float32))
    for tile in grid.tiles:
        canvas.add(tile, truth[:, tile.top * 4 : (tile.top + tile.height) * 4,
                              tile.left * 4 : (tile.left + tile.width) * 4])
    expected = truth[:, : 190 * 4, : 250 * 4].permute(1, 2, 0).numpy()
    assert np.abs(canvas.image - expected).max() < 1e-5


@pytest.mark.parametrize(("size", "tile", "overlap", "length"),
                         [(512, 320, 64, 288), (1056, 288, 64, 288), (512, 512, 64, 512)])
def test_tiles_are_no_longer_than_their_count_needs(size, tile, overlap, length) -> None:
    axis = plan_tiles(size, size, tile, overlap, align=32, unit=4, blend=32).rows
    assert axis.length == length
    assert all(b - a <= length - overlap for a, b in itertools.pairwise(axis.starts))


@pytest.mark.parametrize(("task", "scale"), [("sr", 2), ("sr", 4), ("inpaint", 1)])
@pytest.mark.parametrize(("height", "width"), [(480, 480), (500, 1000), (1024, 300), (97, 2000)])
@pytest.mark.parametrize("core", [96, 240, 512])
def test_tile_is_the_part_each_tile_owns_as_the_official_tile_size(
    task: str, scale: int, height: int, width: int, core: int
) -> None:
    """`--tile N`: at most ceil(side / N) tiles per axis, as the official tiling counts them,
    each at most the pixels it owns plus the overlap, rounded up to the alignment (so no more
    work along an axis than those tiles; fewer where the rounding lets fewer tiles cover it)."""
    config = AdaCodeConfig.official(task, scale)  # type: ignore[arg-type]
    align = config.pad_multiple
    padded = padded_size(height, align), padded_size(width, align)
    overlap = 2 * align
    side = side_for_core(padded, (height, width), core, overlap, align)
    grid = plan_tiles(*padded, side, overlap, align, config.latent_factor, overlap // 2)
    budget = -(-(core + overlap) // align) * align
    for axis, own in ((grid.rows, height), (grid.cols, width)):
        count = len(axis.starts)
        assert count <= math.ceil(own / core)
        assert axis.length <= budget or count == 1
        assert count * axis.length <= max(math.ceil(own / core) * budget, axis.length)


def test_a_restore_with_tile_n_cuts_as_many_tiles_as_the_official_tiling() -> None:
    image = photo_like(240, 360)
    restorer = tiny_restorer("sr", 2, tile=120, statistics="exact")
    result = restorer.restore(image)
    assert result.tiles == math.ceil(240 / 120) * math.ceil(360 / 120)
    whole = tiny_restorer("sr", 2, tile=0).restore(image).image
    assert psnr(result.image, whole) >= 40
    assert not [n for n in result.notices if "expected to show seams" in n]
