"""An inter-process lock on a file: two `adacode` processes wanting the same model download it once.

Uses the operating system's advisory locks (fcntl on POSIX, msvcrt on Windows), which the kernel
releases when a process dies, so a crashed download never leaves a stale lock behind. A model's
lock file may be deleted by the process holding it (`weights remove`): a process that waited on
the deleted file notices and locks the new one (see `_open_locked`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

if sys.platform == "win32":
    import msvcrt

    # msvcrt has no shared locks: shared holders exclude each other too (correct, just slower).
    def _try_lock(fd: int, shared: bool = False) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _wait_lock(fd: int, shared: bool = False) -> None:
        while not _try_lock(fd):
            time.sleep(0.2)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _mode(shared: bool) -> int:
        return fcntl.LOCK_SH if shared else fcntl.LOCK_EX

    def _try_lock(fd: int, shared: bool = False) -> bool:
        try:
            fcntl.flock(fd, _mode(shared) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _wait_lock(fd: int, shared: bool = False) -> None:
        fcntl.flock(fd, _mode(shared))

    def _share(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_SH)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _open_locked(path: Path, on_wait: Callable[[], None] | None, shared: bool) -> int:
    """An open descriptor on `path` holding the lock; retried if the file was deleted meanwhile.

    A lock file may be deleted by its holder (`weights remove`): whoever waited on the deleted
    file finds the path now names another file (or none) and locks again, so two processes never
    both believe they hold the lock.
    """
    waited = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if not _try_lock(fd, shared):
                if on_wait is not None and not waited:
                    on_wait()
                waited = True
                _wait_lock(fd, shared)
            if _same_file(fd, path):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def exclusive_lock(path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed); call `on_wait` once if we must wait."""
    fd = _open_locked(path, on_wait, shared=False)
    try:
        yield
    finally:
        _unlock(fd)
        os.close(fd)


@contextlib.contextmanager
def writers_lock(folder: Path, clean: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold a shared lock on `folder` itself while writing into it, beside other writers.

    Every process writing into the cache holds it shared. One that gets it exclusively, without
    waiting, knows no other writer is alive: the temporary files in the folder are then leftovers
    of killed processes, and `clean` deletes them before we share the lock like everyone else.
    Windows cannot lock a folder: there nothing is cleaned here (`weights remove` still works).
    """
    if sys.platform == "win32":
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        if clean is not None and _try_lock(fd):
            clean()
            _share(fd)
        else:
            _wait_lock(fd, shared=True)
        yield
    finally:
        _unlock(fd)
        os.close(fd)
