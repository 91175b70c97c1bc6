"""The per-image loop: read, restore, finish, write; one bad file never stops the batch.

The engine's pipeline (`engine.pipeline.run_jobs`) decodes the next image and encodes the
previous result in a background thread while the network works on the current image. Each image
is written atomically in its own mode: alpha restored separately and re-attached, grey stays
grey, 16-bit stays 16-bit, metadata carried, and it is reported the moment its files are
written. What is written where was decided by the output plan (`images.outputs`) before the model
loaded; an image any of whose files exist is skipped unless `overwrite`. Before decoding, an
image whose arrays would not fit in the memory free is refused. A stop request (Ctrl-C) ends
the batch after the engine's current step; nothing is written for the image it interrupted, and
the result being saved at that moment is completed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adacode_cli.cli.report import DONE, FAILED, INTERRUPTED, SKIPPED, ImageOutcome, Reporter
from adacode_cli.cli.tasks import PreparedImage, Task
from adacode_cli.engine.memory import host_available_memory
from adacode_cli.engine.pipeline import Job, Outcome, run_jobs
from adacode_cli.engine.restorer import RestoreInterrupted, Restorer
from adacode_cli.errors import AdaCodeError, ImageError
from adacode_cli.images.decode import LoadedImage, MemoryBudget, read_image
from adacode_cli.images.encode import write_image
from adacode_cli.images.inputs import Skipped
from adacode_cli.images.outputs import WEIGHT_MAP, PlannedImage
from adacode_cli.images.resize import resize_lanczos
from adacode_cli.images.weightmap import weight_map_image


@dataclass(frozen=True)
class WriteSettings:
    """How results are written."""

    quality: int
    overwrite: bool
    save_weight_map: bool


@dataclass
class _Restored:
    """The finished result of one image, waiting to be written."""

    final: np.ndarray
    alpha: np.ndarray | None
    weight_map: np.ndarray | None


@dataclass(eq=False)
class _ImageJob:
    """One image on its way through the pipeline, and what the report needs to know about it."""

    plan: PlannedImage
    task: Task
    settings: WriteSettings
    seconds: float = 0.0  # spent on this image: decode, restore and encode, not waiting
    image: LoadedImage | None = None  # held from load to the report, then released
    prepared: PreparedImage | None = None
    warnings: list[str] = field(default_factory=list)
    measures: dict[str, float | None] = field(default_factory=dict)
    output_pixels: int = 0
    reported: bool = False

    @property
    def source(self) -> Path:
        return self.plan.source

    def load(self) -> _ImageJob:
        """Decode the image and prepare the network input (background thread)."""
        with self.timed(), _failures_of(self.source):
            budget = MemoryBudget(host_available_memory(), self.task.output_scale)
            self.image = read_image(self.source, budget=budget)
            self.warnings = list(self.image.warnings)
            self.prepared = self.task.prepare(self.source, self.image)
        return self

    def write(self, restored: _Restored) -> None:
        """Write the result, and its weight map if asked (background thread)."""
        assert self.image is not None
        with self.timed(), _failures_of(self.source):
            write_image(
                self.plan.result,
                restored.final,
                alpha=restored.alpha,
                grayscale=self.image.is_grayscale,
                bit_depth=self.image.bit_depth,
                icc_profile=self.image.icc_profile,
                exif=self.image.exif,
                quality=self.settings.quality,
            )
            map_path = self.plan.side_file(WEIGHT_MAP)
            if restored.weight_map is not None and map_path is not None:
                picture = weight_map_image(restored.weight_map, restored.final.shape[:2])
                write_image(map_path, picture)

    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        """Add the time the block takes to this image's seconds."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - started

    def outcome(self, status: str, error: BaseException | None = None) -> ImageOutcome:
        """The report of this image; its pixels are released (a batch may hold many jobs)."""
        self.image = self.prepared = None
        return ImageOutcome(
            self.source,
            self.plan.result,
            status,
            seconds=self.seconds,
            error=None if error is None else one_line(self.source, error),
            warnings=self.warnings,
            measures=self.measures if status == DONE else {},
            output_pixels=self.output_pixels if status == DONE else 0,
        )


def run_batch(
    plan: list[PlannedImage],
    *,
    task: Task,
    restorer: Restorer,
    settings: WriteSettings,
    reporter: Reporter,
    should_stop: Callable[[], bool],
    skipped: Sequence[Skipped] = (),
) -> list[ImageOutcome]:
    """Restore every planned image; the outcome of each, skipped ones first (entries that are
    not readable files, then images whose files exist unless `settings.overwrite`)."""
    batch = _Batch(task, restorer, settings, reporter, should_stop)
    for entry in skipped:
        batch.record(ImageOutcome(entry.path, None, SKIPPED, reason=entry.reason))
    work = []
    for planned in plan:
        existing = skipped_as_existing(planned, settings.overwrite)
        if existing is not None:
            batch.record(existing)
        else:
            work.append(_ImageJob(planned, task, settings))
    batch.run(work)
    return batch.outcomes


