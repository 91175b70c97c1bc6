"""Ctrl-C as a stop request: the first press asks long loops to stop, the second stops at once.

One class serves every layer that runs long loops (the restoration commands, training): they
poll the request (`stop()` or `stop.requested`) between steps and wind down cleanly. Only the
main thread can catch signals; elsewhere Ctrl-C keeps Python's default meaning.

`grace` bounds how long a clean stop may take: when the code has not returned from the `with`
block `grace` seconds after the first press (a step with no stop check, such as loading a
model), the main thread gets a `KeyboardInterrupt` as if Ctrl-C had been pressed again. With
`grace=0` the first press raises at once, after setting the flag that other threads poll.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import threading
from types import FrameType


class StopRequest:
    """Callable flag: True once the user pressed Ctrl-C inside the `with` block."""

    def __init__(
        self, enabled: bool = True, *, notice: str | None = None, grace: float | None = None
    ) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.notice = notice
        self.grace = grace
        self.requested = False
        self._previous: signal.Handlers | object = None
        self._inside = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def __call__(self) -> bool:
        return self.requested

    def __enter__(self) -> StopRequest:
        if self.enabled:
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._inside = True
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._inside = False
            if self._timer is not None:
                self._timer.cancel()
        signal.signal(signal.SIGINT, self._previous)  # type: ignore[arg-type]

    def acknowledge(self) -> None:
        """The code saw the request and is winding down cleanly (a video closing its last
        segment): the grace no longer applies; a second Ctrl-C still stops at once."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested or self.grace == 0:
            self.requested = True
            raise KeyboardInterrupt
        self.requested = True
        if self.notice:
            # os.write: safe inside a signal handler, even while another write holds a lock.
            with contextlib.suppress(OSError):
                os.write(2, f"\n{self.notice}\n".encode())
        if self.grace is not None:
            self._timer = threading.Timer(self.grace, self._escalate)
            self._timer.daemon = True
            self._timer.start()

    def _escalate(self) -> None:
        """Still inside the block `grace` seconds after the first press: stop the main thread
        at its next Python instruction (it runs this object's handler, which now raises)."""
        with self._lock:
            if self._inside:
                _thread.interrupt_main(signal.SIGINT)
