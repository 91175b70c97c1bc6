"""Score restored images against references: pair files up by name, then PSNR / SSIM / LPIPS."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from adacode_cli.errors import AdaCodeError, ImageError
from adacode_cli.train.image_files import list_images, read_rgb
from adacode_cli.train.metrics import LPIPS_MIN_SIDE, psnr_y, ssim_y

if TYPE_CHECKING:
    from adacode_cli.train.losses import LPIPS



@dataclass
class ImagePair:
    """One restored image and its reference, named by the path without the extension."""

    name: str
    restored: Path
    reference: Path


@dataclass
class Pairing:
    """The pairs found, and the names present on one side only."""

    pairs: list[ImagePair]
    restored_only: list[str] = field(default_factory=list)
    reference_only: list[str] = field(default_factory=list)


def match_pairs(restored: Path, reference: Path) -> Pairing:
    """Two files, or two folders matched by relative path minus extension (a.png ~ a.jpg)."""
    for path in (restored, reference):
        if not path.exists():
            raise AdaCodeError(f"{path}: no such file or folder")
    if restored.is_file() and reference.is_file():
        return Pairing([ImagePair(restored.stem, restored, reference)])
    if restored.is_file() or reference.is_file():
        raise AdaCodeError("give two image files or two folders, not one of each")
    mine, theirs = _by_name(restored), _by_name(reference)
    names = sorted(mine.keys() & theirs.keys())
    if not names:
        raise AdaCodeError(f"no image in {restored} has a same-named reference in {reference}")
    return Pairing(
        [ImagePair(name, mine[name], theirs[name]) for name in names],
        sorted(mine.keys() - theirs.keys()),
        sorted(theirs.keys() - mine.keys()),
    )


def _by_name(folder: Path) -> dict[str, Path]:
    named: dict[str, Path] = {}
    for path in list_images(folder):
        name = path.relative_to(folder).with_suffix("").as_posix()
        if name in named:
            raise AdaCodeError(f"{folder}: both {named[name].name} and {path.name} are {name!r}")
        named[name] = path
    return named


def score_pair(pair: ImagePair, crop_border: int, lpips: LPIPS | None = None) -> dict[str, float]:
    """{'psnr', 'ssim'[, 'lpips']} for one pair; LPIPS only when a network is given."""
    restored, reference = read_rgb(pair.restored), read_rgb(pair.reference)
    if restored.shape != reference.shape:
        raise ImageError(
            f"{pair.name}: restored is {restored.shape[1]}x{restored.shape[0]}, "
            f"reference is {reference.shape[1]}x{reference.shape[0]}"
        )
    try:
        scores = {
            "psnr": psnr_y(restored, reference, crop_border),
            "ssim": ssim_y(restored, reference, crop_border),
        }
    except ValueError as error:
        raise ImageError(f"{pair.name}: {error}") from error
    if lpips is not None:
        if min(restored.shape[:2]) < LPIPS_MIN_SIDE:
            raise ImageError(f"{pair.name}: LPIPS needs at least {LPIPS_MIN_SIDE}x{LPIPS_MIN_SIDE}")
        scores["lpips"] = _lpips_score(lpips, restored, reference)
    return scores


def _lpips_score(lpips: LPIPS, restored: np.ndarray, reference: np.ndarray) -> float:
    import torch  # here, so that PSNR/SSIM-only runs never pay for loading torch

    def tensor(pixels: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 255.0

    with torch.no_grad():
        return float(lpips(tensor(restored), tensor(reference))[0])


def mean_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    """Per-metric average over images, as the official evaluate.py reports (inf stays inf)."""
    keys = rows[0].keys() if rows else ()
    return {key: math.fsum(row[key] for row in rows) / len(rows) for key in keys}
