"""Convolutional building blocks shared by every AdaCode network (official key names)."""

from __future__ import annotations

import torch
from torch import nn


class GroupNorm(nn.GroupNorm):
    """GroupNorm of the residual blocks; a class of its own so the engine can find every instance.

    The tiling engine swaps in image-wide statistics through `statistics_override`: when set, it
    is called with the input and returns (mean, var) per (batch, group) instead of computing them
    from the tile alone.
    """

    def __init__(self, channels: int, groups: int, eps: float) -> None:
        super().__init__(num_groups=groups, num_channels=channels, eps=eps, affine=True)
        self.statistics_override: object | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        override = self.statistics_override
        if override is None:
            return super().forward(x)
        mean, var = override(self, x)
        batch, channels = x.shape[:2]
        grouped = x.reshape(batch, self.num_groups, -1)
        normed = (grouped - mean[..., None]) * torch.rsqrt(var[..., None] + self.eps)
        normed = normed.reshape_as(x)
        shape = (1, channels) + (1,) * (x.dim() - 2)
        return normed * self.weight.reshape(shape) + self.bias.reshape(shape)


class NormLayer(nn.Module):
    """Wrapper that gives the official key layout `<name>.norm.weight`."""

    def __init__(self, channels: int, groups: int, eps: float) -> None:
        super().__init__()
        self.norm = GroupNorm(channels, groups, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


class ResBlock(nn.Module):
    """Pre-activation residual block (GroupNorm, SiLU, conv) x 2, as in taming/FeMaSR."""

    def __init__(self, channels: int, groups: int, eps: float) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            NormLayer(channels, groups, eps),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            NormLayer(channels, groups, eps),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + x


def down_block(in_ch: int, out_ch: int, groups: int, eps: float) -> nn.Sequential:
    """Stride-2 conv then two residual blocks (`blocks.N.0/1/2`)."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1),
        ResBlock(out_ch, groups, eps),
        ResBlock(out_ch, groups, eps),
    )


def up_block(in_ch: int, out_ch: int, groups: int, eps: float) -> nn.Sequential:
    """Nearest 2x upsample, conv, two residual blocks (`N.1/2/3`, index 0 has no weights)."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(in_ch, out_ch, 3, padding=1),
        ResBlock(out_ch, groups, eps),
        ResBlock(out_ch, groups, eps),
    )


class DecoderBlock(nn.Module):
    """One decoder step; the extra `block` level reproduces the official key names."""

    def __init__(self, in_ch: int, out_ch: int, groups: int, eps: float) -> None:
        super().__init__()
        self.block = up_block(in_ch, out_ch, groups, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)
