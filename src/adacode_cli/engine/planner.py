"""Choose how to run one image: whole, or tiles of which size, in which batches, and how many of
the network's GroupNorm statistics can be measured exactly in the memory there is.

Memory costs come from `memory.profile` (bytes per padded input pixel, measured per model and
precision). The whole image runs when it fits. Otherwise tiles get as large as the budget allows
(larger tiles waste less compute on overlaps), and the layered statistics pass measures the
statistics of as many norms as its parked registers allow; norms beyond that use statistics
measured on a downscaled copy small enough to be measured exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from adacode_cli.engine.memory import MemoryProfile
from adacode_cli.model.config import AdaCodeConfig

MAX_AUTO_BATCH = 8
MIN_ESTIMATE_SCALE = 0.125


@dataclass(frozen=True)
class Budget:
    """Bytes available for activations on the compute device and for parked registers."""

    device: int
    host: int
    shared: bool  # device and host memory are the same RAM (CPU)


@dataclass(frozen=True)
class Plan:
    """How one padded image runs."""

    tile: int | None  # tile side in input px; None: the whole image in one piece
    batch: int
    exact_segments: int  # segments run layered with exact statistics
    estimate_scale: float | None  # downscale of the copy the other norms are measured on
    per_tile_statistics: bool  # the official behaviour: every tile normalises itself
    park_on_device: bool = True  # parked registers stay on the accelerator (else host RAM)


def tile_pixels(height: int, width: int, tile: int, overlap: int, align: int) -> int:
    """Padded-input pixels covered by all tiles of a grid, overlaps counted twice."""

    def count(size: int) -> int:
        if size <= tile:
            return 1
        return math.ceil((size - overlap) / (tile - overlap))

    side = min(tile, height), min(tile, width)
    return count(height) * count(width) * side[0] * side[1]


def largest_tile(profile: MemoryProfile, budget: int, batch: int, align: int) -> int:
    """The largest aligned tile side whose straight-through batch fits `budget`."""
    side = math.isqrt(profile.stream_pixels(budget) // batch)
    return max(align, side // align * align)


def choose_plan(
    config: AdaCodeConfig,
    profile: MemoryProfile,
    padded: tuple[int, int],
    budget: Budget,
    *,
    tile: int | None,
    overlap: int,
    batch: int | None,
    statistics: str,
    device: torch.device,
    segments: int,
) -> Plan:
    """Pick a plan for a padded (height, width) input; `tile`/`batch` None mean automatic.

    Automatic tiles try sizes from the largest that fits downwards until the exact statistics
    fit beside them (on the accelerator when there is one); when none does, the largest tile
    parks its registers in host RAM, and on the CPU, where tiles and registers share the RAM,
    tiles take half the memory and the statistics measured on a downscaled copy the other half.
    """
    height, width = padded
    align = config.pad_multiple
    if tile == 0 or (tile is None and profile.stream_bytes(height * width) <= budget.device):
        return Plan(None, 1, 0, None, False)

    def tiled(side: int) -> Plan:
        return _tiled(config, profile, padded, budget, side, overlap, batch, statistics, device,
                      segments)

    smallest = overlap + align
    if tile is not None:
        return tiled(max(tile // align * align, smallest))
    side = max(largest_tile(profile, budget.device, 1, align), smallest)
    first = candidate = tiled(side)
    floor = max(4 * overlap, smallest)
    while candidate.tile is not None and not _satisfied(candidate, segments, statistics):
        side = (side * 3 // 4) // align * align
        if side < floor:
            # smaller tiles free room for registers only where both share one memory (CPU)
            if first.exact_segments == segments - 1 or not budget.shared:
                return first
            return tiled(max(largest_tile(profile, budget.device // 2, 1, align), smallest))
        candidate = tiled(side)
    return candidate


def _satisfied(plan: Plan, segments: int, statistics: str) -> bool:
    if statistics == "tile":
        return True
    return plan.exact_segments == segments - 1 and plan.park_on_device


def _tiled(
    config: AdaCodeConfig,
    profile: MemoryProfile,
    padded: tuple[int, int],
    budget: Budget,
    side: int,
    overlap: int,
    batch: int | None,
    statistics: str,
    device: torch.device,
    segments: int,
) -> Plan:
    """The plan for tiles of `side` input pixels."""
    height, width = padded
    align = config.pad_multiple
    if side >= max(height, width):
        return Plan(None, 1, 0, None, False)
    count = tile_pixels(height, width, side, overlap, align) // (
        min(side, height) * min(side, width)
    )
    size = batch or 1
    if batch is None and device.type == "cuda":
        size = max(1, min(MAX_AUTO_BATCH, count,
                          profile.stream_pixels(budget.device) // (side * side)))
    if statistics == "tile":
        return Plan(side, size, 0, None, True)
    working = profile.stream_bytes(side * side * size)
    covered = tile_pixels(height, width, side, overlap, align)
    exact = segments - 1
    room = budget.host - working if budget.shared else budget.device - working
    on_device = profile.parked_bytes(covered, exact) <= room
    if statistics == "exact" or on_device:
        return Plan(side, size, exact, None, False, on_device or budget.shared)
    room = budget.host - (working if budget.shared else 0)
    while exact > 0 and profile.parked_bytes(covered, exact) > room:
        exact -= 1
    if exact == segments - 1:
        return Plan(side, size, exact, None, False, False)
    full = profile.parked_bytes(covered, segments - 1)
    scale = min(0.9, math.sqrt(max(room, 0) / max(full, 1)))
    return Plan(side, size, exact, max(scale, MIN_ESTIMATE_SCALE), False, False)
