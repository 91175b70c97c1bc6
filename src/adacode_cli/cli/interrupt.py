"""Ctrl-C during a batch: the first press asks for a clean stop, the second aborts at once.

A clean stop lets the engine finish its current tile batch (it polls `StopRequest` between
batches and raises `RestoreInterrupted`), so the batch can print its summary and leave no partial
file. The second press restores Python's default handler, so a stuck step still dies promptly;
temporary files are removed by `atomic_path` on the way out either way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

_FIRST_PRESS = b"\nstopping after the current tile batch (Ctrl-C again to abort now)\n"


class StopRequest:
    """Callable flag: True once the user pressed Ctrl-C (the engine's `should_stop`)."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    @contextlib.contextmanager
    def catching_ctrl_c(self) -> Iterator[StopRequest]:
        """Within the block the first SIGINT only sets the flag (main thread only; elsewhere
        signals cannot be caught and Ctrl-C keeps its default meaning)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.getsignal(signal.SIGINT)

        def first_press(signum: int, frame: FrameType | None) -> None:
            self.requested = True
            signal.signal(signal.SIGINT, signal.default_int_handler)
            # os.write: safe inside a signal handler, even while another write holds a lock.
            with contextlib.suppress(OSError):
                os.write(2, _FIRST_PRESS)

        signal.signal(signal.SIGINT, first_press)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)
