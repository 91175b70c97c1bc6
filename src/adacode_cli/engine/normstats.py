"""Image-wide GroupNorm statistics for tiled inference.

The whole-image network normalises every GroupNorm over the whole padded image; a tile on its own
would normalise over itself, and neighbouring tiles then disagree in colour and contrast (the
official tiling). `NormStatistics` plugs into `GroupNorm.statistics_override` and hands every
norm its image-wide (mean, var). `CoreMoments` computes them from the tiles: each tile adds the
moments of its *core* (the part of the padded image it owns; cores partition the image), merged
in float64 with Chan's rule so the result does not depend on how the image was cut.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from adacode_cli.model.layers import GroupNorm

Box = tuple[int, int, int, int]


class CoreMoments:
    """Running count, mean and centred sum of squares per group of one tensor across tiles."""

    def __init__(self, groups: int) -> None:
        self.groups = groups
        self.count = 0.0
        self.mean = torch.zeros(groups, dtype=torch.float64)
        self.m2 = torch.zeros(groups, dtype=torch.float64)

    def add(self, x: torch.Tensor, cores: list[Box], tile_height: int) -> None:
        """Add the cores (input-pixel boxes local to each tile) of the (B, C, h, w) batch `x`."""
        ratio = x.shape[-2] / tile_height
        means, m2s, counts = [], [], []
        for b, (top, left, bottom, right) in enumerate(cores):
            core = x[b, :, round(top * ratio) : round(bottom * ratio),
                     round(left * ratio) : round(right * ratio)]
            values = core.reshape(self.groups, -1).float()
            var, mean = torch.var_mean(values, dim=-1, correction=0)
            means.append(mean)
            m2s.append(var * values.shape[-1])
            counts.append(values.shape[-1])
        for mean, m2, count in zip(
            torch.stack(means).double().cpu(), torch.stack(m2s).double().cpu(), counts,
            strict=True,
        ):
            self._merge(float(count), mean, m2)

    def _merge(self, count: float, mean: torch.Tensor, m2: torch.Tensor) -> None:
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + m2 + delta.square() * (self.count * count / total)
        self.count = total

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, biased var) per group as float32, like `nn.GroupNorm` computes them."""
        return self.mean.float(), (self.m2 / self.count).float()


class NormStatistics:
    """The (mean, var) every GroupNorm of a network uses; a norm without one falls back to the
    tile's own statistics (the official tiling behaviour)."""

    def __init__(self, network: nn.Module) -> None:
        self.norms = [m for m in network.modules() if isinstance(m, GroupNorm)]
        self.values: dict[GroupNorm, tuple[torch.Tensor, torch.Tensor]] = {}

    @contextmanager
    def attached(self) -> Iterator[NormStatistics]:
        """Route every GroupNorm of the network through these statistics while inside."""
        for norm in self.norms:
            norm.statistics_override = self
        try:
            yield self
        finally:
            for norm in self.norms:
                norm.statistics_override = None

    def __call__(
        self, module: GroupNorm, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        known = self.values.get(module)
        if known is None:
            return None
        mean, var = known
        return mean.to(x.device), var.to(x.device)
