"""The restoration engine: load a network once, restore many images.

`Restorer.restore` runs the whole image when it fits in memory (numerically the official `test()`
path) and tiles otherwise: the image is padded by the official rule, cut into aligned overlapping
tiles, run in batches with image-wide GroupNorm statistics, and assembled with cross-faded seams
directly into the output array. Out of memory, it halves the tile and tries again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from adacode_cli.engine import memory
from adacode_cli.engine.canvas import BlendCanvas, WeightCanvas, quantise
from adacode_cli.engine.compile import compiled_network
from adacode_cli.engine.device import resolve_device
from adacode_cli.engine.executor import TileExecutor
from adacode_cli.engine.graph import Registers
from adacode_cli.engine.overlap import default_overlap, seam_notices
from adacode_cli.engine.planner import Budget, Plan, choose_plan
from adacode_cli.engine.precision import resolve_precision
from adacode_cli.engine.tiling import Tile, plan_tiles
from adacode_cli.errors import AdaCodeError, ImageError
from adacode_cli.model.checkpoint import load_network
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import AdaCodeNet
from adacode_cli.model.padding import flip_pad, padded_size, restore_whole

STATISTICS = ("auto", "exact", "tile")
HOST_SHARE = 0.7  # of the RAM available now; the rest stays for the OS and other programs


class RestoreInterrupted(Exception):
    """`should_stop()` asked the restore to stop; raised between tile batches."""


@dataclass
class RestoreOptions:
    """How to run the network. None means automatic."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: str = "auto"  # auto | fp32 | tf32 | bf16 | fp16
    tile: int | None = None  # None: auto; 0: whole image; N: tile side in input pixels
    tile_overlap: int | None = None  # input pixels shared by neighbouring tiles
    batch_size: int | None = None  # tiles per batch
    statistics: str = "auto"  # auto | exact | tile (the official per-tile normalisation)
    memory_limit: int | None = None  # bytes: the process on the CPU, the GPU's allocations
    channels_last: bool | None = None  # NHWC; None: where it measured faster (whole, on CPU)
    compile: str = "auto"  # auto | on | off: torch.compile the whole-image path (engine.compile)


@dataclass
class RestoreResult:
    image: np.ndarray  # H*scale x W*scale x 3, the input's dtype
    weight_map: np.ndarray | None  # (N, h, w) float32 at latent resolution
    tiles: int
    seconds: float
    notices: list[str] = field(default_factory=list)


def _is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.OutOfMemoryError):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8/uint16/float32 -> (1, 3, H, W) float32 in [0, 1]."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 RGB array, got shape {image.shape}")
    if image.dtype == np.uint8 or image.dtype == np.uint16:
        scaled = image.astype(np.float32) / float(np.iinfo(image.dtype).max)
    elif image.dtype == np.float32:
        scaled = np.clip(image, 0.0, 1.0)
    else:
        raise ValueError(f"unsupported image dtype {image.dtype} (uint8, uint16 or float32)")
    return torch.from_numpy(np.ascontiguousarray(scaled)).permute(2, 0, 1).unsqueeze(0)


