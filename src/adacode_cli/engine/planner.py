"""Choose how to run one image: whole, or tiles of which size, in which batches, and how many of
the network's GroupNorm statistics can be measured exactly in the memory there is.

Memory costs come from `memory.profile` (bytes per padded input pixel, measured per model and
precision). The whole image runs when it fits. Otherwise tiles get as large as the budget allows
(larger tiles waste less compute on overlaps), and the layered statistics passes measure every
norm's statistics exactly, with the registers parked on the compute device when they fit there,
else in host RAM, else spilled to disk. Only the explicit `estimate` mode trades exactness for
memory: norms whose registers do not fit use statistics measured on a downscaled copy.

Exact plans also run the long-reach Swin steps once over the whole latent (`whole_latent`) where
those steps fit beside the parked registers: tiles then need only the short overlap of the
convolutions around them (`overlap`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from adacode_cli.engine.memory import MemoryProfile
from adacode_cli.engine.overlap import tile_alignment
from adacode_cli.engine.tiling import side_for_core, tile_count
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
class PlanInputs:
    """Everything a plan for one image depends on, apart from the tile side being tried."""

    config: AdaCodeConfig
    profile: MemoryProfile
    padded: tuple[int, int]  # padded input (height, width)
    budget: Budget
    overlap: int
    batch: int | None  # None: automatic
    statistics: str  # auto | exact | estimate | tile
    device: torch.device
    segments: int  # layered segments of the network's step graph
    image: tuple[int, int]  # the image's own (height, width), before padding
    whole_latent: bool = True  # exact plans may run the `whole` steps over the whole latent

    @property
    def exact(self) -> int:
        """Segments run layered when every norm gets exact image-wide statistics."""
        return self.segments - 1


@dataclass(frozen=True)
class Plan:
    """How one padded image runs; built by `whole` or `tiled`."""

    tile: int | None  # tile side in input px; None: the whole image in one piece
    batch: int = 1
    exact_segments: int = 0  # segments run layered with exact statistics
    estimate_scale: float | None = None  # downscale of the copy the other norms are measured on
    per_tile_statistics: bool = False  # the official behaviour: every tile normalises itself
    parking: str = "device"  # where layered registers wait: device | host | disk
    spill_bytes: int = 0  # disk space for registers parked on disk
    overlap: int = 0  # input px neighbouring tiles share
    whole_latent: bool = False  # the Swin steps run once over the whole latent

    @classmethod
    def whole(cls) -> Plan:
        return cls(None)

    @classmethod
    def tiled(cls, inputs: PlanInputs, side: int) -> Plan:
        """The plan for tiles of `side` input pixels: exact statistics with registers parked
        on the device, else in host RAM, else on disk (or, in `estimate` mode, the norms that
        do not fit use statistics measured on a downscaled copy)."""
        height, width = inputs.padded
        if side >= max(height, width):
            return cls.whole()
        profile, budget = inputs.profile, inputs.budget
        size = _batch_size(inputs, side)
        if inputs.statistics == "tile":
            return cls(side, size, per_tile_statistics=True, overlap=inputs.overlap)
        working = profile.stream_bytes(side * side * size)
        covered = tile_pixels(height, width, side, inputs.overlap)
        parked = profile.parked_bytes(covered, inputs.exact)
        whole = profile.whole_bytes(height * width) if inputs.whole_latent else None
        exact = {"exact_segments": inputs.exact, "overlap": inputs.overlap}
        if parked <= (budget.host if budget.shared else budget.device) - working:
            fits = whole is not None and whole + parked <= budget.device
            return cls(side, size, **exact, whole_latent=fits)
        fits = whole is not None and whole <= budget.device - (parked if budget.shared else 0)
        room = budget.host - (working if budget.shared else 0)
        if parked <= room:
            return cls(side, size, **exact, parking="host", whole_latent=fits)
        if inputs.statistics != "estimate":
            # one segment's registers, and the batch being written before the last is read
            spill = parked + profile.parked_bytes(side * side * size, inputs.exact)
            fits = whole is not None and whole <= budget.device
            return cls(side, size, **exact, parking="disk", spill_bytes=spill, whole_latent=fits)
        exact_segments = inputs.exact
        while exact_segments > 0 and profile.parked_bytes(covered, exact_segments) > room:
            exact_segments -= 1
        scale = min(0.9, math.sqrt(max(room, 0) / max(parked, 1)))
        return cls(side, size, exact_segments, max(scale, MIN_ESTIMATE_SCALE), parking="host",
                   overlap=inputs.overlap)


def _batch_size(inputs: PlanInputs, side: int) -> int:
    """The tiles per batch (`batch_size`)."""
    height, width = inputs.padded
    count = tile_count(height, side, inputs.overlap) * tile_count(width, side, inputs.overlap)
    return batch_size(inputs.batch, inputs.device, inputs.profile, inputs.budget.device,
                      side * side, count)


def batch_size(requested: int | None, device: torch.device, profile: MemoryProfile,
               budget: int, pixels: int, count: int = MAX_AUTO_BATCH) -> int:
    """Pieces of `pixels` padded input pixels per network call (the tiles of one image, or whole
    video frames): as asked, but no more than fit `budget` bytes (a batch beyond the memory
    could only fail, after decoding every piece of it); automatic on CUDA: as many as fit, up
    to MAX_AUTO_BATCH and `count`; automatic elsewhere: 1."""
    fitting = max(1, profile.stream_pixels(budget) // pixels)
    if requested is not None:
        return min(requested, fitting)
    if device.type != "cuda":
        return 1
    return min(MAX_AUTO_BATCH, count, fitting)


def tile_pixels(height: int, width: int, tile: int, overlap: int) -> int:
    """Padded-input pixels covered by all tiles of a grid, overlaps counted twice."""
    side = min(tile, height), min(tile, width)
    return tile_count(height, tile, overlap) * tile_count(width, tile, overlap) * side[0] * side[1]


def largest_tile(profile: MemoryProfile, budget: int, batch: int, align: int) -> int:
    """The largest aligned tile side whose straight-through batch fits `budget`."""
    side = math.isqrt(profile.stream_pixels(budget) // batch)
    return max(align, side // align * align)


def smallest_tile(config: AdaCodeConfig, overlap: int, whole_latent: bool = False) -> int:
    """The smallest tile side a grid allows: one alignment step beyond the overlap."""
    return overlap + tile_alignment(config, whole_latent)


def choose_plan(inputs: PlanInputs, tile: int | None) -> Plan:
    """Pick a plan; `tile` None means automatic, 0 the whole image, N tiles that each own
    about N x N input pixels (as the official `tile_size`) plus the overlap around them.

    Automatic tiles try sizes from the largest that fits downwards until the exact statistics
    fit beside them on the compute device; when none does, the largest tile parks its
    registers in host RAM or on disk. In `estimate` mode on the CPU, where tiles and registers
    share the RAM, tiles then take half the memory and statistics measured on a downscaled copy
    the other half.
    """
    height, width = inputs.padded
    profile, budget = inputs.profile, inputs.budget
    align = tile_alignment(inputs.config, inputs.whole_latent)
    if tile == 0 or (tile is None and profile.stream_bytes(height * width) <= budget.device):
        return Plan.whole()
    smallest = smallest_tile(inputs.config, inputs.overlap, inputs.whole_latent)
    if tile is not None:
        side = side_for_core(inputs.padded, inputs.image, tile, inputs.overlap, align)
        return Plan.tiled(inputs, max(side, smallest))
    side = max(largest_tile(profile, budget.device, 1, align), smallest)
    first = candidate = Plan.tiled(inputs, side)
    floor = max(4 * inputs.overlap, smallest)
    while candidate.tile is not None and not _satisfied(candidate, inputs.statistics):
        side = (side * 3 // 4) // align * align
        if side < floor:
            if first.estimate_scale is None or not budget.shared:
                return first
            half = largest_tile(profile, budget.device // 2, 1, align)
            return Plan.tiled(inputs, max(half, smallest))
        candidate = Plan.tiled(inputs, side)
    return candidate


def _satisfied(plan: Plan, statistics: str) -> bool:
    return statistics == "tile" or (plan.parking == "device" and plan.estimate_scale is None)
