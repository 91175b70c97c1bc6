"""How much memory a tile costs, and how much there is.

The per-pixel cost is measured, not guessed: the step graph of the network runs once on the meta
device (shapes only, no compute, no memory) under a dispatch mode that follows every tensor the
network allocates and frees, per model configuration and precision. That gives the peak of live
activation bytes of a straight-through tile and the bytes each tile keeps parked between
layered segments, both per padded input pixel.
"""

from __future__ import annotations

import functools
import os
import weakref
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from adacode_cli.engine.graph import network_steps, run_steps, segments
from adacode_cli.model import swin
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import build_network

SAFETY = 1.3  # allocator slack, kernel workspaces and temporaries the dispatcher cannot see


class _LiveBytes(TorchDispatchMode):
    """Peak bytes of storages allocated inside the mode and still referenced."""

    def __init__(self, external: set[int]) -> None:
        super().__init__()
        self._external = external
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


def _unique_bytes(tensors: list[torch.Tensor]) -> int:
    seen: dict[int, int] = {}
    for tensor in tensors:
        storage = tensor.untyped_storage()
        seen[storage._cdata] = storage.nbytes()
    return sum(seen.values())


@dataclass(frozen=True)
class MemoryProfile:
    """Activation bytes per padded input pixel of one network at one precision."""

    stream: float  # peak while a tile runs straight through
    parked: tuple[float, ...]  # kept per tile after each layered segment but the last

    def stream_bytes(self, pixels: int) -> int:
        return int(self.stream * pixels * SAFETY)

    def parked_bytes(self, pixels: int, segments: int) -> int:
        """Registers parked for `pixels` of tiles while the first `segments` run layered."""
        if segments == 0:
            return 0
        return int(max(self.parked[:segments]) * pixels * SAFETY)


@functools.lru_cache(maxsize=16)
def profile(config: AdaCodeConfig, dtype: torch.dtype) -> MemoryProfile:
    """Measure `config` at `dtype` on a tile of two alignment steps (exact: costs scale with area
    apart from a fixed part that this size already makes small)."""
    side = 4 * config.pad_multiple
    try:
        with torch.device("meta"):
            network = build_network(config).to(dtype).eval()
    finally:
        # the model caches a small index tensor built on the default device; drop the meta one
        swin._relative_position_index.cache_clear()
    steps = network_steps(network)
    parked = []
    with torch.inference_mode():
        x = torch.empty(1, 3, side, side, device="meta", dtype=dtype)
        owned = [*network.parameters(), *network.buffers(), x]
        tracker = _LiveBytes({t.untyped_storage()._cdata for t in owned})
        with tracker:
            regs = {"h": x}
            run_steps(steps, regs)
            del regs
        regs = {"h": x}
        for segment in segments(steps)[:-1]:
            run_steps(segment, regs)
            parked.append(_unique_bytes(list(regs.values())) / side**2)
    return MemoryProfile(tracker.peak / side**2, tuple(parked))


def available_memory(device: torch.device) -> int:
    """Bytes the engine may use on `device` now (free memory, not total)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + cached)
    if device.type == "mps":
        return int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
    return host_available_memory()


def process_resident() -> int:
    """Resident bytes of this process now (0 where the OS does not say)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def release_caches(network: torch.nn.Module) -> None:
    """Drop the attention masks the Swin layers cache per feature size: at inference they hold
    (windows x heads x 64 x 64) floats per block, hundreds of MB for large tiles, and a new
    tile size or image would add another set."""
    for module in network.modules():
        cache = getattr(module, "_mask_cache", None)
        if isinstance(cache, dict):
            cache.clear()


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
