"""Where a tile batch's registers wait between layered segments: on the compute device, in host
RAM, or spilled to disk when the image's registers do not fit in memory.

Every register is kept in the compute precision (autocast leaves some residual streams in fp32;
the next segment casts them down anyway), and registers that alias one tensor (the encoder
features the decoder reads again) are kept once.

Spilling writes each batch's registers to a file of its own, which the next segment reads back
and deletes at once, so the disk holds about one segment's registers (plus one batch), in a
private temporary folder removed on every exit (success, error or interrupt).
"""

from __future__ import annotations

import errno
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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
    """Registers spilled to files in `folder`, one per tile batch and segment: written by one
    segment, read back and deleted by the next, so the disk holds about one segment's
    registers at a time (the batches not yet read and those already written)."""

    def __init__(self, folder: Path, device: torch.device, dtype: torch.dtype) -> None:
        self.folder, self.device, self.dtype = folder, device, dtype
        self.generation = 0
        self.reading: dict[int, tuple[dict[int, _Stored], dict[str, int]]] = {}
        self.writing: dict[int, tuple[dict[int, _Stored], dict[str, int]]] = {}

    def _file(self, generation: int, position: int) -> Path:
        return self.folder / f"registers-{generation}-{position}.bin"

    def put(self, position: int, regs: Registers) -> None:
        tensors, names = _compact(regs, self.dtype)
        stored = {}
        try:
            with open(self._file(self.generation, position), "wb") as out:
                for key, value in tensors.items():
                    host = value.detach().to("cpu").contiguous()
                    raw = host.reshape(-1).view(torch.uint8).numpy()
                    stored[key] = _Stored(out.tell(), raw.nbytes, tuple(host.shape), host.dtype)
                    out.write(memoryview(raw))
                    out.write(bytes(-raw.nbytes % 8))  # the next tensor starts aligned
        except OSError as error:  # the disk filled up since the check (other writers)
            if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise DiskSpaceError(
                f"the temporary disk filled up while exact tile statistics were parked in "
                f"{self.folder.parent} (set TMPDIR to a folder on a larger disk)"
            ) from error
        self.writing[position] = (stored, names)

    def take(self, position: int) -> Registers:
        stored, names = self.reading.pop(position)
        path = self._file(self.generation - 1, position)
        raw = torch.from_numpy(np.fromfile(path, dtype=np.uint8))
        path.unlink()
        tensors = {
            key: raw[item.offset : item.offset + item.nbytes].view(item.dtype)
            .reshape(item.shape).to(self.device)
            for key, item in stored.items()
        }
        return {name: tensors[key] for name, key in names.items()}

    def next_segment(self) -> None:
        """The batches just written become the ones read next."""
        self.generation += 1
        self.reading, self.writing = self.writing, {}


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
        yield DiskLot(folder, device, dtype)
