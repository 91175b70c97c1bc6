"""The pretrained networks behind the perceptual and semantic losses, from the weights registry.

A loss that is switched on needs its weights: when they cannot be had (offline, not cached) the
command stops with one line naming the flag that switches the loss off. Training never falls
back to random VGG features, which give plausible-looking losses that teach nothing. Validation
uses LPIPS only when its weights are already cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from adacode_cli.errors import AdaCodeError, WeightsError

LPIPS_WEIGHTS = ("vgg16", "lpips-vgg")
SEMANTIC_WEIGHTS = ("vgg19",)


@dataclass
class LossWeightFiles:
    """Local weight files of the loss networks a run uses (None: not used / not available)."""

    lpips: tuple[Path, Path] | None = None
    lpips_for_loss: bool = False
    vgg19: Path | None = None


def _fetch(names: tuple[str, ...], offline: bool | None) -> list[Path]:
    from adacode_cli.weights.api import ensure_weights

    return [ensure_weights(name, offline=offline, quiet=False) for name in names]


def resolve_loss_weights(perceptual: bool, semantic: bool) -> LossWeightFiles:
    """Fetch (or find cached) the files the switched-on losses need; stop clearly if missing."""
    files = LossWeightFiles()
    if perceptual:
        files.lpips = _required(LPIPS_WEIGHTS, "perceptual (LPIPS)", "--no-perceptual")
        files.lpips_for_loss = True
    else:
        try:
            files.lpips = tuple(_fetch(LPIPS_WEIGHTS, offline=True))  # type: ignore[assignment]
        except AdaCodeError:
            files.lpips = None
    if semantic:
        files.vgg19 = _required(SEMANTIC_WEIGHTS, "semantic (VGG19)", "--no-semantic")[0]
    return files


def _required(names: tuple[str, ...], loss: str, flag: str) -> tuple[Path, ...]:
    try:
        return tuple(_fetch(names, offline=None))
    except WeightsError as error:
        raise WeightsError(
            f"cannot train with the {loss} loss: {error}; or pass {flag} to train without it"
        ) from error
