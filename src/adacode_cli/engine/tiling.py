"""Where tiles go: aligned, overlapping tiles over the padded image, and the seams between them.

Tiles start on multiples of the network's alignment (`config.pad_multiple`) so every tile sees
the same stride-2 and Swin-window grid as the whole image. Between two neighbouring tiles the
seam sits in the middle of their overlap: the seams cut the padded image into *cores* (a partition,
used to sum image-wide statistics once per pixel) and a band of `blend` pixels around each seam
is where the two outputs are cross-faded.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Axis:
    """Tiles along one axis of the padded input (input pixels)."""

    starts: tuple[int, ...]
    length: int  # tile length (the padded size when one tile covers it)
    seams: tuple[int, ...]  # one seam between each pair of neighbours, on the `unit` grid
    blend: int  # width of the cross-fade band centred on each seam

    def core(self, index: int, size: int) -> tuple[int, int]:
        """The part of the axis this tile owns: from the previous seam to the next one."""
        low = self.seams[index - 1] if index > 0 else 0
        high = self.seams[index] if index < len(self.seams) else size
        return low, high

    def support(self, index: int, size: int) -> tuple[int, int]:
        """The part of the axis where this tile's output has non-zero blending weight."""
        low, high = self.core(index, size)
        half = self.blend // 2
        return (low - half if index > 0 else 0), (high + half if index < len(self.seams) else size)


def tile_count(size: int, tile: int, overlap: int) -> int:
    """The fewest tiles of `tile` pixels, neighbours sharing `overlap`, that cover `size`."""
    if size <= tile:
        return 1
    return math.ceil((size - overlap) / (tile - overlap))


def covering_length(size: int, count: int, overlap: int, align: int) -> int:
    """The shortest aligned tile length with which `count` tiles cover `size`, neighbours
    sharing at least `overlap`."""
    if count == 1:
        return size
    return -(-(size + (count - 1) * overlap) // (count * align)) * align


def side_for_core(padded: tuple[int, int], image: tuple[int, int], core: int, overlap: int,
                  align: int) -> int:
    """The tile side at which each tile owns about `core` x `core` pixels, as the official
    `tile_size`: ceil(image size / core) tiles along each axis of the `image` (height, width),
    spread over its `padded` size, each extended by the overlap it shares with its
    neighbours."""
    return max(covering_length(size, -(-own // max(core, 1)), overlap, align)
               for size, own in zip(padded, image, strict=True))


def plan_axis(size: int, tile: int, overlap: int, align: int, unit: int, blend: int) -> Axis:
    """Spread the fewest aligned tiles of at most `tile` pixels over `size` with at least
    `overlap`, as short as that many tiles allow (no work on overlap beyond what they need).

    `size`, `tile` and `overlap` are multiples of `align`; seams fall on multiples of `unit` (the
    input pixels per latent pixel) so they map to whole pixels at every resolution of the network.
    """
    count = tile_count(size, tile, overlap)
    if count == 1:
        return Axis((0,), size, (), 0)
    tile = min(tile, covering_length(size, count, overlap, align))
    slots = (size - tile) // align
    starts = tuple(round(i * slots / (count - 1)) * align for i in range(count))
    seams = tuple(
        (starts[i + 1] + starts[i] + tile) // (2 * unit) * unit for i in range(count - 1)
    )
    room = [min(seams[i] - starts[i + 1], starts[i] + tile - seams[i]) for i in range(count - 1)]
    room += [(b - a) // 2 for a, b in itertools.pairwise(seams)]
    return Axis(starts, tile, seams, min(blend // 2, *room) * 2)


@dataclass(frozen=True)
class Tile:
    """One tile: its box in the padded input and the core box it owns (both absolute, input px)."""

    row: int
    col: int
    top: int
    left: int
    height: int
    width: int
    core: tuple[int, int, int, int]  # top, left, bottom, right

    def local_core(self) -> tuple[int, int, int, int]:
        """The core box relative to the tile's own top-left corner."""
        top, left, bottom, right = self.core
        return top - self.top, left - self.left, bottom - self.top, right - self.left


@dataclass(frozen=True)
class TileGrid:
    """All tiles of one padded image, in raster order."""

    height: int
    width: int
    rows: Axis
    cols: Axis

    @property
    def tiles(self) -> list[Tile]:
        result = []
        for r, top in enumerate(self.rows.starts):
            core_top, core_bottom = self.rows.core(r, self.height)
            for c, left in enumerate(self.cols.starts):
                core_left, core_right = self.cols.core(c, self.width)
                result.append(
                    Tile(r, c, top, left, self.rows.length, self.cols.length,
                         (core_top, core_left, core_bottom, core_right))
                )
        return result

    def __len__(self) -> int:
        return len(self.rows.starts) * len(self.cols.starts)


def plan_tiles(
    height: int, width: int, tile: int, overlap: int, align: int, unit: int, blend: int
) -> TileGrid:
    """The tile grid of a padded (height, width) input; `tile` and `overlap` get rounded to
    multiples of `align` (tile at least one alignment step more than the overlap)."""
    overlap = max(0, overlap // align * align)
    tile = max(tile // align * align, overlap + align)
    return TileGrid(
        height,
        width,
        plan_axis(height, tile, overlap, align, unit, blend),
        plan_axis(width, tile, overlap, align, unit, blend),
    )
