"""Image-wide GroupNorm statistics for tiled inference.

The whole-image network normalises every GroupNorm over the whole padded image; a tile on its own
would normalise over itself, and neighbouring tiles then disagree in colour and contrast (the
official tiling). The executor hands every norm its image-wide (mean, var) through
`layers.given_statistics`. `CoreMoments` computes them from the tiles: each tile adds the
moments of its *core* (the part of the padded image it owns; cores partition the image), merged
in float64 with Chan's rule so the result does not depend on how the image was cut.
"""

from __future__ import annotations

import torch

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
