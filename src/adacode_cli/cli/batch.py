"""The per-image loop: read, restore, finish, write; one bad file never stops the batch.

The engine's pipeline (`engine.pipeline.run_jobs`) decodes the next image and encodes the
previous result in a background thread while the network works on the current image. Each image
is written atomically in its own mode: alpha restored separately and re-attached, grey stays
grey, 16-bit stays 16-bit, metadata carried. Existing outputs are skipped unless `overwrite`. A
stop request (Ctrl-C) ends the batch after the engine's current tile batch; nothing is written
for the image it interrupted, and the result being saved at that moment is completed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adacode_cli.cli.report import DONE, FAILED, INTERRUPTED, SKIPPED, ImageOutcome, Reporter
from adacode_cli.cli.tasks import PreparedImage, Task
from adacode_cli.engine.pipeline import Job, Outcome, run_jobs
from adacode_cli.engine.restorer import RestoreInterrupted, Restorer
from adacode_cli.errors import AdaCodeError, ImageError
from adacode_cli.images.decode import LoadedImage, read_image
from adacode_cli.images.encode import write_image
from adacode_cli.images.resize import resize_lanczos
from adacode_cli.images.weightmap import weight_map_image

WEIGHT_MAP_SUFFIX = "-weights.png"


@dataclass(frozen=True)
class WriteSettings:
    """How results are written."""

    quality: int
    overwrite: bool
    save_weight_map: bool


def weight_map_path(output: Path) -> Path:
    """Where `--save-weight-map` puts the picture for `output`: beside it, always PNG."""
    return output.with_name(output.stem + WEIGHT_MAP_SUFFIX)


@dataclass
class _Restored:
    """The finished result of one image, waiting to be written."""

    final: np.ndarray
    alpha: np.ndarray | None
    weight_map: np.ndarray | None


@dataclass(eq=False)  # identity: jobs are looked up, never compared
class _ImageJob:
    """One image on its way through the pipeline, and what the report needs to know about it."""

    source: Path
    target: Path
    task: Task
    settings: WriteSettings
    seconds: float = 0.0  # spent on this image: decode, restore and encode, not waiting
    image: LoadedImage | None = None  # held from load to the report, then released
    prepared: PreparedImage | None = None
    warnings: list[str] = field(default_factory=list)
    measures: dict[str, float | None] = field(default_factory=dict)
    output_pixels: int = 0
    saved: bool = False

    def load(self) -> _ImageJob:
        """Decode the image and prepare the network input (background thread)."""
        with self.timed(), _failures_of(self.source):
            self.image = read_image(self.source)
            self.warnings = list(self.image.warnings)
            self.prepared = self.task.prepare(self.source, self.image)
        return self

    def save(self, restored: _Restored) -> None:
        """Write the result, and its weight map if asked (background thread)."""
        assert self.image is not None
        with self.timed(), _failures_of(self.source):
            write_image(
                self.target,
                restored.final,
                alpha=restored.alpha,
                grayscale=self.image.is_grayscale,
                bit_depth=self.image.bit_depth,
                icc_profile=self.image.icc_profile,
                exif=self.image.exif,
                quality=self.settings.quality,
            )
            if restored.weight_map is not None:
                picture = weight_map_image(restored.weight_map, restored.final.shape[:2])
                write_image(weight_map_path(self.target), picture)
        self.saved = True

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
            self.target,
            status,
            seconds=self.seconds,
            error=None if error is None else _one_line(self.source, error),
            warnings=self.warnings,
            measures=self.measures if status == DONE else {},
            output_pixels=self.output_pixels if status == DONE else 0,
        )


def run_batch(
    plan: list[tuple[Path, Path]],
    *,
    task: Task,
    restorer: Restorer,
    settings: WriteSettings,
    reporter: Reporter,
    should_stop: Callable[[], bool],
) -> list[ImageOutcome]:
    """Restore every (input, output) pair of `plan`; the outcome of each attempted one.

    Inputs whose output exists are reported as skipped first (unless `settings.overwrite`).
    """
    outcomes: list[ImageOutcome] = []

    def report(outcome: ImageOutcome, failure: BaseException | None = None) -> None:
        reporter.finish_image(outcome, failure)
        outcomes.append(outcome)

    work: list[_ImageJob] = []
    for source, target in plan:
        if not settings.overwrite and target.exists():
            report(ImageOutcome(source, target, SKIPPED))
        else:
            work.append(_ImageJob(source, target, task, settings))
    jobs = [Job(load=job.load, save=job.save, name=str(job.source)) for job in work]
    pending = {id(pipeline_job): job for pipeline_job, job in zip(jobs, work, strict=True)}
    in_process: list[_ImageJob] = []

    def process(job: _ImageJob) -> _Restored:
        in_process[:] = [job]
        if should_stop():
            raise RestoreInterrupted("stopped before this image")
        reporter.start_image(job.source)
        with job.timed(), _failures_of(job.source):
            return _restore(job, restorer, settings, reporter, should_stop)

    def on_outcome(outcome: Outcome) -> None:
        job = pending.pop(id(outcome.job))
        error = outcome.error
        report(job.outcome(DONE if error is None else FAILED, error), error)

    try:
        run_jobs(jobs, process, on_outcome)
    except (RestoreInterrupted, KeyboardInterrupt):
        unreported = list(pending.values())
        for job in unreported:  # the pipeline stops without reporting the save it completed
            if job.saved:
                report(job.outcome(DONE))
        if in_process and in_process[0] in unreported and not in_process[0].saved:
            report(in_process[0].outcome(INTERRUPTED))
    return outcomes


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
        raise ImageError(_one_line(source, error)) from error


def _one_line(source: Path, error: BaseException) -> str:
    """The failure as one line that names the input (our errors usually already do)."""
    if isinstance(error, AdaCodeError):
        message = str(error)
    else:
        message = f"{type(error).__name__}: {' '.join(str(error).split())}"
    return message if message.startswith(str(source)) else f"{source}: {message}"
