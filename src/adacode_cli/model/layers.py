"""Convolutional building blocks shared by every AdaCode network (official key names)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import nn

Statistics = tuple[torch.Tensor, torch.Tensor]  # (mean, var) per group, shape (groups,)
_GIVEN: ContextVar[Mapping[nn.Module, Statistics] | None] = ContextVar("given_statistics",
                                                                       default=None)


@contextmanager
def given_statistics(values: Mapping[nn.Module, Statistics]) -> Iterator[None]:
    """While inside (in this thread), every `GroupNorm` found in `values` normalises with the
    (mean, var) given there instead of its input's own: tiled inference hands each tile the
    image-wide statistics. Norms not in `values` normalise as usual."""
    token = _GIVEN.set(values)
    try:
        yield
    finally:
        _GIVEN.reset(token)


class GroupNorm(nn.GroupNorm):
    """GroupNorm of the residual blocks; a class of its own so the engine can find every instance
    and hand it image-wide statistics through `given_statistics`.

    16-bit inputs stay 16-bit: the native kernels accumulate in fp32 and return the input's dtype,
    where CUDA autocast would run the norm on an fp32 copy and return fp32 (2.5x the activation
    memory of a half-precision run, for no accuracy: the next convolution casts back to 16 bit).
    """

    def __init__(self, channels: int, groups: int, eps: float) -> None:
        super().__init__(num_groups=groups, num_channels=channels, eps=eps, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        given = _GIVEN.get()
        statistics = None if given is None else given.get(self)
        if statistics is None and x.dtype == torch.float32:
            return super().forward(x)
        with _autocast_off(x.device):
            if statistics is None:
                weight, bias = self.weight.to(x.dtype), self.bias.to(x.dtype)
                return F.group_norm(x, self.num_groups, weight, bias, self.eps)
            mean, var = statistics
            return self._normalise_with(x, mean.to(x.device), var.to(x.device))

    def _normalise_with(
        self, x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor
    ) -> torch.Tensor:
        """Given per-group statistics, GroupNorm is a per-channel affine map: inference-mode
        batch_norm computes it in one native kernel (fp32 inside, any memory layout)."""
        per_group = self.num_channels // self.num_groups
        mean = mean.float().repeat_interleave(per_group)
        var = var.float().repeat_interleave(per_group)
        return F.batch_norm(x, mean, var, self.weight, self.bias, False, 0.0, self.eps)


def _autocast_off(device: torch.device) -> AbstractContextManager[object]:
    if torch.amp.is_autocast_available(device.type) and torch.is_autocast_enabled(device.type):
        return torch.autocast(device.type, enabled=False)
    return nullcontext()


class NormLayer(nn.Module):
    """Wrapper that gives the official key layout `<name>.norm.weight`."""

    def __init__(self, channels: int, groups: int, eps: float) -> None:
        super().__init__()
        self.norm = GroupNorm(channels, groups, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


def _records_gradient(x: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and x.requires_grad


class FreshSiLU(nn.SiLU):
    """The SiLU after a norm, whose fresh output nothing else holds: computed in place where
    no gradient is recorded (one pass over memory instead of a read plus a newly allocated
    write)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x, inplace=not _records_gradient(x))


def residual_add(out: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """`out + skip` where `out` is a fresh result nothing else holds: added into `out` where
    no gradient is recorded and the dtype allows it."""
    if _records_gradient(out) or _records_gradient(skip) or out.dtype != torch.result_type(
        out, skip
    ):
        return out + skip
    return out.add_(skip)


class ResBlock(nn.Module):
    """Pre-activation residual block (GroupNorm, SiLU, conv) x 2, as in taming/FeMaSR."""

    def __init__(self, channels: int, groups: int, eps: float) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            NormLayer(channels, groups, eps),
            FreshSiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            NormLayer(channels, groups, eps),
            FreshSiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return residual_add(self.conv(x), x)


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
