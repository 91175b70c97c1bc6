"""Read a loss network's state dict from `.safetensors` or `.pth` and check it fits, strictly.

Loss networks (VGG, LPIPS) that silently run with random weights give losses that look fine and
train nothing, so every missing or mis-shaped tensor is an error naming the file and the key.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from adacode_cli.errors import CheckpointError
from adacode_cli.model.checkpoint import check_state

StateDict = dict[str, torch.Tensor]
_READ_ERRORS = (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, SafetensorError)


def read_state_file(path: Path) -> StateDict:
    """All tensors of `path`; `.pth` files are read with `weights_only=True` (no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            data = load_file(str(path))
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(f"{path}: refused, not a plain tensor file ({error})") from error
    except _READ_ERRORS as error:
        raise CheckpointError(f"{path}: unreadable or truncated weights file") from error
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    return dict(data)


def check_fits(
    path: Path, state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor],
    allowed_extra: Iterable[str] = (),
) -> None:
    """Raise unless `state` has every key of `expected` with its shape, and nothing else except
    keys starting with one of `allowed_extra` (e.g. the VGG classifier we never use)."""
    check_state(state, expected, source=path, allowed_extra=allowed_extra)


def load_strict(
    module: nn.Module, path: Path, *, prefix: str = "", allowed_extra: Iterable[str] = ()
) -> None:
    """Fill `module` from `path`, whose keys are the module's own keys behind `prefix`."""
    state = read_state_file(path)
    own = module.state_dict()
    check_fits(path, state, {prefix + key: value for key, value in own.items()}, allowed_extra)
    module.load_state_dict({key: state[prefix + key] for key in own})
