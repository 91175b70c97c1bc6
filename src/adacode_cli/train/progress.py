"""What a training run shows while it works: a rich progress bar with losses and ETA on a
terminal, one plain line per logged iteration otherwise, and TensorBoard scalars when the
`tensorboard` package is installed. Losses are means over the logging window (every iteration
since the previous log line), not one batch, so curves show the trend instead of batch noise.
Validation lines put the baseline's score beside the model's (see `train.baselines`)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
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


class LossWindow:
    """Running sums of each loss term since the last log (on the device: no sync per step)."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        for key, value in terms.items():
            value = value.detach().float()
            self.sums[key] = self.sums[key] + value if key in self.sums else value
            self.counts[key] = self.counts.get(key, 0) + 1

    def take_means(self) -> dict[str, float]:
        """Each term's mean over the iterations that computed it; the window starts again."""
        means = {key: float(total) / self.counts[key] for key, total in self.sums.items()}
        self.sums, self.counts = {}, {}
        return means

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps, so a resumed run logs the same means as a straight one."""
        return {"sums": {k: v.cpu() for k, v in self.sums.items()}, "counts": dict(self.counts)}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.sums = {k: v.to(device) for k, v in state["sums"].items()}
        self.counts = dict(state["counts"])


def scores_text(
    metrics: dict[str, float], baseline: dict[str, float], baseline_name: str, crop_border: int
) -> str:
    """`PSNR-Y, 4 px border 19.62 dB (bicubic 26.50 dB)  SSIM-Y 0.6100 (bicubic 0.7512) ...`"""
    from adacode_cli.train.metrics import psnr_label

    parts = []
    for key, value in metrics.items():
        label = {"psnr": psnr_label(crop_border), "ssim": "SSIM-Y", "lpips": "LPIPS"}[key]
        unit = " dB" if key == "psnr" else ""
        digits = 2 if key == "psnr" else 4
        text = f"{label} {_number(value, digits)}{unit}"
        if key in baseline:
            text += f" ({baseline_name} {_number(baseline[key], digits)}{unit})"
        parts.append(text)
    return "  ".join(parts)


def _number(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else str(value)


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

    def validation(
        self, iteration: int, metrics: dict[str, float], baseline: dict[str, float],
        baseline_name: str, crop_border: int, best: bool,
    ) -> None:
        """One console line, model and baseline side by side; TensorBoard draws both on one
        chart per metric (val/psnr: model and bicubic, ...)."""
        if not self.enabled:
            return
        if self.writer is not None:
            for key, value in metrics.items():
                curves = {"model": value}
                if math.isfinite(baseline.get(key, math.inf)):
                    curves[baseline_name] = baseline[key]
                self.writer.add_scalars(f"val/{key}", curves, iteration)
        text = scores_text(metrics, baseline, baseline_name, crop_border)
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
