"""What a batch shows: progress, one line or JSON object per image, and the closing summary.

On a terminal a rich progress display (images done/total with ETA, tiles of the current image)
sits under the per-image lines; elsewhere the lines are plain text. With `--json` stdout carries
only the JSON objects and everything for people goes to stderr. Failures and warnings always go
to stderr, even with `--quiet`.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from adacode_cli.cli.printable import printable, printable_lines

DONE, SKIPPED, FAILED, INTERRUPTED = "done", "skipped", "failed", "interrupted"
FRAMES_LINE_SECONDS = 10.0


@dataclass
class ImageOutcome:
    """How one input went; `output_pixels` counts the written result (0 unless done)."""

    input: Path
    output: Path | None
    status: str
    seconds: float = 0.0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    measures: dict[str, float | None] = field(default_factory=dict)
    output_pixels: int = 0
    reason: str | None = None  # why it was skipped
    frames: int | None = None  # videos: frames written (or done before a stop)

    def as_json(self, **extra: object) -> str:
        """One JSON object; `extra` fields (a rank, a shard) come first."""
        record = {
            **extra,
            "input": str(self.input),
            "output": None if self.output is None else str(self.output),
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "reason": self.reason,
            "warnings": self.warnings,
            **{name: _rounded(value) for name, value in self.measures.items()},
            **({} if self.frames is None else {"frames": self.frames}),
        }
        return json.dumps(record)


class Reporter:
    """Shows a batch of `total` images as it runs; use as a context manager around the loop.

    `finish_image` may be called from the thread that writes the results (each image is reported
    the moment its file is written): a lock keeps the reports whole and in order.
    """

    def __init__(
        self,
        total: int,
        *,
        json_lines: bool,
        quiet: bool,
        verbose: bool,
        json_fields: dict[str, object] | None = None,
        count_finished: Callable[[], int] | None = None,
    ) -> None:
        """`json_fields` go into every JSON line; `count_finished` counts one finished image
        and returns how many are finished (in a job of many processes, all of them)."""
        self.total = total
        self.json_fields = json_fields or {}
        self._count_finished = count_finished
        self.json_lines = json_lines
        self.quiet = quiet
        self.verbose = verbose
        # People read stdout, except when it is reserved for JSON.
        self.console = Console(stderr=json_lines, highlight=False, soft_wrap=True)
        self.errors = Console(stderr=True, highlight=False, soft_wrap=True)
        self.progress: Progress | None = None
        self._images: TaskID | None = None
        self._tiles: TaskID | None = None
        self._finished = 0
        self._worked = 0  # images restored, failed or interrupted: those that took time
        self._skipped = 0
        self._current_fraction = 0.0  # of the image being restored, from its tiles
        self._started = time.perf_counter()
        self._frames_started = (0.0, 0)
        self._frames_said = 0.0
        self._seen_notices: set[str] = set()
        self._lock = threading.RLock()

    def __enter__(self) -> Reporter:
        if not self.quiet and self.console.is_terminal:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[eta]}"),
                console=self.console,
                redirect_stdout=not self.json_lines,
                transient=True,
            )
            self._images = self.progress.add_task("images", total=self.total, eta="")
            self._tiles = self.progress.add_task("tiles", total=None, visible=False, eta="")
            self.progress.start()
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.progress is not None:
            self.progress.stop()

    def say(self, text: str) -> None:
        """A line for people (nothing with --quiet)."""
        if not self.quiet:
            self._print(self.console, text)

    def warn(self, text: str) -> None:
        """A warning on stderr, each distinct text once per batch."""
        if text not in self._seen_notices:
            self._seen_notices.add(text)
            self._print(self.errors, f"warning: {text}")

    def start_image(self, path: Path) -> None:
        if self.progress is not None and self._images is not None and self._tiles is not None:
            self.progress.update(self._images, description=f"images ({_label_name(path)})")
            self.progress.reset(self._tiles, total=None, visible=False, description="tiles")

    def start_frames(self, path: Path, total: int, done: int = 0) -> None:
        """A video begins (or resumes at `done`): its frames done/total with an ETA."""
        self._frames_started = (time.perf_counter(), done)
        self._frames_said = time.perf_counter()
        if self.progress is not None and self._images is not None and self._tiles is not None:
            self.progress.update(self._images, description=f"videos ({_label_name(path)})")
            self.progress.reset(self._tiles, total=total, completed=done, visible=True,
                                description="frames")

    def frames(self, done: int, total: int) -> None:
        """Progress within a video; without a terminal a line every `FRAMES_LINE_SECONDS`."""
        if self.progress is not None and self._tiles is not None:
            self.progress.update(self._tiles, completed=done, total=total)
            return
        now = time.perf_counter()
        if self.quiet or now - self._frames_said < FRAMES_LINE_SECONDS or done >= total:
            return
        self._frames_said = now
        since, first = self._frames_started
        rate = (done - first) / max(now - since, 1e-9)
        eta = _duration((total - done) / rate) if rate > 0 else "unknown"
        self.say(f"  frames {done}/{total} ({rate:.2f} frames/s, ETA {eta})")

    def tiles(self, done: int, total: int) -> None:
        """The engine's progress callback for the current image."""
        self._current_fraction = done / total if total > 0 else 0.0
        if self.progress is not None and self._tiles is not None:
            self.progress.update(self._tiles, completed=done, total=total, visible=total > 1)
            self._show_eta()

    def eta(self) -> float | None:
        """Seconds left, from the time the images restored so far took (None before any)."""
        done = self._worked + self._current_fraction
        left = self.total - self._skipped - done
        if done <= 0 or left <= 0:
            return None
        return (time.perf_counter() - self._started) / done * left

    def finish_image(self, outcome: ImageOutcome, failure: BaseException | None = None) -> None:
        """Report one image: a line for people, a JSON object, or a failure on stderr."""
        with self._lock:
            self._finished = max(self._finished + 1 if self._count_finished is None
                                 else self._count_finished(), self._finished)
            if outcome.status == SKIPPED:
                self._skipped += 1
            else:
                self._worked += 1
                self._current_fraction = 0.0
            self._show_eta()
            self._report(outcome, failure)

    def show_finished(self, count: int) -> None:
        """Show `count` images finished (in a job of many processes, by all of them; a count
        read earlier never moves the display back)."""
        with self._lock:
            self._finished = max(count, self._finished)
            self._show_eta()

    def _show_eta(self) -> None:
        if self.progress is not None and self._images is not None:
            left = self.eta()
            shown = "" if left is None else f"ETA {_duration(left)}"
            self.progress.update(self._images, completed=self._finished, eta=shown)

    def _report(self, outcome: ImageOutcome, failure: BaseException | None) -> None:
        for warning in outcome.warnings:
            self.warn(warning)
        if self.json_lines:
            _write_line(outcome.as_json(**self.json_fields))
        if outcome.status == FAILED:
            if failure is not None and self.verbose:
                trace = "".join(traceback.format_exception(failure)).rstrip()
                self._print(self.errors, printable_lines(trace), lines=True)
            self._print(self.errors, f"failed: {outcome.error}")
        elif not self.json_lines:
            self.say(self._line(outcome))

    def summary(self, outcomes: list[ImageOutcome], seconds: float, *, interrupted: bool) -> None:
        """The closing table (terminal) or line, then every failure again."""
        if self.quiet:
            return
        counts = {status: sum(o.status == status for o in outcomes)
                  for status in (DONE, SKIPPED, FAILED, INTERRUPTED)}
        megapixels = sum(o.output_pixels for o in outcomes) / 1e6
        rate = _significant(megapixels / seconds if seconds > 0 else 0.0)
        psnrs = [o.measures["psnr"] for o in outcomes if o.measures.get("psnr") is not None]
        if self.console.is_terminal:
            table = Table("done", "skipped", "failed", "time", "output MP/s", title="summary")
            table.add_row(str(counts[DONE]), str(counts[SKIPPED]), str(counts[FAILED]),
                          f"{seconds:.1f} s", rate)
            self.console.print(table)
        else:
            self.say(f"summary: {counts[DONE]} done, {counts[SKIPPED]} skipped, "
                     f"{counts[FAILED]} failed in {seconds:.1f} s ({rate} output MP/s)")
        if psnrs:
            images = "image" if len(psnrs) == 1 else "images"
            self.say(f"mean {_label('psnr')} {sum(psnrs) / len(psnrs):.2f} dB over {len(psnrs)} "
                     f"{images}")
        if interrupted:
            left = self.total - len(outcomes) + counts[INTERRUPTED]
            self.say(f"interrupted: {left} of {self.total} images not restored")
        for outcome in outcomes:
            if outcome.status == FAILED:
                self._print(self.errors, f"  failed: {outcome.error}")

    def _line(self, outcome: ImageOutcome) -> str:
        counter = f"[{self._finished}/{self.total}]"
        if outcome.status == SKIPPED:
            return f"{counter} {outcome.input}: skipped, {outcome.reason}"
        if outcome.status == INTERRUPTED:
            return f"{counter} {outcome.input}: interrupted, nothing written"
        extra = "".join(
            f", {_label(name)} {_shown(value)}" for name, value in outcome.measures.items()
        ) + ("" if outcome.frames is None else f", {outcome.frames} frames")
        left = self.eta()
        eta = "" if left is None else f"; about {_duration(left)} left"
        return (f"{counter} {outcome.input} -> {outcome.output} "
                f"({outcome.seconds:.2f} s{extra}{eta})")

    def _print(self, console: Console, text: str, *, lines: bool = False) -> None:
        """`text` for people: one line with its control characters escaped (`lines`: lines
        already made printable)."""
        text = text if lines else printable(text)
        if console.is_terminal:
            console.print(text, markup=False)
        else:
            print(text, file=sys.stderr if console.stderr else sys.stdout, flush=True)


def _label_name(path: Path) -> str:
    """A file name for the progress display, which reads rich markup: `[b]` shown as typed."""
    return escape(printable(path.name))


def _label(measure: str) -> str:
    """What a measure is, as printed: the PSNR says how it is computed."""
    from adacode_cli.train.metrics import psnr_label

    return psnr_label() if measure == "psnr" else measure.upper()


def _significant(value: float) -> str:
    """Three significant digits, so small images do not show 0.000."""
    return f"{value:.3g}" if value > 0 else "0"


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}" if hours else f"{minutes}:{rest:02d}"


def _write_line(text: str) -> None:
    """`text` and its newline in one write, so lines from many processes sharing stdout never
    interleave inside a line."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _shown(value: float | None) -> str:
    if value is None or math.isinf(value):
        return "inf dB"
    return f"{value:.2f} dB"
