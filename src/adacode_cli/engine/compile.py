"""`torch.compile` (inductor) for the whole-image path, with its artefacts kept between runs.

Inductor fuses the memory-bound parts of the network (GroupNorm with the SiLU after it, the
residual adds, the window reshuffles) into generated C++/OpenMP (CPU) or Triton (CUDA) kernels.
Compiling costs seconds to minutes per model, precision and input shape, so inductor's caches
(the FX graph cache and the generated kernels) live under the adacode cache root
(`ADACODE_HOME`, else the user cache folder) in `compiled/torch-<version>`: a second process
with the same model and shape loads the kernels instead of generating them again.

`auto` compiles only where `benchmarks/cpu.py --compile` measured a gain (`MEASURED_FASTER`).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from adacode_cli.errors import AdaCodeError

COMPILE_MODES = ("auto", "on", "off")
CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"
# (device type, precision) pairs where compiling measured faster than eager, end to end with
# the compile time of a cached run included (benchmarks/cpu.py --compile); none yet: on this
# 2-core CPU the compiled whole image was not faster (README, "The inference engine").
MEASURED_FASTER: frozenset[tuple[str, str]] = frozenset()


def compile_cache_dir() -> Path:
    """Where inductor keeps its artefacts: one folder per torch version under the cache root."""
    from adacode_cli.weights.cache import cache_root

    return cache_root() / "compiled" / f"torch-{torch.__version__}"


def wants_compile(mode: str, device: torch.device, precision: str) -> bool:
    """Whether `mode` compiles on this device at this precision."""
    if mode not in COMPILE_MODES:
        raise AdaCodeError(f"unknown compile mode {mode!r} (auto, on or off)")
    if mode == "auto":
        return (device.type, precision) in MEASURED_FASTER
    return mode == "on"


def compiled_network(
    network: nn.Module, mode: str, device: torch.device, precision: str
) -> nn.Module:
    """`network` compiled by inductor where `mode` asks for it, else `network` itself.

    The compiled module shares the network's parameters (a layout change reaches it) and
    forwards attribute access to it, so it stands in wherever the network is called. A user's
    own TORCHINDUCTOR_CACHE_DIR is respected.
    """
    if not wants_compile(mode, device, precision):
        return network
    _use_cache_dir(compile_cache_dir())
    return torch.compile(network, dynamic=False)  # type: ignore[return-value]


def _use_cache_dir(folder: Path) -> None:
    """Point inductor at `folder`, unless the user chose a folder of their own. Importing
    torch._dynamo fills the variable with torch's default, so that value counts as unset."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    current = os.environ.get(CACHE_ENV)
    if current is None or Path(current).resolve() == Path(default_cache_dir()).resolve():
        folder.mkdir(parents=True, exist_ok=True)
        os.environ[CACHE_ENV] = str(folder)
