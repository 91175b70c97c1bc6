"""Convolutional building blocks shared by every AdaCode network (official key names)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
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


class DerivedTensor:
    """A tensor derived from parameters (a bias lookup, a 16-bit weight copy), kept while no
    gradient can flow into them and rebuilt when one of them changes (a weight load)."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._value: torch.Tensor | None = None

    def get(self, sources: tuple[torch.Tensor, ...], tag: object,
            make: Callable[[], torch.Tensor]) -> torch.Tensor:
        if torch.compiler.is_compiling() or (
            torch.is_grad_enabled() and any(s.requires_grad for s in sources)
        ):
            return make()
        # inference tensors have no version counter; they cannot change outside inference mode
        key = (tag, *((s.device, -1 if s.is_inference() else s._version, s.data_ptr())
                      for s in sources))
        if key != self._key or self._value is None:
            self._key, self._value = None, None  # free the old copy before building the new
            self._value, self._key = make(), key
        return self._value


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


def _fold(weight: torch.Tensor, dim: int, phase: int) -> torch.Tensor:
    """The 2 taps along `dim` that a 3-tap kernel applies to a nearest-2x-upsampled row or
    column of output `phase` (0: even, 1: odd): the taps that land on one source pixel add."""
    if phase == 0:
        return torch.cat([weight.narrow(dim, 0, 1), weight.narrow(dim, 1, 2).sum(dim, True)], dim)
    return torch.cat([weight.narrow(dim, 0, 2).sum(dim, True), weight.narrow(dim, 2, 1)], dim)


class NearestUpConv(nn.Conv2d):
    """Nearest 2x upsampling, then this 3x3 convolution (the official `N.0` upsample and `N.1`
    conv; `N.0` holds no weights and is an identity here).

    `subpixel` (the default) computes the same map at the input's resolution: each of the four
    output phases is a 2x2 convolution of the input whose taps are sums of the 3x3 taps, so the
    four phases are one convolution with 4x the output channels, and one strided copy interleaves
    them. That is 16/36 of the multiply-adds and no upsampled copy; the result equals the plain
    path up to the rounding of the summed taps (fp32 noise). Measured faster on the CPU only
    (1.5-3x for this step); other devices, and `subpixel = False`, upsample.
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(in_ch, out_ch, 3, padding=1)
        self.subpixel = True
        self._kernels, self._biases = DerivedTensor(), DerivedTensor()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.subpixel or x.device.type != "cpu":
            return super().forward(F.interpolate(x, scale_factor=2, mode="nearest"))
        weight = self._kernels.get((self.weight,), None, self._phase_kernels)
        bias = self._biases.get((self.bias,), None, lambda: self.bias.repeat(4))
        return self._interleave(F.conv2d(x, weight, bias, padding=1))

    def _phase_kernels(self) -> torch.Tensor:
        """(4 * out, in, 2, 2): the phase kernels in (row phase, column phase) order, in the
        weight's memory layout."""
        w = self.weight
        kernels = torch.cat([_fold(_fold(w, 2, a), 3, b) for a in (0, 1) for b in (0, 1)])
        return kernels.contiguous(memory_format=_layout(w))

    def _interleave(self, phases: torch.Tensor) -> torch.Tensor:
        """(B, 4 * out, H + 1, W + 1) phase maps -> (B, out, 2H, 2W) in the same layout: output
        pixel (2i + a, 2j + b) is phase (a, b) at (i + a, j + b)."""
        b, _, h, w = phases.shape
        h, w, out = h - 1, w - 1, self.out_channels
        sb, sc, sh, sw = phases.stride()
        view = phases.as_strided((b, out, h, 2, w, 2),
                                 (sb, sc, sh, sh + 2 * out * sc, sw, sw + out * sc),
                                 phases.storage_offset())
        result = torch.empty((b, out, 2 * h, 2 * w), dtype=phases.dtype, device=phases.device,
                             memory_format=_layout(phases))
        result.view(b, out, h, 2, w, 2).copy_(view)
        return result


def _layout(x: torch.Tensor) -> torch.memory_format:
    """Channels-last where `x` is stored so (and not also plain contiguous), else contiguous."""
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def up_block(in_ch: int, out_ch: int, groups: int, eps: float) -> nn.Sequential:
    """Nearest 2x upsample and conv, two residual blocks (`N.1/2/3`; index 0, the official
    upsample, has no weights: `NearestUpConv` upsamples)."""
    return nn.Sequential(
        nn.Identity(),
        NearestUpConv(in_ch, out_ch),
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
