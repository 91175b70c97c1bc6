"""How much memory a tile costs, and how much there is.

The per-pixel cost is measured, not guessed: the step graph of the network runs once on the meta
device (shapes only, no compute, no memory) under a dispatch mode that follows every tensor the
network allocates and frees, per model configuration and precision. That gives the peak of live
activation bytes of a straight-through tile and the bytes each tile keeps parked between
layered segments, both per padded input pixel. The `whole` steps (Swin stacks run once over an
image's latent) are counted apart, at latents of several chunks (`SwinLayers` runs large maps in
chunks): fixed bytes (a chunk's temporaries) plus bytes per pixel. On CUDA the straight-through
cost is measured again on the device itself, where kernels allocate workspaces the meta count
cannot see.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import weakref
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from adacode_cli.engine import profile_cache
from adacode_cli.engine.graph import Registers, Step, network_steps, run_steps, segments
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import build_network
from adacode_cli.model.swin import SwinLayers, chunk_tokens

# Measured on the CPU (peak RSS growth of a whole-image run at x4 and x2, fp32 and bf16, inputs
# of 271-400 px): 1.12-1.24x the live bytes the dispatcher sees (allocator slack, kernel
# workspaces and temporaries inside kernels), plus a fixed runtime part. Parked registers are
# plain tensors.
STREAM_SLACK = 1.3
RUNTIME_OVERHEAD = 256 * 2**20
PARKED_SLACK = 1.1


class _LiveBytes(TorchDispatchMode):
    """Peak bytes of storages allocated inside the mode and still referenced, apart from those
    of `external` tensors (inputs, weights). Storages are known by address, so the external
    tensors are held for the mode's life: a freed one's address given to an activation would
    hide that activation (counts 12% low, now and then)."""

    def __init__(self, external: Iterable[torch.Tensor]) -> None:
        super().__init__()
        self._held = list(external)
        self._external = {tensor.untyped_storage()._cdata for tensor in self._held}
        self._refs: dict[int, list[int]] = {}
        self.current = 0
        self.peak = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None):
        out = func(*args, **(kwargs or {}))
        inputs = {id(a) for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)}
        for value in tree_flatten(out)[0]:
            if isinstance(value, torch.Tensor) and id(value) not in inputs:
                self._track(value)
        return out

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = storage._cdata
        if key in self._external:
            return
        entry = self._refs.get(key)
        if entry is None:
            entry = self._refs[key] = [storage.nbytes(), 0]
            self.current += entry[0]
            self.peak = max(self.peak, self.current)
        entry[1] += 1
        weakref.finalize(tensor, self._release, key)

    def _release(self, key: int) -> None:
        entry = self._refs.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self._refs[key]


@dataclass(frozen=True)
class MemoryProfile:
    """Activation bytes per padded input pixel of one network at one precision."""

    stream: float  # peak while a tile runs straight through
    parked: tuple[float, ...]  # kept per tile after each layered segment but the last
    fixed: int  # bytes independent of the tile: runtime workspaces, reduced-precision weights
    slack: float = STREAM_SLACK  # what the real run needs beyond `stream`
    whole: float = 0.0  # peak of a `whole` step over the image's latent, its inputs included
    whole_fixed: int = 0  # ... and its part independent of the image (a chunk's temporaries)

    def stream_bytes(self, pixels: int) -> int:
        return int(self.stream * pixels * self.slack) + self.fixed

    def stream_pixels(self, budget: int) -> int:
        """The most pixels a straight-through batch may have within `budget` bytes."""
        return max(0, int((budget - self.fixed) / (self.stream * self.slack)))

    def to_record(self) -> dict[str, Any]:
        return {"stream": self.stream, "parked": list(self.parked), "fixed": self.fixed,
                "slack": self.slack, "whole": self.whole, "whole_fixed": self.whole_fixed}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> MemoryProfile:
        """The profile a record holds; ValueError unless every cost is a finite, non-negative
        number (and the stream cost positive): plans divide by them."""
        profile = cls(float(record["stream"]), tuple(float(v) for v in record["parked"]),
                      int(record["fixed"]), float(record["slack"]), float(record["whole"]),
                      int(record["whole_fixed"]))
        values = (profile.stream, *profile.parked, profile.fixed, profile.slack, profile.whole,
                  profile.whole_fixed)
        if not all(math.isfinite(v) and v >= 0 for v in values) or profile.stream <= 0 \
                or profile.slack <= 0:
            raise ValueError(f"not a memory profile: {record}")
        return profile

    def whole_bytes(self, pixels: int) -> int:
        """The `whole` steps of an image of `pixels` padded input pixels, run over its latent."""
        return int((self.whole * pixels + self.whole_fixed) * self.slack)

    def parked_bytes(self, pixels: int, segments: int) -> int:
        """Registers parked for `pixels` of tiles while the first `segments` run layered."""
        if segments == 0:
            return 0
        return int(max(self.parked[:segments]) * pixels * PARKED_SLACK)


@functools.lru_cache(maxsize=16)
def profile(config: AdaCodeConfig, dtype: torch.dtype, device_type: str = "cpu") -> MemoryProfile:
    """The counted cost of `config` at `dtype` for a `device_type` device: measured once per
    model, precision, device type and torch version, then read from the profile cache."""
    key = profile_cache.profile_key(config, dtype, device_type)
    return profile_cache.cached(
        key, lambda: count_on_meta(config, dtype, device_type).to_record(),
        MemoryProfile.from_record)


def count_on_meta(config: AdaCodeConfig, dtype: torch.dtype, device_type: str = "cpu"
                  ) -> MemoryProfile:
    """Count `config` at `dtype` on a tile of four alignment steps (exact: costs scale with area
    apart from a fixed part that this size already makes small)."""
    network, peak, parked, (whole, whole_fixed) = _meta_pass(config, dtype, True, device_type)
    weights = 0
    if dtype != torch.float32:  # autocast keeps a cast copy of every weight while it runs
        weights = sum(p.numel() for p in network.parameters()) * dtype.itemsize
    return MemoryProfile(peak, parked, RUNTIME_OVERHEAD + weights, whole=whole,
                         whole_fixed=whole_fixed)


def layered_costs(config: AdaCodeConfig, dtype: torch.dtype, device_type: str = "cpu"
                  ) -> tuple[tuple[float, ...], float, int]:
    """Bytes per padded input pixel kept after each layered segment but the last (registers
    are parked in the compute precision, `dtype`, whatever autocast left them in), and the
    peak of a `whole` step over the latent on a `device_type` device (its Swin chunks): per
    padded input pixel, and fixed."""
    _, _, parked, (whole, whole_fixed) = _meta_pass(config, dtype, False, device_type)
    return parked, whole, whole_fixed


WholeInputs = dict[str, tuple[int, torch.dtype]]  # channels and dtype of a step's inputs


def _meta_pass(
    config: AdaCodeConfig, dtype: torch.dtype, track: bool, device_type: str
) -> tuple[torch.nn.Module, float, tuple[float, ...], tuple[float, int]]:
    """One run of the step graph on the meta device, segment by segment (one pass serves every
    count: a first run of a model pays for it before its first image). Returns the network, the
    peak live bytes (if `track`) and the parked bytes after each segment but the last, per
    padded input pixel, and the peak of the costliest `whole` step (its inputs, temporaries and
    results: `_whole_step_cost`, with the Swin chunks of a `device_type` device); parked
    registers are counted in elements, stored at `dtype`."""
    side = 4 * config.pad_multiple
    with torch.device("meta"):
        network = build_network(config).to(dtype).eval()
    chunk = chunk_tokens(device_type)
    for module in network.modules():  # this counting copy runs on meta as the device would
        if isinstance(module, SwinLayers):
            module.chunk_tokens = chunk
    parked = []
    wholes: list[tuple[Step, WholeInputs, float]] = []  # and latent px per input px
    with torch.inference_mode():
        regs = {"h": torch.empty(1, 3, side, side, device="meta", dtype=dtype)}
        owned = [*network.parameters(), *network.buffers()]
        tracker = _LiveBytes([*owned, regs["h"]])
        with tracker if track else contextlib.nullcontext():
            *layered, last = segments(network_steps(network))
            for segment in layered:
                for step in segment:
                    if step.whole:  # counted on its own below: one tracker at a time
                        inputs = {name: (regs[name].shape[1], regs[name].dtype)
                                  for name in step.reads}
                        ratio = regs[step.reads[0]].shape[-1] / side
                        wholes.append((step, inputs, ratio))
                    run_steps([step], regs)
                elements = {value.untyped_storage()._cdata: value.numel()
                            for value in regs.values()}
                parked.append(sum(elements.values()) * dtype.itemsize / side**2)
            if track:
                run_steps(last, regs)
            del regs
        costs = [_whole_step_cost(step, inputs, owned, ratio, config.window_size, chunk)
                 for step, inputs, ratio in wholes]
    whole = (max((c[0] for c in costs), default=0.0), max((c[1] for c in costs), default=0))
    return network, tracker.peak / side**2, tuple(parked), whole


def _whole_step_cost(step: Step, inputs: WholeInputs, owned: list[torch.Tensor], ratio: float,
                     window: int, chunk: int) -> tuple[float, int]:
    """Bytes per padded input pixel and fixed bytes of `step` run alone over a whole latent
    (`ratio` latent px per input px): a line through its peaks on latents of 2 and 3 chunks
    (the fewest that run chunked and fit a line: counting a chunk costs the meta kernels tens
    of ms per block), its fixed part raised where a latent of one chunk (run at once,
    unchunked) lies above it; the line then bounds every smaller latent too, whose cost is
    proportional to its size."""
    side = max(window, math.isqrt(chunk) // window * window)
    points = []
    for chunks in (1, 2, 3):
        latent = (side, side * chunks)
        pixels = latent[0] * latent[1] / ratio**2
        points.append((pixels, _whole_step_bytes(step, inputs, owned, latent)))
    (one, one_peak), (small, small_peak), (large, large_peak) = points
    per_pixel = (large_peak - small_peak) / (large - small)
    fixed = max(small_peak - per_pixel * small, one_peak - per_pixel * one, 0)
    return per_pixel, math.ceil(fixed)


def _whole_step_bytes(step: Step, inputs: WholeInputs, owned: list[torch.Tensor],
                      latent: tuple[int, int]) -> int:
    """Peak bytes of `step` run alone on meta registers of a `latent` (height, width) map,
    counted in, as the executor runs a `whole` step on the inputs it gathered (contiguous)."""
    regs: Registers = {name: torch.empty(1, channels, *latent, dtype=dtype, device="meta")
                       for name, (channels, dtype) in inputs.items()}
    sizes = {value.untyped_storage()._cdata: value.untyped_storage().nbytes()
             for value in regs.values()}
    tracker = _LiveBytes([*owned, *regs.values()])
    with tracker:
        run_steps([step], regs)
    del regs
    return sum(sizes.values()) + tracker.peak


CALIBRATION_STEPS = (6, 12)  # tile sides, in alignment steps, of the two measured runs
# margin on the fitted cost: a 1.15 margin fitted at 4 and 8 steps let 576-640 px tiles at x2
# (fp16, H200) peak 1-4% over their limit: the cost grows a little faster than linearly
CALIBRATION_SLACK = 1.25


def device_profile(
    network: torch.nn.Module, config: AdaCodeConfig, device: torch.device, dtype: torch.dtype,
    precision: Callable[[], AbstractContextManager[None]],
) -> MemoryProfile:
    """`measure_on_device`, once per model, precision, device model and torch version."""
    key = profile_cache.profile_key(config, dtype, torch.cuda.get_device_name(device))
    return profile_cache.cached(
        key, lambda: measure_on_device(network, config, device, dtype, precision).to_record(),
        MemoryProfile.from_record)


def measure_on_device(
    network: torch.nn.Module, config: AdaCodeConfig, device: torch.device, dtype: torch.dtype,
    precision: Callable[[], AbstractContextManager[None]],
) -> MemoryProfile:
    """The straight-through cost measured on a CUDA device itself: the allocator's peak for two
    tile sizes, fitted as fixed + per-pixel bytes. The meta-device count misses what only the
    real run allocates there (cuDNN workspaces of tensor-core convolutions, autocast's fp32
    residual streams). Resets the device's peak memory statistics."""
    points = []
    for steps in CALIBRATION_STEPS:
        side = steps * config.pad_multiple
        x = torch.rand(1, 3, side, side, device=device)
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        with torch.inference_mode(), precision():
            network(x)
        torch.cuda.synchronize(device)
        points.append((side * side, torch.cuda.max_memory_allocated(device) - base))
    (small, small_peak), (large, large_peak) = points
    per_pixel = max((large_peak - small_peak) / (large - small), 1.0)
    fixed = max(0, int(small_peak - per_pixel * small))
    parked, whole, whole_fixed = layered_costs(config, dtype, device.type)
    return MemoryProfile(per_pixel, parked, fixed, CALIBRATION_SLACK, whole, whole_fixed)


def available_memory(device: torch.device) -> int:
    """Bytes the engine may use on `device` now (free memory, not total)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + cached)
    if device.type == "mps":
        return int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
    return host_available_memory()


def device_allocated(device: torch.device) -> int:
    """Bytes this process holds in tensors on the accelerator `device` now."""
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    if device.type == "mps":
        return int(torch.mps.current_allocated_memory())
    return 0


def process_resident() -> int:
    """Resident bytes of this process now (0 where the OS does not say)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def host_available_memory() -> int:
    """MemAvailable from /proc/meminfo, else the free physical pages the OS reports."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30
