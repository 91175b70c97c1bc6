"""The restoration engine: load a network once, restore many images.

`Restorer.restore` reads top-down: refuse an image that cannot fit, plan, then run the whole
image when it fits in memory (numerically the official `test()` path) or pad it by the official
rule, cut it into aligned overlapping tiles, gather image-wide GroupNorm statistics in layered
passes, run the tiles and blend their seams directly into the output array. Out of memory, it
halves the tile and runs again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from adacode_cli.engine import memory
from adacode_cli.engine.canvas import TileOutputs, quantise
from adacode_cli.engine.compile import compiled_network
from adacode_cli.engine.device import resolve_device
from adacode_cli.engine.executor import TileExecutor, TileRun
from adacode_cli.engine.overlap import default_overlap, image_overlap, seam_notices, tile_grid
from adacode_cli.engine.planner import (
    Budget,
    Plan,
    PlanInputs,
    batch_size,
    choose_plan,
    smallest_tile,
)
from adacode_cli.engine.precision import resolve_precision
from adacode_cli.engine.tiling import Tile
from adacode_cli.errors import AdaCodeError, ImageError
from adacode_cli.model.checkpoint import load_network
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.layers import Statistics
from adacode_cli.model.networks import AdaCodeNet
from adacode_cli.model.padding import crop_output, flip_pad, padded_size, restore_whole

# auto and exact: exact image-wide statistics, registers spilled to disk when memory is short;
# estimate: the norms whose registers do not fit use statistics of a downscaled copy;
# tile: every tile normalises itself (the official tiling)
STATISTICS = ("auto", "exact", "estimate", "tile")
HOST_SHARE = 0.7  # of the RAM available now; the rest stays for the OS and other programs


class RestoreInterrupted(Exception):
    """`should_stop()` asked the restore to stop; raised between tile batches, layered passes
    and the steps of a whole-image run."""


class InsufficientMemoryError(ImageError):
    """An image that cannot fit in the memory there is, even in the smallest tiles."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes an image needs at the least, against the bytes available for it."""

    needed: int
    available: int
    kind: str  # what memory: "memory" (RAM) or the accelerator's

    @property
    def fits(self) -> bool:
        return self.needed <= self.available

    def message(self) -> str:
        return (f"needs about {self.needed / 1e9:.1f} GB of {self.kind}, "
                f"{max(self.available, 0) / 1e9:.1f} GB available")


