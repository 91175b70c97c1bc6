"""Turn a verified official download into the cached `.safetensors` file.

AdaCode networks go through the model core's strict converter (our format, checked against the
architecture). Loss networks and the discriminator are plain state dicts: they keep their original
keys, and only the container changes, so later loads never unpickle anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adacode_cli.atomic import atomic_save
from adacode_cli.errors import CheckpointError


def convert_download(kind: str, source: Path, destination: Path) -> None:
    """Write `destination` (atomically) from the official `.pth` at `source`."""
    if kind == "adacode":
        from adacode_cli.model.checkpoint import convert_checkpoint

        convert_checkpoint(source, destination)
    else:
        save_state_dict(source, destination)


def save_state_dict(source: Path, destination: Path) -> None:
    """Copy a plain `.pth` state dict (optionally wrapped as `{'params': ...}`) to safetensors."""
    import torch
    from safetensors.torch import save_file

    try:
        loaded = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and torch errors all mean "not a state dict"
        raise CheckpointError(
            f"{source.name} is not a readable PyTorch state dict: {_first_line(error)}"
        ) from error
    state = _unwrap(loaded)
    tensors: dict[str, torch.Tensor] = {}
    storages: set[int] = set()
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{source.name}: entry {key!r} is not a named tensor")
        tensor = value.detach().contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        if pointer in storages:  # safetensors refuses tensors that share memory
            tensor = tensor.clone()
        storages.add(pointer)
        tensors[key] = tensor
    atomic_save(destination, lambda temp: save_file(tensors, str(temp), metadata={"format": "pt"}))


def _unwrap(loaded: Any) -> dict[Any, Any]:
    """BasicSR saves networks as `{'params': state_dict}`; torchvision saves the bare dict."""
    if not isinstance(loaded, dict) or not loaded:
        raise CheckpointError("the download is not a state dict")
    params = loaded.get("params")
    return params if isinstance(params, dict) else loaded


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
