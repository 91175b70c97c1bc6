"""What a weights file holds, read from its header with the standard library only.

A restoration command checks its weights file before torch is imported (a second or more): a file
that is no weights file at all (empty, text, a truncated or garbled safetensors header) and a
network for another task or scale are reported at once. Our safetensors files carry their config
in the metadata; another tool's safetensors lists every tensor's shape in its JSON header; an
official `.pth` keeps its tensor names and shapes in a small pickle (`data.pkl` in the zip
archive, or the first pickles of the legacy format). That pickle is read by an unpickler that
only knows torch's tensor-rebuilding functions as stand-ins that record a shape, so no code runs;
a pickle it cannot read fully is left to the torch loader (`model.checkpoint.load_pth`), which
gives the final verdict.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import tarfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from adacode_cli.errors import CheckpointError
from adacode_cli.images.inputs import what_is
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.detect import clean_official, config_from_metadata, infer_config, naming

_LENGTH = struct.Struct("<Q")  # safetensors: the JSON header's length, then the header
_PICKLE_PROTOCOL = b"\x80"  # what every pickle torch.save writes starts with
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.save's legacy (non-zip) format
_MOST_PICKLE_BYTES = 64 << 20  # the structure of a state dict; tensor data lie outside it
_STATE_KEYS = ("params", "params_ema", "state_dict")  # as `model.checkpoint.read_official`


@dataclass(frozen=True)
class _Shape:
    """A tensor as far as a header describes it."""

    shape: tuple[int, ...]


class _Unreadable(Exception):
    """The pickle uses something the stand-in unpickler does not know: torch decides."""


@dataclass(frozen=True)
class Header:
    """What a weights file says about itself before its tensors are read."""

    shapes: dict[str, _Shape]
    metadata: Mapping[str, str]  # a safetensors file's `__metadata__`
    safetensors: bool


def held_config(path: Path) -> AdaCodeConfig | None:
    """The network `path` holds; None where only torch can tell (an official file whose pickle
    uses more than plain tensors). A file that is not a weights file, a truncated one, or one
    whose tensors make no AdaCode network is a CheckpointError naming the file."""
    header = read_header(path)
    if header is None:
        return None
    config = config_from_metadata(header.metadata, path)
    if config is not None:
        return config
    with naming(path):  # as `model.checkpoint.read_checkpoint` cleans each format
        return infer_config(clean_official(header.shapes, keep_semantic=not header.safetensors))


def read_header(path: Path) -> Header | None:
    """The tensor shapes (and metadata) `path` lists; None where only torch can tell. A missing
    file, a folder, and a file that is no weights file or a truncated one are CheckpointErrors
    naming the file."""
    path = Path(path)
    if not path.is_file():
        kind = what_is(path)
        raise CheckpointError(f"{path}: " + ("no such file" if kind == "missing" else
                                             f"is {kind}, not a weights file"))
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            head = handle.read(9)
            if len(head) == 9 and head[8:9] == b"{":  # the sniff of `model.checkpoint`
                return _safetensors_header(path, handle, size)
            shapes = _pth_shapes(path, handle, head)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read it ({error.strerror or error})") from error
    return None if shapes is None else Header(shapes, {}, safetensors=False)


def _safetensors_header(path: Path, handle: IO[bytes], size: int) -> Header:
    """The JSON header, checked: every tensor's data must lie inside the file."""
    broken = CheckpointError(f"{path}: truncated or not a safetensors file")
    handle.seek(0)
    (length,) = _LENGTH.unpack(handle.read(8))
    if length > size - 8:
        raise broken
    try:
        header = json.loads(handle.read(length))
    except (ValueError, UnicodeDecodeError) as error:
        raise broken from error
    if not isinstance(header, dict):
        raise broken
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise broken
    shapes = {key: _listed_shape(entry, size - 8 - length, broken)
              for key, entry in header.items()}
    return Header(shapes, metadata, safetensors=True)


def _listed_shape(entry: Any, data_bytes: int, broken: CheckpointError) -> _Shape:
    """One tensor's header entry, whose data must lie inside the file."""
    try:
        shape = tuple(int(side) for side in entry["shape"])
        start, end = (int(offset) for offset in entry["data_offsets"])
    except (TypeError, KeyError, ValueError) as error:
        raise broken from error
    if not 0 <= start <= end <= data_bytes:
        raise broken
    return _Shape(shape)


def _pth_shapes(path: Path, handle: IO[bytes], head: bytes) -> dict[str, _Shape] | None:
    """Tensor shapes of a PyTorch checkpoint (zip or legacy); None where torch must decide."""
    handle.seek(0)
    if zipfile.is_zipfile(handle):
        with zipfile.ZipFile(handle) as archive:
            pickled = [info for info in archive.infolist() if info.filename.endswith("data.pkl")]
            if len(pickled) != 1 or pickled[0].file_size > _MOST_PICKLE_BYTES:
                return None
            with archive.open(pickled[0]) as stream:
                return _state_shapes(stream, legacy=False)
    if head.startswith(_PICKLE_PROTOCOL):
        handle.seek(0)
        return _state_shapes(handle, legacy=True)
    handle.seek(0)
    if tarfile.is_tarfile(handle):  # torch's oldest format: left to torch.load
        return None
    if not head:
        raise CheckpointError(f"{path}: empty file, not a weights file")
    raise CheckpointError(f"{path}: truncated or not a weights file (neither safetensors nor a "
                          "PyTorch checkpoint)")


def _state_shapes(stream: IO[bytes], *, legacy: bool) -> dict[str, _Shape] | None:
    """The state dict's shapes from the pickle (after the legacy format's magic number,
    protocol and system-info pickles); None if it holds anything but tensors."""
    try:
        if legacy:
            if _ShapeUnpickler(stream).load() != _LEGACY_MAGIC:
                return None
            _ShapeUnpickler(stream).load()  # protocol version
            _ShapeUnpickler(stream).load()  # system info
        data = _ShapeUnpickler(stream).load()
    except Exception:  # any failure of a pickle (garbage, a class): torch.load decides
        return None
    if isinstance(data, Mapping):
        data = next((data[key] for key in _STATE_KEYS if isinstance(data.get(key), Mapping)),
                    data)
    if not isinstance(data, Mapping) or not all(isinstance(v, _Shape) for v in data.values()):
        return None
    return {str(key).removeprefix("module."): value for key, value in data.items()}


def _rebuild_tensor(storage: object, offset: int, size: tuple[int, ...], *_: object) -> _Shape:
    return _Shape(tuple(int(side) for side in size))


def _rebuild_parameter(data: object, *_: object) -> object:
    return data


class _Storage:
    """Stands in for a torch storage class (`torch.FloatStorage`...)."""


class _OrderedDict(dict):  # type: ignore[type-arg]
    """Stands in for `collections.OrderedDict` (a state dict's `_metadata` attribute too)."""


_STAND_INS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): _OrderedDict,
}


class _ShapeUnpickler(pickle.Unpickler):
    """Knows torch's tensor-rebuilding functions as shape recorders and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        known = _STAND_INS.get((module, name))
        if known is not None:
            return known
        if module == "torch" and name.endswith("Storage"):
            return _Storage
        raise _Unreadable(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        return None
