"""Atomic file writes: a reader sees the old file or the complete new one, never a partial one.

Temporary files are named `.adacode-tmp-<host>-<pid>-<random>`: when a process is killed before
it can remove its temporary file, the next run in that folder (`remove_stale_temporaries`)
knows whose it was and removes it only if that process is gone, never one still being written.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

TEMP_PREFIX = ".adacode-tmp-"
_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"
_OWNER = re.compile(re.escape(TEMP_PREFIX) + r"([A-Za-z0-9]*)-(\d+)-")


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
        prefix=f"{TEMP_PREFIX}{_HOST}-{os.getpid()}-",
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
    """Call `save(temp_path)` and move the result to `destination` atomically.

    Writers that replace the file instead of filling it (safetensors does) would bring back
    a private 0600 mode, so the umask-derived mode is applied again after `save`.
    """
    with atomic_path(destination) as temp:
        save(temp)
        os.chmod(temp, DEFAULT_FILE_MODE)


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files in `folder` left by processes of this host that no longer
    run (killed mid-write); those of live processes and of other hosts are left alone."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            owner = _OWNER.match(entry.name)
            if owner is None or owner[1] != _HOST or _is_running(int(owner[2])):
                continue
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _is_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True
