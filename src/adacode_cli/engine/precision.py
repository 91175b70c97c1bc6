"""Compute precision: `auto` is fp16 on CUDA and fp32 elsewhere; bf16 runs where asked.

Reduced precision runs under autocast: convolutions and matrix products in 16 bit, while the
vector-quantizer distances and argmin stay in fp32 (the quantizer casts up itself) and the
attention softmax accumulates in fp32 inside the fused attention kernels; GroupNorm with
image-wide statistics normalises in fp32.
"""

from __future__ import annotations

import torch

from adacode_cli.errors import AdaCodeError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class PrecisionError(AdaCodeError):
    """The requested precision cannot run on the chosen device."""


def resolve_precision(spec: str, device: torch.device) -> tuple[torch.dtype, list[str]]:
    """The compute dtype for `spec` on `device`, and notices about slow or unusual choices."""
    spec = spec.strip().lower()
    if spec == "auto":
        return (torch.float16 if device.type == "cuda" else torch.float32), []
    if spec not in DTYPES:
        raise PrecisionError(f"unknown precision {spec!r} (use auto, fp32, bf16 or fp16)")
    dtype = DTYPES[spec]
    notices: list[str] = []
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise PrecisionError(f"bf16 is not supported on {device}; use fp16 or fp32")
    if device.type == "cpu" and dtype != torch.float32 and not cpu_has_native(dtype):
        notices.append(f"{spec} is emulated on this CPU and may be slower than fp32")
    return dtype, notices


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


def name_of(dtype: torch.dtype) -> str:
    return next(name for name, value in DTYPES.items() if value == dtype)
