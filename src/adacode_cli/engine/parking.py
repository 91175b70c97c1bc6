"""Where a tile batch's registers wait between layered segments: on the compute device, in host
RAM, or spilled to disk when the image's registers do not fit in memory.

Every register is kept in the compute precision (autocast leaves some residual streams in fp32;
the next segment casts them down anyway), and registers that alias one tensor (the encoder
features the decoder reads again) are kept once.

Spilling writes each batch's registers to the end of one file and reads them back through a
memory map in the next segment, which writes to a second file: two files per image, the older
deleted as soon as a segment is done, in a private temporary folder removed on every exit
(success, error or interrupt).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from adacode_cli.errors import ImageError

Registers = dict[str, torch.Tensor]
SPILL_PREFIX = "adacode-spill-"


class DiskSpaceError(ImageError):
    """The registers of an image must spill to disk, and the temporary folder's disk is short."""


def _compact(regs: Registers, dtype: torch.dtype) -> tuple[dict[int, torch.Tensor], dict[str, int]]:
    """The distinct tensors of `regs` in `dtype` (by identity) and which one each name holds."""
    tensors: dict[int, torch.Tensor] = {}
    for value in regs.values():
        if id(value) not in tensors:
            tensors[id(value)] = value.to(dtype) if value.is_floating_point() else value
    return tensors, {name: id(value) for name, value in regs.items()}


class MemoryLot:
    """Registers kept in memory: on the compute device, or copied to (pinned) host RAM."""

    def __init__(self, device: torch.device, dtype: torch.dtype, on_host: bool) -> None:
        self.device, self.dtype = device, dtype
        self.on_host = on_host and device.type != "cpu"
        self.pinned = self.device.type == "cuda"
        self.parked: dict[int, Registers] = {}

    def put(self, position: int, regs: Registers) -> None:
        tensors, names = _compact(regs, self.dtype)
        if self.on_host:  # pinned and without waiting: pageable copies stall the device
            for key, value in tensors.items():
                host = torch.empty_like(value, device="cpu", pin_memory=self.pinned)
                host.copy_(value, non_blocking=self.pinned)
                tensors[key] = host
        self.parked[position] = {name: tensors[key] for name, key in names.items()}

    def take(self, position: int) -> Registers:
        regs = self.parked.pop(position)
        if not self.on_host:
            return regs
        moved: dict[int, torch.Tensor] = {}
        for value in regs.values():
            if id(value) not in moved:
                moved[id(value)] = value.to(self.device, non_blocking=self.pinned)
        return {name: moved[id(value)] for name, value in regs.items()}

    def next_segment(self) -> None:
        """Nothing to do between segments in memory."""


@dataclass(frozen=True)
class _Stored:
    """One spilled tensor: where it lies in the file and what it was."""

    offset: int
    nbytes: int
    shape: tuple[int, ...]
    dtype: torch.dtype


class DiskLot:
    """Registers spilled to files in `folder`: written by one segment, read by the next."""

    def __init__(self, folder: Path, device: torch.device, dtype: torch.dtype) -> None:
        self.folder, self.device, self.dtype = folder, device, dtype
        self.generation = 0
        self.reading: dict[int, tuple[dict[int, _Stored], dict[str, int]]] = {}
        self.writing: dict[int, tuple[dict[int, _Stored], dict[str, int]]] = {}
        self.out: BinaryIO = open(self._file(0), "wb")  # noqa: SIM115 (closed in close())

    def _file(self, generation: int) -> Path:
        return self.folder / f"registers-{generation % 2}.bin"

    def put(self, position: int, regs: Registers) -> None:
        tensors, names = _compact(regs, self.dtype)
        stored = {}
        for key, value in tensors.items():
            host = value.detach().to("cpu").contiguous()
            raw = host.reshape(-1).view(torch.uint8).numpy()
            stored[key] = _Stored(self.out.tell(), raw.nbytes, tuple(host.shape), host.dtype)
            self.out.write(memoryview(raw))
        self.writing[position] = (stored, names)

    def take(self, position: int) -> Registers:
        stored, names = self.reading.pop(position)
        tensors = {}
        path = self._file(self.generation - 1)
        for key, item in stored.items():
            mapped = np.memmap(path, dtype=np.uint8, mode="r", offset=item.offset,
                               shape=(item.nbytes,))
            raw = torch.from_numpy(np.array(mapped))
            del mapped
            tensors[key] = raw.view(item.dtype).reshape(item.shape).to(self.device)
        return {name: tensors[key] for name, key in names.items()}

    def next_segment(self) -> None:
        """The file just written becomes the one read; the one read before is deleted."""
        self.out.close()
        self._file(self.generation - 1).unlink(missing_ok=True)
        self.generation += 1
        self.reading, self.writing = self.writing, {}
        self.out = open(self._file(self.generation), "wb")  # noqa: SIM115

    def close(self) -> None:
        self.out.close()


def check_disk_space(folder: Path, needed: int) -> None:
    """Refuse, in one line, a spill that the disk holding `folder` cannot take."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise DiskSpaceError(
            f"exact tile statistics need about {needed / 1e9:.1f} GB of temporary disk space "
            f"in {folder}, {free / 1e9:.1f} GB free (set TMPDIR to a folder on a larger disk)"
        )


@contextmanager
def spill_folder(needed: int) -> Iterator[Path]:
    """A private temporary folder for spilled registers, removed on every exit."""
    check_disk_space(Path(tempfile.gettempdir()), needed)
    folder = Path(tempfile.mkdtemp(prefix=SPILL_PREFIX))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def parking_lot(
    where: str, device: torch.device, dtype: torch.dtype, spill_bytes: int = 0
) -> Iterator[MemoryLot | DiskLot]:
    """A lot for `where` ("device", "host" or "disk"), cleaned up on every exit."""
    if where != "disk":
        yield MemoryLot(device, dtype, on_host=where == "host")
        return
    with spill_folder(spill_bytes) as folder:
        lot = DiskLot(folder, device, dtype)
        try:
            yield lot
        finally:
            lot.close()
