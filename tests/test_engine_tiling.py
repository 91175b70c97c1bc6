"""Tile placement and seam blending."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from adacode_cli.engine.canvas import BlendCanvas
from adacode_cli.engine.tiling import plan_tiles


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
