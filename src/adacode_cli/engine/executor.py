"""Run the network over a tile grid, straight through or layer by layer with exact statistics.

*Layered*: the steps of `graph.network_steps` are cut before every GroupNorm; each segment runs
over all tile batches, whose live tensors wait in a parking lot (`parking`: on the device, in
host RAM, or spilled to disk) until the next segment, and the image-wide statistics of the next
norm are summed from the tile cores in between. Every tile then computes exactly what it would
compute inside the whole image, up to the context its overlap gives it.

*Streaming*: each batch runs all remaining steps at once with the statistics already known (for
example estimated on a downscaled copy); memory is bounded by the batch.

Everything that belongs to one image (its tiles, layout, parking place, known statistics) is
passed to `run`; the executor itself holds only the network's steps, device and precision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

import torch

from adacode_cli.engine.graph import Registers, Step, network_steps, run_steps, segments
from adacode_cli.engine.normstats import CoreMoments
from adacode_cli.engine.parking import parking_lot
from adacode_cli.engine.precision import Precision
from adacode_cli.engine.tiling import Tile
from adacode_cli.model.layers import Statistics, given_statistics
from adacode_cli.model.networks import AdaCodeNet
from adacode_cli.model.padding import flip_pad
from adacode_cli.model.swin import SwinBlock

Emit = Callable[[list[Tile], Registers], None]
Tick = Callable[[float | None], None]  # fraction done (None: unchanged); may raise to stop
KnownStatistics = dict[torch.nn.Module, Statistics]


@dataclass
class TileRun:
    """One image's tiled run: its padded input, tile batches and how to run them."""

    padded: torch.Tensor  # (1, 3, H, W) on the CPU
    batches: list[list[Tile]]
    layered: int  # leading segments run layered, measuring the statistics of the next norm
    parking: str = "device"  # where layered registers wait: device | host | disk
    spill_bytes: int = 0  # disk space the spilled registers need (parking "disk")
    channels_last: bool = False
    known: KnownStatistics = field(default_factory=dict)  # e.g. estimated on a smaller copy


class TileExecutor:
    """Runs one network on tile batches of a padded image on one device."""

    def __init__(self, network: AdaCodeNet, device: torch.device, precision: Precision) -> None:
        self.network = network
        self.device = device
        self.precision = precision
        self.steps: list[Step] = network_steps(network)
        self.segments = segments(self.steps)

    def precision_context(self) -> AbstractContextManager[None]:
        """Autocast for 16-bit runs; TF32 off (fp32) or on (tf32) on CUDA."""
        return self.precision.applied(self.device)

    @contextmanager
    def running(self, statistics: KnownStatistics, tick: Tick) -> Iterator[None]:
        """Inference with `statistics` given to the norms, and `tick(None)` (a stop check)
        before every Swin block: a Swin stack is one step of the graph, and on a large image
        it runs for many seconds."""
        blocks = [m for m in self.network.modules() if isinstance(m, SwinBlock)]
        hooks = [block.register_forward_pre_hook(lambda module, args: tick(None))
                 for block in blocks]
        try:
            with torch.inference_mode(), self.precision_context(), \
                    given_statistics(statistics):
                yield
        finally:
            for hook in hooks:
                hook.remove()

    def run_whole(self, x: torch.Tensor, multiple: int, channels_last: bool, tick: Tick
                  ) -> Registers:
        """All steps on the whole image `x`, padded to `multiple` on the device, calling `tick`
        between steps (a stop request is honoured within one step)."""
        with self.running({}, tick):
            regs = {"h": flip_pad(self.on_device(x, channels_last), multiple)}
            for index, step in enumerate(self.steps):
                run_steps([step], regs)
                tick((index + 1) / len(self.steps))
        return regs

    def on_device(self, pixels: torch.Tensor, channels_last: bool) -> torch.Tensor:
        pixels = pixels.to(self.device)
        if channels_last:
            pixels = pixels.contiguous(memory_format=torch.channels_last)
        return pixels

    def tile_batch(self, run: TileRun, tiles: list[Tile]) -> torch.Tensor:
        """Cut `tiles` out of the padded image as one batch on the device."""
        padded = run.padded
        batch = torch.cat(
            [padded[:, :, t.top : t.top + t.height, t.left : t.left + t.width] for t in tiles]
        )
        return self.on_device(batch, run.channels_last)

    def run(self, run: TileRun, emit: Emit | None, tick: Tick) -> KnownStatistics:
        """Run every batch of `run` through the network; returns the statistics in force.

        The first `run.layered` segments run layered, measuring the image-wide statistics of the
        norm that starts each following segment (`len(self.segments) - 1`: all of them); the
        remaining steps run straight through per batch with the statistics known by then.
        `emit` gets each batch's final registers; None measures statistics only and skips the
        last segment.
        """
        statistics = dict(run.known)
        layered = self.segments[: min(run.layered, len(self.segments) - 1)]
        rest = [step for segment in self.segments[len(layered) :] for step in segment]
        batches = run.batches
        total = len(batches) * (len(layered) + (1 if emit is not None else 0))
        done = 0
        with self.running(statistics, tick), parking_lot(
            run.parking if layered else "device", self.device, self.precision.dtype,
            run.spill_bytes,
        ) as lot:
            for index, segment in enumerate(layered):
                following = self.segments[index + 1][0]
                assert following.norm is not None and following.source is not None
                moments = CoreMoments(following.norm.num_groups)
                for position, tiles in enumerate(batches):
                    regs = lot.take(position) if index else {"h": self.tile_batch(run, tiles)}
                    run_steps(segment, regs)
                    moments.add(regs[following.source], [t.local_core() for t in tiles],
                                tiles[0].height)
                    lot.put(position, regs)
                    del regs
                    done += 1
                    tick(done / total)
                lot.next_segment()
                mean, var = moments.result()
                statistics[following.norm] = (mean.to(self.device), var.to(self.device))
            if emit is None:
                return statistics
            for position, tiles in enumerate(batches):
                regs = lot.take(position) if layered else {"h": self.tile_batch(run, tiles)}
                run_steps(rest, regs)
                emit(tiles, regs)
                del regs
                done += 1
                tick(done / total)
        return statistics