@dataclass
class RestoreOptions:
    """How to run the network. None means automatic."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: str = "auto"  # auto | fp32 | tf32 | bf16 | fp16
    tile: int | None = None  # None: auto; 0: whole image; N: tile side in input pixels
    tile_overlap: int | None = None  # input pixels shared by neighbouring tiles
    batch_size: int | None = None  # tiles per batch
    statistics: str = "auto"  # auto | exact | estimate | tile (official per-tile norms)
    memory_limit: int | None = None  # bytes: the process on the CPU, the GPU's allocations
    channels_last: bool | None = None  # NHWC; None: where it measured faster (the CPU)
    compile: str = "auto"  # auto | on | off: torch.compile the whole-image path (engine.compile)
    # exact tiles run the Swin steps once over the whole latent where it fits (False: per tile,
    # as earlier releases did; the benchmarks compare the two)
    whole_latent: bool = True


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


def _stack(images: list[np.ndarray]) -> torch.Tensor:
    """Images of one shape and dtype -> (N, 3, H, W) float32 in [0, 1]."""
    first = images[0]
    for image in images[1:]:
        if image.shape != first.shape or image.dtype != first.dtype:
            raise ValueError(f"a batch needs images of one shape and dtype: {first.shape} "
                             f"{first.dtype} and {image.shape} {image.dtype}")
    return torch.cat([_to_tensor(image) for image in images])


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
    """Checks `should_stop` and turns fractions of a run into (done, total) tile counts."""

    def __init__(
        self,
        on_progress: Callable[[int, int], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.on_progress, self.should_stop = on_progress, should_stop

    def check(self) -> None:
        """Raise `RestoreInterrupted` once a stop was requested."""
        if self.should_stop is not None and self.should_stop():
            raise RestoreInterrupted("restore stopped on request")

    def counter(self, total: int) -> Callable[[float | None], None]:
        """A tick for a run of `total` tiles: reports the fraction done (None: no change),
        then checks the stop request."""
        reported = -1

        def tick(fraction: float | None) -> None:
            nonlocal reported
            if fraction is None:
                self.check()
                return
            done = min(total, math.floor(fraction * total + 1e-9))
            if self.on_progress is not None and done != reported:
                reported = done
                self.on_progress(done, total)
            self.check()

        return tick


class Restorer:
    """One network on one device at one precision; `restore` as many images as needed."""

    def __init__(self, network: AdaCodeNet, options: RestoreOptions | None = None) -> None:
        self.options = options or RestoreOptions()
        if self.options.statistics not in STATISTICS:
            raise AdaCodeError(f"unknown statistics mode {self.options.statistics!r} "
                               f"({', '.join(STATISTICS)})")
        self.device = resolve_device(self.options.device)
        self._precision, self._precision_notices = resolve_precision(
            self.options.precision, self.device
        )
        self.dtype = self._precision.dtype
        self.network = network.eval().to(self.device)
        self._channels_last = self._use_layout()
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

    def _image_overlap(self, padded: tuple[int, int], image: tuple[int, int], tile: int | None,
                       whole_latent: bool) -> int:
        """The overlap for one image: as asked, else for `--tile` the smallest that keeps the
        seams on this image's grid, else the automatic default (both for tiles that run their
        Swin steps over the `whole_latent` or themselves)."""
        if self.options.tile_overlap is not None:  # beyond the image it changes nothing
            return min(self.options.tile_overlap, max(padded))
        if tile:
            return image_overlap(self.config, padded, image, min(tile, max(image)), whole_latent)
        return default_overlap(self.config, tile, whole_latent=whole_latent)

    def restore(
        self,
        image: np.ndarray,
        *,
        with_weight_map: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> RestoreResult:
        """Restore one H x W x 3 image; the result has the input's dtype (`restore_batch` of
        one image)."""
        return self.restore_batch([image], with_weight_map=with_weight_map,
                                  on_progress=on_progress, should_stop=should_stop)[0]

    def restore_batch(
        self,
        images: list[np.ndarray],
        *,
        with_weight_map: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[RestoreResult]:
        """Restore H x W x 3 images of one size and dtype (video frames), in order.

        An image size that cannot fit in the memory there is is refused before any work
        (`InsufficientMemoryError`). When the plan for the size is the whole image, the images
        run as batches of `frames_per_batch`; out of memory, the batch is halved, down to one
        image, whose tile is then halved. Tiled plans run image by image."""
        if not images:
            return []
        started = time.perf_counter()
        x = _stack(images)
        estimate = self.memory_estimate(x.shape[-2], x.shape[-1])
        if not estimate.fits:
            raise InsufficientMemoryError(estimate.message())
        progress = _Progress(on_progress, should_stop)
        plan = self.plan(x.shape[-2], x.shape[-1])
        if plan.tile is None and len(images) > 1:
            results = self._whole_batches(x, images[0].dtype, with_weight_map, progress)
        else:
            results = [self._restore_one(x[i : i + 1], images[0].dtype, plan, with_weight_map,
                                         progress) for i in range(len(images))]
        seconds = (time.perf_counter() - started) / len(results)  # each image's share
        for result in results:
            result.seconds = seconds
        return results

    def frames_per_batch(self, height: int, width: int) -> int:
        """Whole images of this size per network call (`planner.batch_size`); 1 when the plan
        for the size cuts it into tiles."""
        if self.plan(height, width).tile is not None:
            return 1
        multiple = self.config.pad_multiple
        pixels = padded_size(height, multiple) * padded_size(width, multiple)
        return batch_size(self.options.batch_size, self.device, self._memory_profile(),
                          self._budget(height, width).device, pixels)

    def _restore_one(self, x: torch.Tensor, dtype: np.dtype, plan: Plan, with_weight_map: bool,
                     progress: _Progress) -> RestoreResult:
        """One (1, 3, H, W) image by `plan`; out of memory, with half the tile."""
        first = plan
        while True:
            try:
                [result] = self._run(x, dtype, plan, with_weight_map, progress)
                break
            except (torch.OutOfMemoryError, RuntimeError) as error:
                if not _is_out_of_memory(error):
                    raise
                plan = self._smaller(plan, x)
        result.notices = [*self._precision_notices, *self._notices(first, plan, x)]
        return result

    def _whole_batches(self, x: torch.Tensor, dtype: np.dtype, with_weight_map: bool,
                       progress: _Progress) -> list[RestoreResult]:
        """Whole (N, 3, H, W) images in batches of `frames_per_batch`; out of memory, half
        the batch, and below two images `_restore_one` (which halves the tile)."""
        wanted = size = min(len(x), self.frames_per_batch(x.shape[-2], x.shape[-1]))
        results: list[RestoreResult] = []
        while len(results) < len(x):
            chunk = x[len(results) : len(results) + size]
            if size == 1:
                results.append(self._restore_one(chunk, dtype, Plan.whole(), with_weight_map,
                                                 progress))
                continue
            try:
                results += self._run(chunk, dtype, Plan.whole(), with_weight_map, progress)
            except (torch.OutOfMemoryError, RuntimeError) as error:
                if not _is_out_of_memory(error):
                    raise
                self._free_cached()
                size //= 2
        notices = [*self._precision_notices]
        if size != wanted:
            notices.append(f"out of memory with {wanted} images per batch; finished with {size}")
        for result in results:
            result.notices = [*notices, *(n for n in result.notices if n not in notices)]
        return results

    def plan(self, height: int, width: int, tile: int | None = None,
             batch: int | None = None) -> Plan:
        """The plan for an image of this size (`tile`, the pixels each tile owns, and `batch`:
        the options' unless given)."""
        tile = self.options.tile if tile is None else tile
        plan = choose_plan(self._plan_inputs(height, width, batch, tile), tile)
        if plan.tile is None or plan.whole_latent or plan.per_tile_statistics:
            return plan
        # the Swin steps run per tile after all: the overlap must cover their reach too
        return choose_plan(self._plan_inputs(height, width, batch, tile, False), tile)

    def _plan_inputs(self, height: int, width: int, batch: int | None, tile: int | None,
                     whole_latent: bool = True) -> PlanInputs:
        """What a plan for this image depends on; `whole_latent` False plans tiles that run
        their Swin steps themselves (and the overlap their reach needs). Only exact image-wide
        statistics can run them over the whole latent."""
        multiple = self.config.pad_multiple
        padded = padded_size(height, multiple), padded_size(width, multiple)
        whole_latent = (whole_latent and self.options.whole_latent
                        and self.options.statistics in ("auto", "exact"))
        return PlanInputs(
            self.config, self._memory_profile(), padded, self._budget(height, width),
            self._image_overlap(padded, (height, width), tile, whole_latent),
            self.options.batch_size if batch is None else batch, self.options.statistics,
            self.device, len(self.executor.segments), (height, width), whole_latent,
        )

    def memory_estimate(self, height: int, width: int) -> MemoryEstimate:
        """What restoring an image of this size needs at the least (its input, output and
        padded arrays and the smallest tile; parked registers can spill to disk), against the
        memory there is: RAM on the CPU, the accelerator's memory elsewhere."""
        budget = self._budget(height, width)
        multiple = self.config.pad_multiple
        padded = padded_size(height, multiple), padded_size(width, multiple)
        overlap = self._image_overlap(padded, (height, width), self.options.tile, False)
        side = smallest_tile(self.config, overlap)
        tile = self._memory_profile().stream_bytes(min(side, padded[0]) * min(side, padded[1]))
        fixed = self._fixed_bytes(height, width)
        if budget.shared or budget.host < 0:
            return MemoryEstimate(fixed + tile, budget.host + fixed, "memory")
        return MemoryEstimate(tile, budget.device, f"{self.device.type.upper()} memory")

    def _memory_profile(self) -> memory.MemoryProfile:
        """The cost measured on a CUDA device itself, else (or when that runs out of memory)
        counted on the meta device; both kept in the profile cache between runs."""
        if self._profile is None and self.device.type == "cuda":
            try:
                self._profile = memory.device_profile(
                    self.network, self.config, self.device, self.dtype,
                    self.executor.precision_context,
                )
            except torch.OutOfMemoryError:
                torch.cuda.empty_cache()
        if self._profile is None:
            self._profile = memory.profile(self.config, self.dtype, self.device.type)
        return self._profile

    def _fixed_bytes(self, height: int, width: int) -> int:
        """The input, padded and output arrays of one image."""
        return height * width * (24 + self.config.scale**2 * 3 * 4)

    def _budget(self, height: int, width: int) -> Budget:
        limit = self.options.memory_limit
        if limit is None:
            host = int(memory.host_available_memory() * HOST_SHARE)
        else:
            host = limit - (memory.process_resident() if self.device.type == "cpu" else 0)
        host -= self._fixed_bytes(height, width)
        if self.device.type == "cpu":
            return Budget(host, host, True)
        if limit is None:
            device = int(memory.available_memory(self.device) * 0.9)
        else:  # the limit covers what is already allocated there: the weights, for one
            device = limit - memory.device_allocated(self.device)
        return Budget(device, host, False)

    def _use_layout(self) -> bool:
        """Channels-last where asked, or by default where it measured faster: on the CPU, whole
        images and tiles alike (`benchmarks/cpu.py`); the weights are converted once."""
        wanted = self.options.channels_last
        if wanted is None:
            wanted = self.device.type == "cpu"
        if wanted:
            self.network.to(memory_format=torch.channels_last)
        return wanted

    def _free_cached(self) -> None:
        """After running out of memory: hand the allocator's cached blocks back to CUDA."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _smaller(self, plan: Plan, x: torch.Tensor) -> Plan:
        """The plan to retry with after running out of memory: half the tile."""
        self._free_cached()
        multiple = self.config.pad_multiple
        side = plan.tile or max(padded_size(s, multiple) for s in x.shape[-2:])
        smaller = side // 2 // multiple * multiple
        if smaller <= plan.overlap:
            raise ImageError(f"out of memory even with {side} px tiles")
        inputs = self._plan_inputs(x.shape[-2], x.shape[-1], 1, None,
                                   plan.tile is None or plan.whole_latent)
        retry = Plan.tiled(replace(inputs, overlap=plan.overlap or inputs.overlap), smaller)
        if plan.whole_latent and not retry.whole_latent:  # the Swin steps' reach is back
            inputs = self._plan_inputs(x.shape[-2], x.shape[-1], 1, None, False)
            retry = Plan.tiled(replace(inputs, overlap=max(plan.overlap, inputs.overlap)),
                               smaller)
        return retry

    def _notices(self, first: Plan, final: Plan, x: torch.Tensor) -> list[str]:
        notices = []
        if final.tile != first.tile:
            tried = "the whole image" if first.tile is None else f"{first.tile} px tiles"
            notices.append(f"out of memory with {tried}; finished with {final.tile} px tiles")
        if final.estimate_scale is not None:
            notices.append(
                "estimated tile statistics: the deepest "
                f"{len(self.executor.segments) - 1 - final.exact_segments} norm layers use "
                f"statistics from a {final.estimate_scale:.2f}x copy (seams may show)"
            )
        multiple = self.config.pad_multiple
        image = x.shape[-2], x.shape[-1]
        padded = padded_size(image[0], multiple), padded_size(image[1], multiple)
        core = self.options.tile if final.tile == first.tile else None  # as asked, no OOM
        return notices + seam_notices(self.config, final, padded, image, core)

    def _run(self, x: torch.Tensor, dtype: np.dtype, plan: Plan, with_weight_map: bool,
             progress: _Progress) -> list[RestoreResult]:
        """Images top-down: a batch whole, or one image padded, cut, its statistics gathered,
        its tiles run and blended."""
        channels_last = self._channels_last
        if plan.tile is None:
            return self._run_whole(x, dtype, with_weight_map, channels_last, progress)
        config = self.config
        padded = flip_pad(x, config.pad_multiple)
        grid = tile_grid(config, (padded.shape[-2], padded.shape[-1]), plan.tile, plan.overlap,
                         whole_latent=plan.whole_latent)
        known = {} if plan.estimate_scale is None else self._estimate_statistics(x, plan,
                                                                                 progress)
        layered = 0 if plan.per_tile_statistics else plan.exact_segments
        run = TileRun(padded, _batches(grid.tiles, plan.batch), layered, plan.parking,
                      plan.spill_bytes, channels_last, known, plan.whole_latent)
        outputs = TileOutputs(grid, config, x.shape[-2], x.shape[-1], dtype, with_weight_map)
        self.executor.run(run, outputs.emit, progress.counter(len(grid)))
        return [RestoreResult(outputs.canvas.image, outputs.weight_map, len(grid), 0.0)]

    def _run_whole(self, x: torch.Tensor, dtype: np.dtype, with_weight_map: bool,
                   channels_last: bool, progress: _Progress) -> list[RestoreResult]:
        """The official whole-image path on a batch of images: step by step, so that a stop
        request is honoured, or the compiled network in one call (`compile`; Ctrl-C's grace
        period stops that)."""
        tick = progress.counter(1)
        tick(0.0)
        if self._whole is not self.network:
            source = self.executor.on_device(x, channels_last)
            with torch.inference_mode(), self.executor.precision_context():
                output, weight = restore_whole(self._whole, source)
        else:
            regs = self.executor.run_whole(x, self.config.pad_multiple, channels_last, tick)
            output, weight = crop_output(self.config, x.shape[-2], x.shape[-1], regs.pop("h"),
                                         regs.pop("weight", None))
        results = []
        with torch.inference_mode():
            for index in range(len(x)):
                weight_map = None
                if with_weight_map and weight is not None:
                    weight_map = weight[index].float().cpu().numpy()
                results.append(RestoreResult(quantise(output[index].float().cpu(), dtype),
                                             weight_map, 1, 0.0))
        return results

    def _estimate_statistics(self, x: torch.Tensor, plan: Plan, progress: _Progress
                             ) -> dict[torch.nn.Module, Statistics]:
        """Every norm measured exactly on a downscaled copy (the `estimate` mode); the
        full-size run then replaces the ones it can measure itself."""
        assert plan.estimate_scale is not None and plan.tile is not None
        small = F.interpolate(x, scale_factor=plan.estimate_scale, mode="bicubic",
                              antialias=True, align_corners=False).clamp(0, 1)
        padded = flip_pad(small, self.config.pad_multiple)
        tiles = tile_grid(self.config, (padded.shape[-2], padded.shape[-1]), plan.tile,
                          plan.overlap, blend=0).tiles
        run = TileRun(padded, _batches(tiles, plan.batch), len(self.executor.segments) - 1,
                      "host")
        return self.executor.run(run, None, lambda fraction: progress.check())


def _batches(tiles: list[Tile], size: int) -> list[list[Tile]]:
    return [tiles[i : i + size] for i in range(0, len(tiles), size)]
