"""Which device runs the model: `auto` picks CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import torch

from adacode_cli.errors import AdaCodeError


class DeviceError(AdaCodeError):
    """The requested device does not exist or is not usable on this machine."""


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(
    spec: str, *, auto_mps: bool = True, cuda_index: int | None = None
) -> torch.device:
    """Parse `auto`, `cpu`, `cuda`, `cuda:N` or `mps` into a device that exists here.

    `auto` is CUDA, then (with `auto_mps`) Apple MPS, then the CPU; a bare `cuda` (and `auto` on
    CUDA) is GPU `cuda_index`, by default the current one. Training passes its local rank and
    leaves MPS to an explicit `mps`.
    """
    spec = spec.strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            spec = "cuda"
        else:
            return torch.device("mps") if auto_mps and _mps_available() else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not _mps_available():
            raise DeviceError("device mps is not available on this machine")
        return torch.device("mps")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {spec} requested but CUDA is not available")
        default = torch.cuda.current_device() if cuda_index is None else cuda_index
        index_text = spec.partition(":")[2] or str(default)
        if not index_text.isdigit() or int(index_text) >= torch.cuda.device_count():
            raise DeviceError(
                f"device {spec} does not exist ({torch.cuda.device_count()} CUDA device(s))"
            )
        return torch.device("cuda", int(index_text))
    raise DeviceError(f"unknown device {spec!r} (use auto, cpu, cuda, cuda:N or mps)")


def describe(device: torch.device) -> str:
    """A short human name for notices and benchmark tables."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)
