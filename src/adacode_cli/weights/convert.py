"""Turn a verified official download into the cached `.safetensors` file.

AdaCode networks go through the model core's strict converter (our format, checked against the
architecture). Loss networks and the discriminator are plain state dicts: they keep their original
keys, and only the container changes, so later loads never unpickle anything.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from adacode_cli.atomic import atomic_save
from adacode_cli.errors import CheckpointError


def convert_download(
    kind: str, source: Path, destination: Path, should_stop: Callable[[], bool] | None = None
) -> None:
    """Write `destination` (atomically) from the official `.pth` at `source`.

    `should_stop` is polled per tensor: KeyboardInterrupt, and no file at `destination`.
    """
    if kind == "adacode":
        from adacode_cli.model.checkpoint import convert_checkpoint

        convert_checkpoint(source, destination, should_stop)
    else:
        save_state_dict(source, destination, should_stop)


def save_state_dict(
    source: Path, destination: Path, should_stop: Callable[[], bool] | None = None
) -> None:
    """Copy a plain `.pth` state dict (optionally wrapped as `{'params': ...}`) to safetensors."""
    import torch
    from safetensors.torch import save_file

    from adacode_cli.model.checkpoint import load_pth, stop_if_asked

    state = _unwrap(load_pth(source), source)
    tensors: dict[str, torch.Tensor] = {}
    storages: set[int] = set()
    for key, value in state.items():
        stop_if_asked(should_stop)
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{source}: entry {key!r} is not a named tensor")
        tensor = value.detach().contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        if pointer in storages:  # safetensors refuses tensors that share memory
            tensor = tensor.clone()
        storages.add(pointer)
        tensors[key] = tensor
    atomic_save(destination, lambda temp: save_file(tensors, str(temp), metadata={"format": "pt"}))


def _unwrap(loaded: Any, source: Path) -> dict[Any, Any]:
    """BasicSR saves networks as `{'params': state_dict}`; torchvision saves the bare dict."""
    if not isinstance(loaded, dict) or not loaded:
        raise CheckpointError(f"{source}: not a state dict")
    params = loaded.get("params")
    return params if isinstance(params, dict) else loaded