class _Progress:
    """Turns fractions into (done, total) tile counts and checks `should_stop`."""

    def __init__(
        self,
        total: int,
        on_progress: Callable[[int, int], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.total, self.on_progress, self.should_stop = total, on_progress, should_stop
        self.reported = -1

    def __call__(self, fraction: float) -> None:
        done = min(self.total, math.floor(fraction * self.total + 1e-9))
        if self.on_progress is not None and done != self.reported:
            self.reported = done
            self.on_progress(done, self.total)
        if self.should_stop is not None and self.should_stop():
            raise RestoreInterrupted("restore stopped on request")


class Restorer:
    """One network on one device at one precision; `restore` as many images as needed."""

    def __init__(self, network: AdaCodeNet, options: RestoreOptions | None = None) -> None:
        self.options = options or RestoreOptions()
        if self.options.statistics not in STATISTICS:
            raise AdaCodeError(
                f"unknown statistics mode {self.options.statistics!r} (auto, exact or tile)"
            )
        self.device = resolve_device(self.options.device)
        self._precision, self._precision_notices = resolve_precision(
            self.options.precision, self.device
        )
        self.dtype = self._precision.dtype
        self.network = network.eval().to(self.device)
        self._channels_last = False
        self._profile: memory.MemoryProfile | None = None
        self.executor = TileExecutor(self.network, self.device, self._precision)
        self._whole = compiled_network(self.network, self.options.compile, self.device,
                                       self.precision)

    @classmethod
    def from_file(cls, path: str | Path, options: RestoreOptions | None = None) -> Restorer:
        """Load a checkpoint (.safetensors or official .pth) and wrap it."""
        options = options or RestoreOptions()
        return cls(load_network(Path(path), resolve_device(options.device)), options)

    @property
    def config(self) -> AdaCodeConfig:
        return self.network.config

    @property
    def precision(self) -> str:
        return self._precision.name

    @property
    def overlap(self) -> int:
        if self.options.tile_overlap is None:
            return default_overlap(self.config, self.options.tile)
        return self.options.tile_overlap

    def restore(
        self,
        image: np.ndarray,
        *,
        with_weight_map: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> RestoreResult:
        """Restore one H x W x 3 image; the result has the input's dtype."""
        started = time.perf_counter()
        x = _to_tensor(image)
        notices = list(self._precision_notices)
        plan = self.plan(x.shape[-2], x.shape[-1])
        first_tile = plan.tile
        while True:
            try:
                result = self._run(x, image.dtype, plan, with_weight_map, on_progress,
                                   should_stop)
                break
            except (torch.OutOfMemoryError, RuntimeError) as error:
                if not _is_out_of_memory(error):
                    raise
                plan = self._smaller(plan, x)
        if plan.tile != first_tile:
            tried = "the whole image" if first_tile is None else f"{first_tile} px tiles"
            notices.append(f"out of memory with {tried}; finished with {plan.tile} px tiles")
        if plan.estimate_scale is not None:
            notices.append(
                "not enough memory for exact tile statistics: the deepest "
                f"{len(self.executor.segments) - 1 - plan.exact_segments} norm layers use "
                f"statistics from a {plan.estimate_scale:.2f}x copy (seams may show)"
            )
        notices += seam_notices(self.config, plan, self.overlap)
        result.seconds = time.perf_counter() - started
        result.notices = notices
        return result

    def plan(self, height: int, width: int) -> Plan:
        """The plan `restore` starts with for an image of this size."""
        return self._plan(height, width, self.options.tile, self.options.batch_size)

    def _plan(self, height: int, width: int, tile: int | None, batch: int | None) -> Plan:
        multiple = self.config.pad_multiple
        return choose_plan(
            self.config,
            self._memory_profile(),
            (padded_size(height, multiple), padded_size(width, multiple)),
            self._budget(height, width),
            tile=tile,
            overlap=self.overlap,
            batch=batch,
            statistics=self.options.statistics,
            device=self.device,
            segments=len(self.executor.segments),
        )

    def _memory_profile(self) -> memory.MemoryProfile:
        """The cost measured on a CUDA device itself, else (or when that runs out of memory)
        counted on the meta device; once per restorer."""
        if self._profile is None and self.device.type == "cuda":
            try:
                self._profile = memory.measure_on_device(
                    self.network, self.config, self.device, self.executor.precision_context
                )
            except torch.OutOfMemoryError:
                torch.cuda.empty_cache()
        if self._profile is None:
            self._profile = memory.profile(self.config, self.dtype)
        return self._profile

    def _budget(self, height: int, width: int) -> Budget:
        limit = self.options.memory_limit
        scale = self.config.scale
        fixed = height * width * (24 + scale * scale * 3 * 4)  # input, padded, output arrays
        if limit is None:
            host = int(memory.host_available_memory() * HOST_SHARE)
        else:
            host = limit - (memory.process_resident() if self.device.type == "cpu" else 0)
        host -= fixed
        if self.device.type == "cpu":
            return Budget(host, host, True)
        if limit is None:
            device = int(memory.available_memory(self.device) * 0.9)
        else:  # the limit covers what is already allocated there: the weights, for one
            device = limit - memory.device_allocated(self.device)
        return Budget(device, host, False)

    def _use_layout(self, whole: bool) -> None:
        """Channels-last where asked, or by default where it measured faster: the whole-image
        path on the CPU (1.2-1.4x at fp32 and bf16; tiles with image-wide statistics are
        slower in it, see docs). The weights are converted only when the choice changes."""
        wanted = self.options.channels_last
        if wanted is None:
            wanted = whole and self.device.type == "cpu"
        if wanted != self._channels_last:
            layout = torch.channels_last if wanted else torch.contiguous_format
            self.network.to(memory_format=layout)
            self._channels_last = wanted
        self.executor.channels_last = wanted

    def _smaller(self, plan: Plan, x: torch.Tensor) -> Plan:
        """The plan to retry with after running out of memory: half the tile."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        multiple = self.config.pad_multiple
        side = plan.tile or max(padded_size(s, multiple) for s in x.shape[-2:])
        smaller = side // 2 // multiple * multiple
        if smaller <= self.overlap:
            raise ImageError(f"out of memory even with {side} px tiles")
        base = self._plan(x.shape[-2], x.shape[-1], tile=smaller, batch=1)
        assert base.tile is not None
        return base

    def _run(
        self,
        x: torch.Tensor,
        dtype: np.dtype,
        plan: Plan,
        with_weight_map: bool,
        on_progress: Callable[[int, int], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> RestoreResult:
        self._use_layout(plan.tile is None)
        if plan.tile is None:
            return self._run_whole(x, dtype, with_weight_map, _Progress(1, on_progress,
                                                                         should_stop))
        return self._run_tiled(x, dtype, plan, with_weight_map, on_progress, should_stop)

    def _run_whole(
        self, x: torch.Tensor, dtype: np.dtype, with_weight_map: bool, progress: _Progress
    ) -> RestoreResult:
        """The official whole-image path."""
        progress(0.0)
        source = x.to(self.device)
        if self._channels_last:
            source = source.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self.executor.precision_context():
            output, weight = restore_whole(self._whole, source)
            pixels = output[0].float().cpu()
            weight_map = None
            if with_weight_map and weight is not None:
                weight_map = weight[0].float().cpu().numpy()
        del output, weight
        image = quantise(pixels, dtype)
        progress(1.0)
        return RestoreResult(image, weight_map, 1, 0.0)

    def _run_tiled(
        self,
        x: torch.Tensor,
        dtype: np.dtype,
        plan: Plan,
        with_weight_map: bool,
        on_progress: Callable[[int, int], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> RestoreResult:
        config = self.config
        assert plan.tile is not None
        padded = flip_pad(x, config.pad_multiple)
        grid = plan_tiles(padded.shape[-2], padded.shape[-1], plan.tile, self.overlap,
                          config.pad_multiple, config.latent_factor, self.overlap // 2)
        tiles = grid.tiles
        batches = [tiles[i : i + plan.batch] for i in range(0, len(tiles), plan.batch)]
        statistics = self.executor.statistics
        statistics.values = {}
        if plan.estimate_scale is not None:
            self._estimate_statistics(x, plan)
        height, width = x.shape[-2:]
        canvas = BlendCanvas(grid, config.scale, height * config.scale, width * config.scale,
                             dtype)
        weights = None
        if with_weight_map and config.stage != "vqgan":
            factor = config.latent_factor
            weights = WeightCanvas(config.num_codebooks, -(-height // factor),
                                   -(-width // factor), factor)

        def emit(batch: list[Tile], regs: Registers) -> None:
            images = regs["h"].float().cpu()
            for index, tile in enumerate(batch):
                canvas.add(tile, images[index])
            if weights is not None:
                maps = regs["weight"].float().cpu()
                for index, tile in enumerate(batch):
                    weights.add(tile, maps[index])

        progress = _Progress(len(tiles), on_progress, should_stop)
        exact = 0 if plan.per_tile_statistics else plan.exact_segments
        self.executor.run(padded, batches, emit, progress, exact, plan.park_on_device)
        return RestoreResult(canvas.image, None if weights is None else weights.map,
                             len(tiles), 0.0)

    def _estimate_statistics(self, x: torch.Tensor, plan: Plan) -> None:
        """Measure every norm exactly on a downscaled copy; the full-size run then replaces
        the ones it can measure itself."""
        assert plan.estimate_scale is not None and plan.tile is not None
        small = F.interpolate(x, scale_factor=plan.estimate_scale, mode="bicubic",
                              antialias=True, align_corners=False).clamp(0, 1)
        padded = flip_pad(small, self.config.pad_multiple)
        grid = plan_tiles(padded.shape[-2], padded.shape[-1], plan.tile, self.overlap,
                          self.config.pad_multiple, self.config.latent_factor, 0)
        tiles = grid.tiles
        batches = [tiles[i : i + plan.batch] for i in range(0, len(tiles), plan.batch)]
        self.executor.run(padded, batches, None, lambda fraction: None,
                          len(self.executor.segments) - 1)
