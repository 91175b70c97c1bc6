"""What a training run shows while it works: a rich progress bar with losses and ETA on a
terminal, one plain line per logged iteration otherwise, and TensorBoard scalars when the
`tensorboard` package is installed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column

# Shown beside the bar, in this order (metrics.jsonl and the log lines have every term).
SHOWN_TERMS = ("l_pix", "l_percep", "l_g_gan")


def _format(values: dict[str, float], shown: tuple[str, ...] | None = None) -> str:
    keys = [k for k in shown if k in values] if shown else [k for k in values if k[:2] == "l_"]
    return "  ".join(f"{k} {values[k]:.4g}" for k in keys)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class TrainingDisplay:
    """Progress, log lines and TensorBoard for one run (a no-op on ranks other than 0)."""

    def __init__(
        self,
        console: Console,
        title: str,
        first: int,
        total: int,
        *,
        enabled: bool = True,
        tensorboard: Path | None = None,
    ):
        self.console, self.title, self.first, self.total = console, title, first, total
        self.enabled = enabled
        self.started = time.monotonic()
        self.progress: Progress | None = None
        self.writer = _summary_writer(tensorboard) if enabled and tensorboard else None
        if enabled and console.is_terminal:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(bar_width=16),
                MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[losses]}",
                           table_column=Column(no_wrap=True, overflow="ellipsis")),
                console=console,
            )
            self.task = self.progress.add_task(title, total=total, completed=first, losses="")
            self.progress.start()

    def advance(self, iteration: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=iteration)

    def losses(self, iteration: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"train/{key}", value, iteration)
        if self.progress is not None:
            self.progress.update(self.task, losses=_format(values, SHOWN_TERMS))
            return
        done = iteration - self.first
        elapsed = time.monotonic() - self.started
        eta = elapsed / done * (self.total - iteration) if done else 0.0
        self.console.print(
            f"{self.title} iter {iteration}/{self.total}  {_format(values)}  "
            f"eta {_duration(eta)}", highlight=False, soft_wrap=True,
        )

    def validation(self, iteration: int, metrics: dict[str, float], best: bool) -> None:
        if not self.enabled:
            return
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(f"val/{key}", value, iteration)
        text = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        self.message(f"validation at iter {iteration}: {text}{'  (best so far)' if best else ''}")

    def message(self, text: str) -> None:
        if self.enabled:
            if self.progress is not None:
                self.progress.console.print(text, highlight=False, soft_wrap=True)
            else:
                self.console.print(text, highlight=False, soft_wrap=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        if self.writer is not None:
            self.writer.close()


def _summary_writer(folder: Path) -> Any:
    """A TensorBoard writer, or None when the tensorboard package is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(folder))
