"""Atomic file writes: a reader sees the old file or the complete new one, never a partial one."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

TEMP_PREFIX = ".adacode-tmp-"
# Temporary names carry their writer, `.adacode-tmp-<pid>@<host>@<random><suffix>`, so a later
# run can tell the leftover of a killed process (SIGKILL, out of memory) from a file that a
# live process is still writing.
_HOST = socket.gethostname().replace("@", "_")
_OWNED = re.compile(re.escape(TEMP_PREFIX) + r"(?P<pid>\d+)@(?P<host>[^@]*)@")


def _read_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


# Read once at import: os.umask is process-wide, and changing it later would race with threads.
# Files get the permissions a plain open() would give, not mkstemp's private 0600.
DEFAULT_FILE_MODE = 0o666 & ~_read_umask()


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `destination`; rename it into place only if the block succeeds.

    The temporary file lives in the destination's folder so the final `os.replace` is atomic, and
    it keeps `suffix` so writers that pick a format from the extension still work.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(
        prefix=f"{TEMP_PREFIX}{os.getpid()}@{_HOST}@",
        suffix=suffix or destination.suffix,
        dir=destination.parent,
    )
    os.close(handle)
    temp = Path(temp_name)
    os.chmod(temp, DEFAULT_FILE_MODE)
    try:
        yield temp
        with open(temp, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temp, destination)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def atomic_write_bytes(destination: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `destination` atomically."""
    with atomic_path(destination) as temp:
        temp.write_bytes(data)


def atomic_write_text(destination: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 `text` to `destination` atomically."""
    atomic_write_bytes(destination, text.encode("utf-8"))


def atomic_save(destination: str | os.PathLike[str], save: Callable[[Path], None]) -> None:
    """Call `save(temp_path)` and move the result to `destination` atomically."""
    with atomic_path(destination) as temp:
        save(temp)


def remove_abandoned(folders: Iterable[Path]) -> int:
    """Delete, in `folders`, the temporary files that processes of this machine left when they
    were killed mid-write; files of live processes and of other machines stay. How many went."""
    removed = 0
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if _abandoned(path.name) and path.is_file():
                with contextlib.suppress(OSError):  # gone already, or not ours to remove
                    path.unlink()
                    removed += 1
    return removed


def _abandoned(name: str) -> bool:
    match = _OWNED.match(name)
    return match is not None and match["host"] == _HOST and not _running(int(match["pid"]))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
