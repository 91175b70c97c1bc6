"""Run the network over a tile grid, straight through or layer by layer with exact statistics.

*Layered*: the steps of `graph.network_steps` are cut before every GroupNorm; each segment runs
over all tile batches, whose live tensors wait in registers (on the CPU when the model runs on an
accelerator) until the next segment, and the image-wide statistics of the next norm are summed
from the tile cores in between. Every tile then computes exactly what it would compute inside the
whole image, up to the context its overlap gives it. Memory grows with the image (the registers).

*Streaming*: each batch runs all steps at once with the statistics already known (for example
estimated on a downscaled copy); memory is bounded by the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import torch

from adacode_cli.engine.graph import Registers, Step, network_steps, run_steps, segments
from adacode_cli.engine.normstats import CoreMoments, NormStatistics
from adacode_cli.engine.precision import Precision
from adacode_cli.engine.tiling import Tile
from adacode_cli.model.networks import AdaCodeNet

Emit = Callable[[list[Tile], Registers], None]
Tick = Callable[[float], None]


class TileExecutor:
    """Runs one network on tile batches of a padded image on one device."""

    def __init__(
        self,
        network: AdaCodeNet,
        device: torch.device,
        precision: Precision,
    ) -> None:
        self.device = device
        self.precision = precision
        self.channels_last = False  # the restorer sets it with the network's layout
        self.steps: list[Step] = network_steps(network)
        self.segments = segments(self.steps)
        self.statistics = NormStatistics(network)

    def precision_context(self) -> AbstractContextManager[None]:
        """Autocast for 16-bit runs; TF32 off (fp32) or on (tf32) on CUDA."""
        return self.precision.applied(self.device)

    @contextmanager
    def running(self) -> Iterator[None]:
        with torch.inference_mode(), self.precision_context(), self.statistics.attached():
            yield

    def tile_batch(self, padded: torch.Tensor, tiles: list[Tile]) -> torch.Tensor:
        """Cut `tiles` out of the (1, 3, H, W) padded image as one batch on the device."""
        batch = torch.cat(
            [padded[:, :, t.top : t.top + t.height, t.left : t.left + t.width] for t in tiles]
        ).to(self.device)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch

    def run(
        self,
        padded: torch.Tensor,
        batches: list[list[Tile]],
        emit: Emit | None,
        tick: Tick,
        exact_segments: int,
        park_on_device: bool = True,
    ) -> None:
        """Run every batch through the network.

        The first `exact_segments` segments run layered, measuring the image-wide statistics of
        the norm that starts each following segment (`len(self.segments) - 1`: all of them);
        the remaining steps run straight through per batch with the statistics already in
        `self.statistics`. `emit` gets each batch's final registers; None measures statistics
        only and skips the last segment. Parked registers move to host RAM between segments
        unless `park_on_device`.
        """
        layered = self.segments[: min(exact_segments, len(self.segments) - 1)]
        rest = [step for segment in self.segments[len(layered) :] for step in segment]
        total = len(batches) * (len(layered) + (1 if emit is not None else 0))
        parked: list[Registers | None] = [None] * len(batches)
        done = 0
        with self.running():
            for index, segment in enumerate(layered):
                following = self.segments[index + 1][0]
                assert following.norm is not None and following.source is not None
                moments = CoreMoments(following.norm.num_groups)
                for position, tiles in enumerate(batches):
                    regs = self._take(parked, position, padded, tiles)
                    run_steps(segment, regs)
                    moments.add(regs[following.source], [t.local_core() for t in tiles],
                                tiles[0].height)
                    parked[position] = self._park(regs, park_on_device)
                    del regs
                    done += 1
                    tick(done / total)
                mean, var = moments.result()
                self.statistics.values[following.norm] = (mean.to(self.device),
                                                          var.to(self.device))
            if emit is None:
                return
            for position, tiles in enumerate(batches):
                regs = self._take(parked, position, padded, tiles)
                run_steps(rest, regs)
                emit(tiles, regs)
                del regs
                done += 1
                tick(done / total)

    def _take(
        self, parked: list[Registers | None], position: int, padded: torch.Tensor,
        tiles: list[Tile],
    ) -> Registers:
        """The registers of a batch: parked ones (released from the list) or its input tile."""
        regs = parked[position]
        if regs is None:
            return {"h": self.tile_batch(padded, tiles)}
        parked[position] = None
        return self._unpark(regs)

    def _park(self, regs: Registers, on_device: bool) -> Registers:
        """Keep a batch's registers between segments in the compute precision (autocast leaves
        some residual streams in fp32; the next segment casts them down anyway), on the device
        or in host RAM (pinned on CUDA, copied without waiting: pageable copies made host
        parking far slower than the whole image on an H200)."""
        compact: dict[int, torch.Tensor] = {}  # one copy per tensor ("keep" steps alias them)
        for value in regs.values():
            if id(value) not in compact:
                compact[id(value)] = value.to(self.precision.dtype) if value.is_floating_point() \
                    else value
        if on_device or self.device.type == "cpu":
            return {name: compact[id(value)] for name, value in regs.items()}
        pinned = self.device.type == "cuda"
        hosted: dict[int, torch.Tensor] = {}
        for key, value in compact.items():
            host = torch.empty_like(value, device="cpu", pin_memory=pinned)
            host.copy_(value, non_blocking=pinned)
            hosted[key] = host
        return {name: hosted[id(value)] for name, value in regs.items()}

    def _unpark(self, regs: Registers) -> Registers:
        pinned = self.device.type == "cuda"
        moved: dict[int, torch.Tensor] = {}
        for value in regs.values():
            if id(value) not in moved:
                moved[id(value)] = value.to(self.device, non_blocking=pinned)
        return {name: moved[id(value)] for name, value in regs.items()}
