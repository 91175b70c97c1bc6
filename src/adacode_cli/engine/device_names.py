"""How a device is spelled (`--device`, `train.device`), checked before torch is imported;
whether it exists on this machine is `engine.device`'s question, which needs torch."""

from __future__ import annotations

import re

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"


def is_device_name(spec: str) -> bool:
    """Whether `spec` is one of the device names the engine and the trainer understand."""
    return re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", spec.strip().lower()) is not None
