"""Validation during training: the model and a baseline scored on the same held-out images.

Every validation scores the generator with PSNR-Y (the crop border of `val.crop_border`),
SSIM-Y and, when its weights are cached, LPIPS; the task's baseline (`train.baselines`) gets the
same scores once, so every line, log row and chart shows the model beside it. The metric that
picks the best checkpoint is `val.key_metric`, or PSNR when it asks for LPIPS without weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from adacode_cli.errors import AdaCodeError
from adacode_cli.images.depth import to_bit_depth
from adacode_cli.model.padding import restore_whole
from adacode_cli.train.config import ValSection
from adacode_cli.train.data import ValidationSample
from adacode_cli.train.evaluation import mean_scores
from adacode_cli.train.losses import LPIPS
from adacode_cli.train.metrics import psnr_label, psnr_y, ssim_y

LOWER_IS_BETTER = frozenset({"lpips"})


class Validator:
    """Scores networks on the held-out samples of one run."""

    def __init__(
        self, samples: list[ValidationSample], baseline_name: str, lpips: LPIPS | None,
        settings: ValSection, device: torch.device,
    ):
        self.samples, self.baseline_name, self.lpips = samples, baseline_name, lpips
        self.settings, self.device = settings, device
        self.baseline: dict[str, float] | None = None

    @torch.no_grad()
    def scores(self, network: nn.Module, should_stop: Callable[[], bool] = lambda: False
               ) -> dict[str, float] | None:
        """Mean scores of `network` (in eval mode) over the samples; the baseline's on the first
        call, into `self.baseline`. None when `should_stop` turns true between samples: a
        stop request (a cluster's time limit leaves seconds) must not wait for a long
        validation set, and a mean over part of it would mislead."""
        rows = []
        for sample in self.samples:
            if should_stop():
                return None
            output, _ = restore_whole(network, sample.lq.to(self.device))
            rows.append(self._score(sample, output[0].float().permute(1, 2, 0).cpu().numpy()))
        if self.baseline is None:
            self.baseline = mean_scores([self._score(s, s.baseline) for s in self.samples])
        return mean_scores(rows)

    def _score(self, sample: ValidationSample, image: np.ndarray) -> dict[str, float]:
        """PSNR, SSIM (and LPIPS) of one image (float [0, 1] or 8-bit) against the reference."""
        restored = to_bit_depth(image, 8) if image.dtype != np.uint8 else image
        border = self.settings.crop_border
        try:
            row = {"psnr": psnr_y(restored, sample.reference, border),
                   "ssim": ssim_y(restored, sample.reference, border)}
        except ValueError as error:
            raise AdaCodeError(f"validation image {sample.name}: {error}") from error
        if self.lpips is not None:
            row["lpips"] = float(self.lpips(_unit(restored, self.device),
                                            _unit(sample.reference, self.device))[0])
        return row

    def key_metric(self) -> str:
        key = self.settings.key_metric
        return "psnr" if key == "lpips" and self.lpips is None else key

    def better(self, score: float, best: float | None) -> bool:
        """Whether `score` of the key metric beats `best` (None: nothing to beat)."""
        lower = self.key_metric() in LOWER_IS_BETTER
        return best is None or (score < best if lower else score > best)

    def notice(self) -> str:
        """Which score picks the best checkpoint, and why when it is not the configured one."""
        if not self.samples:
            return "no validation images (--val): exports and stage 3 take the latest checkpoint"
        key = self.key_metric()
        label = psnr_label(self.settings.crop_border) if key == "psnr" else key.upper()
        text = f"best checkpoint: {'lowest' if key in LOWER_IS_BETTER else 'highest'} {label}"
        if key != self.settings.key_metric:
            text += (f" (val.key_metric is {self.settings.key_metric}, but the LPIPS weights "
                     "are not cached: `adacode weights download vgg16 lpips-vgg`)")
        return text

    def row(self, iteration: int, metrics: dict[str, float], best: bool) -> dict[str, Any]:
        """A validation.jsonl row: the model's scores, then the baseline's (null: infinite)."""
        assert self.baseline is not None
        row = {"iter": iteration, **metrics, "best": best, "baseline": self.baseline_name,
               **{f"baseline_{key}": value for key, value in self.baseline.items()}}
        return {k: None if isinstance(v, float) and not math.isfinite(v) else v
                for k, v in row.items()}


def _unit(pixels: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.array(pixels)).permute(2, 0, 1)[None].float().to(device) / 255.0
