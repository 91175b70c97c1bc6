"""Assemble tile outputs into the final image with cross-faded seams, at memory bounded by a tile.

Tiles arrive in raster order. Around every seam the two neighbours are mixed with weights that
sum to one (a raised-cosine ramp over the blend band). A pixel is quantised into the output array
as soon as no later tile can touch it; only the blend bands still waiting for their next
neighbour stay in float: one band to the right of the current tile and one band row below.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from adacode_cli.engine.tiling import Axis, Tile, TileGrid
from adacode_cli.model.config import AdaCodeConfig

Registers = dict[str, torch.Tensor]


def _ramp(length: int) -> torch.Tensor:
    """Rising weights of one blend band; the falling side of the neighbour is `1 - ramp`."""
    t = (torch.arange(length, dtype=torch.float64) + 0.5) / length
    return torch.sin(t * math.pi / 2).square().float()


def _axis_weights(axis: Axis, index: int, size: int, scale: int) -> torch.Tensor:
    """Blending weights of tile `index` over its support, in output pixels."""
    low, high = axis.support(index, size)
    weights = torch.ones((high - low) * scale)
    band = axis.blend * scale
    if band:
        if index > 0:
            weights[:band] = _ramp(band)
        if index < len(axis.seams):
            weights[-band:] = 1 - _ramp(band)
    return weights


def quantise(pixels: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """(3, H, W) float in [0, 1] (unclamped) -> H x W x 3 array of `dtype`, rounded like the
    official `tensor2img` (clamp, scale, round)."""
    pixels = pixels.clamp(0, 1).permute(1, 2, 0)
    if dtype == np.float32:
        return pixels.numpy().astype(np.float32)
    peak = float(np.iinfo(dtype).max)
    return (pixels * peak).round().numpy().astype(dtype)


class BlendCanvas:
    """The output image of one restore, filled tile by tile."""

    def __init__(self, grid: TileGrid, scale: int, height: int, width: int, dtype: np.dtype):
        self.grid, self.scale = grid, scale
        self.image = np.zeros((height, width, 3), dtype=dtype)
        band_rows = grid.rows.blend * scale
        self._below = torch.zeros(3, band_rows, grid.width * scale)
        self._below_next = torch.zeros_like(self._below)
        self._right = torch.zeros(0)

    def add(self, tile: Tile, pixels: torch.Tensor) -> None:
        """Blend the (3, tile_h * scale, tile_w * scale) float output of `tile` in."""
        s, grid = self.scale, self.grid
        top, bottom = grid.rows.support(tile.row, grid.height)
        left, right = grid.cols.support(tile.col, grid.width)
        wy = _axis_weights(grid.rows, tile.row, grid.height, s)
        wx = _axis_weights(grid.cols, tile.col, grid.width, s)
        acc = pixels[:, (top - tile.top) * s : (bottom - tile.top) * s,
                     (left - tile.left) * s : (right - tile.left) * s].float()
        acc = acc * wy[:, None] * wx[None, :]
        band_x, band_y = grid.cols.blend * s, grid.rows.blend * s
        carried = 0
        if tile.col > 0 and band_x:
            acc[:, :, :band_x] += self._right
            carried = band_x
        if tile.row > 0 and band_y:
            acc[:, :band_y, carried:] += self._below[:, :, left * s + carried : right * s]
        last_row = tile.row == len(grid.rows.starts) - 1
        last_col = tile.col == len(grid.cols.starts) - 1
        done_y = acc.shape[1] - (0 if last_row else band_y)
        done_x = acc.shape[2] - (0 if last_col else band_x)
        self._write(top * s, left * s, acc[:, :done_y, :done_x])
        if not last_col:
            self._right = acc[:, :, done_x:].clone()
        if not last_row:
            self._below_next[:, :, left * s : left * s + done_x] = acc[:, done_y:, :done_x]
        if last_col:
            self._below, self._below_next = self._below_next, self._below

    def _write(self, y: int, x: int, pixels: torch.Tensor) -> None:
        """Quantise the final `pixels` at output offset (y, x), dropping the padded margin."""
        height, width = self.image.shape[:2]
        h, w = min(pixels.shape[1], height - y), min(pixels.shape[2], width - x)
        if h > 0 and w > 0:
            self.image[y : y + h, x : x + w] = quantise(pixels[:, :h, :w], self.image.dtype)


class WeightCanvas:
    """The codebook weight map at latent resolution; each tile contributes its core."""

    def __init__(self, codebooks: int, height: int, width: int, factor: int) -> None:
        self.factor = factor
        self.map = np.zeros((codebooks, height, width), dtype=np.float32)

    def add(self, tile: Tile, weight: torch.Tensor) -> None:
        """Copy the core of the (N, tile_h / factor, tile_w / factor) weights of `tile`."""
        f = self.factor
        top, left, bottom, right = (v // f for v in tile.core)
        bottom, right = min(bottom, self.map.shape[1]), min(right, self.map.shape[2])
        if bottom <= top or right <= left:
            return
        local_top, local_left = top - tile.top // f, left - tile.left // f
        self.map[:, top:bottom, left:right] = weight[
            :, local_top : local_top + bottom - top, local_left : local_left + right - left
        ].float().numpy()


class TileOutputs:
    """Where the tiles of one restore go: the blended image and, if asked, the weight map."""

    def __init__(self, grid: TileGrid, config: AdaCodeConfig, height: int, width: int,
                 dtype: np.dtype, with_weight_map: bool) -> None:
        scale, factor = config.scale, config.latent_factor
        self.canvas = BlendCanvas(grid, scale, height * scale, width * scale, dtype)
        self.weights = None
        if with_weight_map and config.stage != "vqgan":
            self.weights = WeightCanvas(config.num_codebooks, -(-height // factor),
                                        -(-width // factor), factor)

    def emit(self, batch: list[Tile], regs: Registers) -> None:
        """Take one batch's final registers: `h` (images) and `weight` (codebook weights)."""
        images = regs["h"].float().cpu()
        for index, tile in enumerate(batch):
            self.canvas.add(tile, images[index])
        if self.weights is not None:
            maps = regs["weight"].float().cpu()
            for index, tile in enumerate(batch):
                self.weights.add(tile, maps[index])

    @property
    def weight_map(self) -> np.ndarray | None:
        return None if self.weights is None else self.weights.map