def skipped_as_existing(planned: PlannedImage, overwrite: bool) -> ImageOutcome | None:
    """The outcome of an item skipped because one of its files exists (unless `overwrite`)."""
    if not planned.existing or overwrite:
        return None
    reason = f"{planned.existing[0]} exists (--overwrite)"
    return ImageOutcome(planned.source, planned.result, SKIPPED, reason=reason)


class _Batch:
    """The state of one batch run: the outcomes so far, the image in the network, and the jobs
    whose outcome the pipeline has yet to hand back (in order)."""

    def __init__(self, task: Task, restorer: Restorer, settings: WriteSettings,
                 reporter: Reporter, should_stop: Callable[[], bool]) -> None:
        self.task, self.restorer, self.settings = task, restorer, settings
        self.reporter, self.should_stop = reporter, should_stop
        self.outcomes: list[ImageOutcome] = []
        self.current: _ImageJob | None = None
        self.awaiting: deque[_ImageJob] = deque()
        self._lock = threading.Lock()

    def record(self, outcome: ImageOutcome, failure: BaseException | None = None) -> None:
        with self._lock:
            self.reporter.finish_image(outcome, failure)
            self.outcomes.append(outcome)

    def report(self, job: _ImageJob, status: str, error: BaseException | None = None) -> None:
        """Report `job` once, whichever thread sees its end first."""
        with self._lock:
            if job.reported:
                return
            job.reported = True
        self.record(job.outcome(status, error), error)

    def run(self, work: list[_ImageJob]) -> None:
        self.awaiting.extend(work)
        jobs = [Job(load=job.load, save=self._saver(job), name=str(job.source)) for job in work]
        try:
            run_jobs(jobs, self.process, self.on_outcome)
        except (RestoreInterrupted, KeyboardInterrupt):
            if self.current is not None:  # unless its result was written in the meantime
                self.report(self.current, INTERRUPTED)

    def _saver(self, job: _ImageJob) -> Callable[[_Restored], None]:
        def save(restored: _Restored) -> None:  # background thread: report once written
            job.write(restored)
            self.report(job, DONE)

        return save

    def process(self, job: _ImageJob) -> _Restored:
        """Run the network on one decoded image (main thread)."""
        self.current = job
        if self.should_stop():
            raise RestoreInterrupted("stopped before this image")
        self.reporter.start_image(job.source)
        with job.timed(), _failures_of(job.source):
            return _restore(job, self.restorer, self.settings, self.reporter, self.should_stop)

    def on_outcome(self, outcome: Outcome) -> None:
        """The pipeline's word on the next job in order: failures are reported here (a written
        image has reported itself already)."""
        job = self.awaiting.popleft()
        error = outcome.error
        self.report(job, DONE if error is None else FAILED, error)


def _restore(
    job: _ImageJob,
    restorer: Restorer,
    settings: WriteSettings,
    reporter: Reporter,
    should_stop: Callable[[], bool],
) -> _Restored:
    """Run the network on one prepared image and finish the result (main thread)."""
    assert job.image is not None and job.prepared is not None
    result = restorer.restore(
        job.prepared.network_input,
        with_weight_map=settings.save_weight_map,
        on_progress=reporter.tiles,
        should_stop=should_stop,
    )
    final = job.prepared.finish(result.image)
    shape = final.shape[:2]
    alpha = job.image.alpha
    if alpha is not None and alpha.shape != shape:
        alpha = resize_lanczos(alpha, shape)
    job.warnings.extend(result.notices)
    job.measures = job.task.measures(job.image, final)
    job.output_pixels = int(shape[0] * shape[1])
    return _Restored(final, alpha, result.weight_map if settings.save_weight_map else None)


@contextlib.contextmanager
def _failures_of(source: Path) -> Iterator[None]:
    """Turn any unexpected error of one image into an `ImageError`, so the batch goes on (the
    original stays attached as the cause, for -v); stop requests pass through."""
    try:
        yield
    except (AdaCodeError, RestoreInterrupted):
        raise
    except Exception as error:
        raise ImageError(one_line(source, error)) from error


def one_line(source: Path, error: BaseException) -> str:
    """The failure as one line that names the input (our errors usually already do)."""
    if isinstance(error, AdaCodeError):
        message = str(error)
    else:
        message = f"{type(error).__name__}: {' '.join(str(error).split())}"
    return message if message.startswith(str(source)) else f"{source}: {message}"
