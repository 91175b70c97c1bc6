"""Overlap image I/O with compute when restoring many images.

While the model restores image i, one background thread encodes image i-1 and decodes image i+1
(decoding and encoding release the GIL in Pillow/numpy, and the model runs in torch's threads).
At most one decoded image waits and one result is being written, so memory stays at about three
images. The network stays loaded: the caller passes one `process` callable for all jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from adacode_cli.errors import AdaCodeError

Loaded = TypeVar("Loaded")
Result = TypeVar("Result")


@dataclass
class Job(Generic[Loaded, Result]):
    """One image: `load()` decodes it, `save(result)` writes the restored result."""

    load: Callable[[], Loaded]
    save: Callable[[Result], None]
    name: str = ""


@dataclass
class Outcome:
    """What happened to one job: `error` is the user-facing error that skipped it, if any."""

    job: Job[Any, Any]
    error: AdaCodeError | None = None


def run_jobs(
    jobs: Iterable[Job[Loaded, Result]],
    process: Callable[[Loaded], Result],
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Load, process and save every job in order, with I/O in a background thread.

    An `AdaCodeError` from one job's load, process or save is recorded in its outcome and the
    others go on; any other exception (a bug, `RestoreInterrupted`, Ctrl-C) stops the run once
    the save in flight has finished.
    """
    outcomes: list[Outcome] = []
    io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="adacode-io")
    pending_save: tuple[Outcome, Future[None]] | None = None
    try:
        for job, loading in _prefetched(iter(jobs), io):
            outcome = Outcome(job)
            try:
                result = process(loading.result())
            except AdaCodeError as error:
                outcome.error = error
            _finish(pending_save, outcomes, on_outcome)
            pending_save = None
            if outcome.error is None:
                pending_save = (outcome, io.submit(job.save, result))
            else:
                _record(outcome, outcomes, on_outcome)
        _finish(pending_save, outcomes, on_outcome)
        pending_save = None
    finally:
        if pending_save is not None:
            pending_save[1].exception()
        io.shutdown(wait=True, cancel_futures=True)
    return outcomes


def _prefetched(
    jobs: Iterator[Job[Loaded, Result]], io: ThreadPoolExecutor
) -> Iterator[tuple[Job[Loaded, Result], Future[Loaded]]]:
    """Yield each job with its decode already submitted, and the next decode queued."""
    current = next(jobs, None)
    future = io.submit(current.load) if current is not None else None
    while current is not None and future is not None:
        following = next(jobs, None)
        following_future = io.submit(following.load) if following is not None else None
        yield current, future
        current, future = following, following_future


def _finish(
    pending: tuple[Outcome, Future[None]] | None,
    outcomes: list[Outcome],
    on_outcome: Callable[[Outcome], None] | None,
) -> None:
    """Wait for the save in flight and record its outcome."""
    if pending is None:
        return
    outcome, future = pending
    try:
        future.result()
    except AdaCodeError as error:
        outcome.error = error
    _record(outcome, outcomes, on_outcome)


def _record(
    outcome: Outcome, outcomes: list[Outcome], on_outcome: Callable[[Outcome], None] | None
) -> None:
    outcomes.append(outcome)
    if on_outcome is not None:
        on_outcome(outcome)
