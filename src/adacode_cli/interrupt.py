"""Ctrl-C as a stop request: the first press asks long loops to stop, the second stops at once.

One class serves every layer that runs long loops (the restoration commands, training): they
poll the request (`stop()` or `stop.requested`) between steps and wind down cleanly. Only the
main thread can catch signals; elsewhere Ctrl-C keeps Python's default meaning.

`grace` bounds how long a clean stop may take: when the code has not returned from the `with`
block `grace` seconds after the first press (a step with no stop check, such as loading a
model), the main thread gets a `KeyboardInterrupt` as if Ctrl-C had been pressed again. With
`grace=0` the first press raises at once, after setting the flag that other threads poll.

SIGTERM (`kill`, `timeout`, a container stop, SLURM at its time limit, torchrun passing on a
Ctrl-C or the death of another rank) is Ctrl-C pressed twice for every command
(`sigterm_as_interrupt`, around the whole CLI): what is being written is completed or its
temporary file removed. Inside a `StopRequest(terminate=True)` block (training, where a clean
stop saves the run) it is the clean stop of a first press instead, and never escalates: a Ctrl-C
in a terminal reaches a torchrun worker twice, as SIGINT from the terminal and as SIGTERM from
torchrun. `escalate=False` makes a second Ctrl-C a repeat of the first: torchrun passes a
terminal's Ctrl-C on to its workers as a second SIGINT, and kills them itself after its shutdown
timeout.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class StopRequest:
    """Callable flag: True once the user pressed Ctrl-C (or, with `terminate`, SIGTERM came)
    inside the `with` block."""

    def __init__(
        self, enabled: bool = True, *, notice: str | None = None, grace: float | None = None,
        terminate: bool = False, escalate: bool = True,
    ) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.notice = notice
        self.grace = grace
        self.terminate = terminate
        self.escalate = escalate
        self.requested = False
        self._previous: dict[int, signal.Handlers | object] = {}
        self._inside = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def __call__(self) -> bool:
        return self.requested

    def __enter__(self) -> StopRequest:
        if self.enabled:
            self._previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._handle)
            if self.terminate:
                self._previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._handle)
            self._inside = True
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._inside = False
            if self._timer is not None:
                self._timer.cancel()
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]
        self._previous.clear()

    def acknowledge(self) -> None:
        """The code saw the request and is winding down cleanly (a video closing its last
        segment): the grace no longer applies; a second Ctrl-C still stops at once."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and (signum == signal.SIGTERM or not self.escalate):
            return  # only a second Ctrl-C escalates, and only where asked to
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


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises `KeyboardInterrupt` in the main thread, as a second Ctrl-C would, instead
    of ending the process mid-write (its default)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
