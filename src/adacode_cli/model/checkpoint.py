"""Checkpoint formats: the official `.pth` release files and our self-describing safetensors.

Official files are `{'params': state_dict}` pickles. We read them with `weights_only=True` only,
drop the stray training-time keys and derived buffers, derive the architecture from tensor shapes,
and load strictly: a missing or mis-shaped tensor is an error that names the key (the official
loader's `strict=False` silently keeps random weights). Our format is safetensors with the config
in the metadata, so loading needs nothing else. This module reads and writes paths only; it knows
nothing about URLs or terminals.
"""

from __future__ import annotations

import pickle
import pickletools
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from adacode_cli.atomic import atomic_save
from adacode_cli.errors import CheckpointError
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.detect import (
    FORMAT_NAME,
    FORMAT_VERSION,
    clean_official,
    config_from_metadata,
    infer_config,
    naming,
)
from adacode_cli.model.networks import AdaCodeNet, build_network

StateDict = dict[str, torch.Tensor]


def require_file(path: Path) -> Path:
    """`path` if it is a regular file; a folder, a FIFO or nothing at all is a named user error."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a weights file")
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a regular file (weights must be a file)")
    return path


def unreadable(path: Path, error: OSError) -> CheckpointError:
    """The one-line error for a weights file the system will not let us read."""
    return CheckpointError(f"{path}: cannot read it ({error.strerror or error})")


def load_pth(path: Path) -> Any:
    """`torch.load` with `weights_only=True` (no code runs); every failure is one named line.

    torch's own warnings (legacy format, pickle protocol) are silenced: the user sees our verdict
    only. A pickle that names a Python global (a class, a function) is code and is refused.
    """
    path = require_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "global" in str(error).lower() or _carries_code(path):
            raise CheckpointError(
                f"{path}: refused, the file contains Python objects (code), not only tensors"
            ) from error
        raise CheckpointError(f"{path}: damaged or not a PyTorch checkpoint") from error
    except OSError as error:
        if error.errno is None:  # zip and stream errors from torch are OSErrors without errno
            raise CheckpointError(f"{path}: truncated or not a PyTorch checkpoint") from error
        raise unreadable(path, error) from error
    except Exception as error:  # torch.load fails in many ways (struct, zip, EOF...) on bad bytes
        raise CheckpointError(f"{path}: truncated or not a PyTorch checkpoint") from error


# Opcodes that import or call Python objects: a plain state dict needs none outside torch's zip.
_CODE_OPCODES = frozenset(
    {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX", "BUILD"}
)


def _carries_code(path: Path) -> bool:
    """Whether a plain pickle (one torch refused by its operands) would import or call code.

    `pickletools.genops` only parses the opcodes, it never executes them.
    """
    try:
        with open(path, "rb") as handle:
            return any(op.name in _CODE_OPCODES for op, _, _ in pickletools.genops(handle))
    except Exception:  # not a pickle at all: garbage, not code
        return False


def read_official(path: Path) -> StateDict:
    """Tensors of an official `.pth` file; code-carrying pickles are refused."""
    data = load_pth(path)
    if isinstance(data, dict):
        for key in ("params", "params_ema", "state_dict"):
            if isinstance(data.get(key), dict):
                data = data[key]
                break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"{path}: no state dict of tensors found")
    return {str(k).removeprefix("module."): v for k, v in data.items()}


def check_state(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Tensor],
    *,
    source: object = None,
    allowed_extra: Iterable[str] = (),
) -> None:
    """Raise unless `state` has every key of `expected` with its shape and nothing else (keys
    starting with one of `allowed_extra` aside). The one strict check of every network we load:
    a tensor left at its random initial value would run without a sound and give wrong results.
    `source` (the file) starts each message."""
    where = f"{source}: " if source is not None else ""
    missing = [key for key in expected if key not in state]
    if missing:
        raise CheckpointError(
            f"{where}missing tensor '{missing[0]}' ({len(missing)} missing in all)"
        )
    extra_prefixes = tuple(allowed_extra)
    unexpected = [k for k in state if k not in expected and not k.startswith(extra_prefixes)]
    if unexpected:
        raise CheckpointError(
            f"{where}unexpected tensor '{unexpected[0]}' ({len(unexpected)} unexpected in all; "
            f"wrong network?)"
        )
    for key, tensor in expected.items():
        if state[key].shape != tensor.shape:
            raise CheckpointError(
                f"{where}tensor '{key}' has shape {tuple(state[key].shape)}, "
                f"the architecture needs {tuple(tensor.shape)}"
            )


def check_layout(config: AdaCodeConfig, state: StateDict, source: object = None) -> None:
    """The strict check against the architecture of `config`, without allocating a network
    (the shapes come from a build on the meta device)."""
    with torch.device("meta"):
        expected = build_network(config).state_dict()
    check_state(state, expected, source=source)


def load_state_strict(network: AdaCodeNet, state: StateDict, source: object = None) -> None:
    """Load every tensor; any missing, unexpected or mis-shaped key is a named error."""
    check_state(state, network.state_dict(), source=source)
    network.load_state_dict(state, strict=True)


def save_safetensors(
    path: Path,
    config: AdaCodeConfig,
    state: StateDict,
    should_stop: Callable[[], bool] | None = None,
) -> None:
    """Write tensors plus a metadata JSON (format version, kind, task, scale, config) atomically.

    `should_stop` is polled per tensor; when it turns true, KeyboardInterrupt leaves no file.
    """
    from safetensors.torch import save_file

    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "stage": config.stage,
        "task": config.task,
        "scale": str(config.scale),
        "config": config.to_json(),
    }
    tensors = {}
    for key, value in state.items():
        stop_if_asked(should_stop)
        tensors[key] = value.detach().to("cpu").contiguous()
    atomic_save(Path(path), lambda temp: save_file(tensors, str(temp), metadata=metadata))


def stop_if_asked(should_stop: Callable[[], bool] | None) -> None:
    """Raise KeyboardInterrupt (the CLI's exit 130) once the caller's stop request is set."""
    if should_stop is not None and should_stop():
        raise KeyboardInterrupt


def read_safetensors(path: Path) -> tuple[AdaCodeConfig, StateDict]:
    """Config and tensors of one of our files."""
    from safetensors import SafetensorError, safe_open

    path = require_file(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except OSError as error:
        raise unreadable(path, error) from error
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path}: truncated or not a safetensors file") from error
    config = config_from_metadata(metadata, path)
    if config is None:
        with naming(path):
            config = infer_config(clean_official(state))
        return config, clean_official(state, keep_semantic=config.stage == "vqgan")
    return config, state


def is_safetensors(path: Path) -> bool:
    """Sniff the format from the content (8-byte header length, then a JSON header)."""
    path = require_file(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
    except OSError as error:
        raise unreadable(path, error) from error
    return len(head) == 9 and head[8:9] == b"{"


def read_checkpoint(path: Path) -> tuple[AdaCodeConfig, StateDict]:
    """Config and clean tensors of an official `.pth` or one of our `.safetensors` files."""
    path = Path(path)
    if is_safetensors(path):
        return read_safetensors(path)
    raw = read_official(path)
    with naming(path):
        config = infer_config(clean_official(raw, keep_semantic=True))
    return config, clean_official(raw, keep_semantic=config.stage == "vqgan")


def load_network(path: Path, device: str | torch.device = "cpu") -> AdaCodeNet:
    """A ready (eval-mode) network from any supported weights file."""
    config, state = read_checkpoint(path)
    network = build_network(config)
    load_state_strict(network, state, source=path)
    return network.to(device).eval()


def convert_checkpoint(
    src: Path, dst: Path, should_stop: Callable[[], bool] | None = None
) -> AdaCodeConfig:
    """Official `.pth` (or ours) -> our safetensors, after a strict load proves it complete.

    `should_stop` is polled between the steps and per tensor written (KeyboardInterrupt).
    """
    config, state = read_checkpoint(src)
    stop_if_asked(should_stop)
    check_layout(config, state, source=src)
    stop_if_asked(should_stop)
    save_safetensors(dst, config, state, should_stop)
    return config
