"""Shared pieces of the engine tests: a photo-like test image, PSNR, tiny restorers."""

from __future__ import annotations

import math

import numpy as np
import torch

from adacode_cli.engine.restorer import RestoreOptions, Restorer
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import build_network


def photo_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients, flat objects with edges, a fine texture and sensor noise:
    the mix of flat and busy regions that makes per-tile statistics disagree."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    image = np.stack([0.5 + 0.4 * np.sin(2.1 * x + 1.3 * y + phase) for phase in (0, 2, 4)], -1)
    for _ in range(12):
        cy, cx, radius = rng.random(3) * [1, 1, 0.25] + [0, 0, 0.05]
        inside = (y - cy) ** 2 + (x - cx) ** 2 < radius**2
        image[inside] = image[inside] * 0.3 + rng.random(3) * 0.7
    image[: height // 2] += 0.08 * (np.sin(60 * x + 9 * y) * np.cos(50 * y))[: height // 2, :, None]
    image += rng.normal(0, 0.02, image.shape)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * math.log10(peak**2 / max(mse, 1e-12))


def tiny_restorer(task: str = "sr", scale: int = 2, seed: int = 0, **options: object) -> Restorer:
    torch.manual_seed(seed)
    network = build_network(AdaCodeConfig.tiny(task, scale))  # type: ignore[arg-type]
    options.setdefault("device", "cpu")
    return Restorer(network, RestoreOptions(**options))  # type: ignore[arg-type]
