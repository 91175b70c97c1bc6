"""Compute precision: `auto` is fp16 on CUDA and fp32 elsewhere; tf32, bf16 and fp16 run where
asked.

Reduced precision runs under autocast: convolutions and matrix products in 16 bit, while the
vector-quantizer distances and argmin stay in fp32 (the quantizer casts up itself), the attention
softmax accumulates in fp32 inside the fused attention kernels, and GroupNorm accumulates in fp32
inside its kernel. fp32 on CUDA is true fp32: PyTorch lets cuDNN convolutions use TF32 (10-bit
mantissa) by default, which moves the output away from the official fp32 numbers, so fp32 runs
switch TF32 off while they run; `tf32` switches it on for convolutions and matrix products (the
speed of the official code on a GPU, a little away from fp32). On the CPU tf32 is fp32.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from adacode_cli.errors import AdaCodeError

DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16,
          "fp16": torch.float16}


class PrecisionError(AdaCodeError):
    """The requested precision cannot run on the chosen device."""


@dataclass(frozen=True)
class Precision:
    """A resolved precision: its name and the dtype the network computes in."""

    name: str
    dtype: torch.dtype

    @contextmanager
    def applied(self, device: torch.device) -> Iterator[None]:
        """Autocast for 16-bit precisions; TF32 on (tf32) or off (fp32) on CUDA while inside."""
        if self.dtype != torch.float32:
            with torch.autocast(device.type, dtype=self.dtype):
                yield
            return
        if device.type != "cuda":
            yield
            return
        saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        allow = self.name == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allow
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def resolve_precision(spec: str, device: torch.device) -> tuple[Precision, list[str]]:
    """The precision for `spec` on `device`, and notices about slow or unusual choices."""
    spec = spec.strip().lower()
    if spec == "auto":
        spec = "fp16" if device.type == "cuda" else "fp32"
    if spec not in DTYPES:
        raise PrecisionError(f"unknown precision {spec!r} (use auto, fp32, tf32, bf16 or fp16)")
    dtype = DTYPES[spec]
    notices: list[str] = []
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise PrecisionError(f"bf16 is not supported on {device}; use fp16 or fp32")
    if device.type == "cpu" and dtype != torch.float32 and not cpu_has_native(dtype):
        notices.append(f"{spec} is emulated on this CPU and may be slower than fp32")
    return Precision(spec, dtype), notices


def cpu_has_native(dtype: torch.dtype) -> bool:
    """Whether this CPU has instructions for `dtype` matrix products (AVX512-BF16/AMX, FP16)."""
    cpu = getattr(torch, "cpu", None)
    if dtype == torch.bfloat16:
        check = getattr(cpu, "_is_avx512_bf16_supported", None)
        amx = getattr(cpu, "_is_amx_tile_supported", None)
        return bool((check and check()) or (amx and amx()))
    if dtype == torch.float16:
        check = getattr(cpu, "_is_avx512_fp16_supported", None)
        amx = getattr(cpu, "_is_amx_fp16_supported", None)
        return bool((check and check()) or (amx and amx()))
    return True
