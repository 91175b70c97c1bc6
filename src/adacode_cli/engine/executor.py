"""Run the network over a tile grid, straight through or layer by layer with exact statistics.

*Layered*: the steps of `graph.network_steps` are cut before every GroupNorm; each segment runs
over all tile batches, whose live tensors wait in a parking lot (`parking`: on the device, in
host RAM, or spilled to disk) until the next segment, and the image-wide statistics of the next
norm are summed from the tile cores in between. Every tile then computes exactly what it would
compute inside the whole image, up to the context its overlap gives it.

*Whole latent*: the Swin stacks, whose shifted windows reach furthest past a tile border, run
once over the whole image's latent between two layered passes (gathered from the tile cores,
cut back into the tiles), so tiles only need the overlap of the short convolutional reach.

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
    whole_latent: bool = False  # layered `whole` steps run once over the image's latent


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
        With `run.whole_latent`, the `whole` steps of the layered segments run once over the
        image's latent, gathered from the tile cores, and each tile gets its own window of their
        results back. `emit` gets each batch's final registers; None measures statistics only
        and skips the last segment.
        """
        statistics = dict(run.known)
        layered = self.segments[: min(run.layered, len(self.segments) - 1)]
        rest = [step for segment in self.segments[len(layered) :] for step in segment]
        batches = run.batches
        total = len(batches) * (len(layered) + (1 if emit is not None else 0))
        done = 0
        fresh = True  # the first pass cuts the tiles out of the image; later ones take them
        with self.running(statistics, tick), parking_lot(
            run.parking if layered else "device", self.device, self.precision.dtype,
            run.spill_bytes,
        ) as lot:
            for index, segment in enumerate(layered):
                following = self.segments[index + 1][0]
                assert following.norm is not None and following.source is not None
                moments = CoreMoments(following.norm.num_groups)
                parts, wholes = _split_at_whole(segment) if run.whole_latent else ([segment], [])
                results: Registers = {}
                for part, steps in enumerate(parts):
                    gather = wholes[part] if part < len(wholes) else None
                    latent = _Latent(gather, run.padded.shape[-2], run.padded.shape[-1])
                    for position, tiles in enumerate(batches):
                        regs = {"h": self.tile_batch(run, tiles)} if fresh else lot.take(position)
                        latent.scatter(results, regs, tiles)
                        run_steps(steps, regs)
                        if gather is None:
                            moments.add(regs[following.source], [t.local_core() for t in tiles],
                                        tiles[0].height)
                            done += 1
                            tick(done / total)
                        else:
                            latent.gather(regs, tiles)
                            tick(None)
                        lot.put(position, regs)
                        del regs
                    lot.next_segment()
                    fresh = False
                    results = latent.run()
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


def _split_at_whole(segment: list[Step]) -> tuple[list[list[Step]], list[Step]]:
    """The per-tile runs of `segment` between its `whole` steps, and those steps: k whole steps
    leave k + 1 runs (the last one may be empty: it still measures the next norm)."""
    parts: list[list[Step]] = [[]]
    wholes: list[Step] = []
    for step in segment:
        if step.whole:
            wholes.append(step)
            parts.append([])
        else:
            parts[-1].append(step)
    return parts, wholes


class _Latent:
    """One `whole` step over the whole padded image: its inputs gathered from every tile's core
    (cores partition the image, on the latent grid), run once, its results cut back into each
    tile's own window (`scatter`). Without a step it only scatters."""

    def __init__(self, step: Step | None, height: int, width: int) -> None:
        self.step = step
        self.height, self.width = height, width
        self.inputs: Registers = {}

    def gather(self, regs: Registers, tiles: list[Tile]) -> None:
        """Copy the cores of the step's inputs into whole-image tensors, then drop from `regs`
        what the step overwrites or reads for the last time."""
        assert self.step is not None
        for name in self.step.reads:
            value = regs[name]
            ratio = value.shape[-2] / tiles[0].height
            whole = self.inputs.get(name)
            if whole is None:
                shape = (1, value.shape[1], round(self.height * ratio), round(self.width * ratio))
                whole = self.inputs[name] = value.new_empty(shape)
            for b, tile in enumerate(tiles):
                top, left, bottom, right = (round(v * ratio) for v in tile.core)
                local_top, local_left, _, _ = (round(v * ratio) for v in tile.local_core())
                whole[0, :, top:bottom, left:right] = value[
                    b, :, local_top : local_top + bottom - top,
                    local_left : local_left + right - left]
        for name in {*self.step.writes, *self.step.frees}:
            regs.pop(name, None)

    def run(self) -> Registers:
        """The step on the gathered inputs: its results over the whole image ({} without one)."""
        if self.step is None:
            return {}
        regs, self.inputs = self.inputs, {}
        run_steps([self.step], regs)
        return {name: regs[name] for name in self.step.writes}

    def scatter(self, results: Registers, regs: Registers, tiles: list[Tile]) -> None:
        """Give each tile of the batch its window of the whole-image `results`."""
        for name, whole in results.items():
            ratio = whole.shape[-2] / self.height
            regs[name] = torch.cat([
                whole[:, :, round(t.top * ratio) : round((t.top + t.height) * ratio),
                      round(t.left * ratio) : round((t.left + t.width) * ratio)]
                for t in tiles
            ])
