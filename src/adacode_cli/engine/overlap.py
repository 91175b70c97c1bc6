"""How much overlap tiles need, from a measured error-versus-distance profile of each model.

Image-wide statistics make a tile normalise like the whole image, but its receptive field still
reaches past its border: output pixels near a cut edge differ from the whole-image output. The
profile (`seam_profile.json`, written by `benchmarks/seams.py`) is the RMS output error of a tile
at each distance, in input pixels, from a cut edge, measured per model on a real photo. From it
`expected_psnr` predicts PSNR(tiled, whole) for a tile size and overlap on the tiling the engine
uses (seams in the middle of each overlap, raised-cosine blend over half of it, errors of the
two tiles under a blend band independent), conservatively for an image covered by many tiles.
`default_overlap` is the smallest aligned overlap predicted to keep `TARGET_DB + MARGIN_DB`;
where none up to half the tile does, half the tile, and a notice. Checked against PSNR measured
on photos by `benchmarks/cpu.py --seams` (README, "Seams").
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from adacode_cli.engine.canvas import _ramp
from adacode_cli.model.config import AdaCodeConfig

if TYPE_CHECKING:
    from adacode_cli.engine.planner import Plan

PROFILE_PATH = Path(__file__).with_name("seam_profile.json")
TARGET_DB = 40.0  # below this, seams can be seen on a careful look
MARGIN_DB = 1.0  # the default aims this far above the target (photos differ from the profile's)
GUARANTEED_TILE = 192  # automatic tiles are at least this large (or 4x the overlap)
MAX_SHARE = 0.5  # overlap at most half the tile: at most 4x the work of tiles without overlap
# at least two alignment steps of overlap, so every seam gets a blend band: tiles that only
# touch measured 28.7 dB where 64 px measured 47.5 dB (sr-x2, 320 px photo, 192 px tiles)
MIN_OVERLAP_STEPS = 2
MAX_AUTO_OVERLAP = 512  # automatic tiles: the planner's smallest tile is then 2048 px


@dataclass(frozen=True)
class SeamProfile:
    """RMS error (output pixel values in [0, 1]) at distance 0, 1, ... input px from a cut."""

    rms_error: tuple[float, ...]

    def error(self, distance: np.ndarray) -> np.ndarray:
        """The error at each distance; beyond the measured range, the last (noise) value."""
        table = np.asarray(self.rms_error, dtype=np.float64)
        return table[np.clip(distance, 0, len(table) - 1)]


def model_key(config: AdaCodeConfig) -> str:
    """The profile entry of a model: its task, and the scale of super-resolution."""
    return f"sr-x{config.scale}" if config.task == "sr" else config.task


@functools.cache
def _profiles() -> dict[str, SeamProfile]:
    data = json.loads(PROFILE_PATH.read_text(encoding="utf-8"))
    return {key: SeamProfile(tuple(entry["rms_error"])) for key, entry in data.items()}


def profile_for(config: AdaCodeConfig) -> SeamProfile | None:
    """The measured profile of this model's task, None where none was measured."""
    return _profiles().get(model_key(config))


def _tile_weights(tile: int, stride: int, blend: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Over one period [overlap / 2, overlap / 2 + stride) of an endless row of tiles: the
    local position of each point in the tiles -1, 0 and 1, and their blending weights."""
    seam = (tile - stride) // 2  # seam between tile -1 and tile 0, in tile 0's coordinates
    x = np.arange(seam, seam + stride)
    locals_ = np.stack([x + stride, x, x - stride])
    weights = [np.zeros(stride), np.ones(stride), np.zeros(stride)]
    if blend:
        rise = _ramp(blend).double().numpy()
        half = blend // 2
        # left seam: tile -1 fades out over [seam - half, seam + half); only the right half is
        # inside this period, and its mirror image sits at the period's end (right seam)
        weights[0][:half] = 1 - rise[half:]
        weights[1][:half] = rise[half:]
        weights[1][stride - half :] = 1 - rise[:half]
        weights[2][stride - half :] = rise[:half]
    return locals_, weights


def expected_psnr(
    config: AdaCodeConfig, tile: int, overlap: int, profile: SeamProfile | None = None
) -> float:
    """PSNR(tiled, whole) the profile predicts for `tile`/`overlap` (rounded as the tiler
    rounds them) on an image many tiles wide; inf where no profile is known."""
    profile = profile or profile_for(config)
    if profile is None:
        return math.inf
    align = config.pad_multiple
    overlap = max(0, overlap // align * align)
    tile = max(tile // align * align, overlap + align)
    stride = tile - overlap
    blend = min(overlap // 4 * 2, stride // 2 * 2)
    locals_, weights = _tile_weights(tile, stride, blend)
    squared = profile.error(locals_) ** 2 + profile.error(tile - 1 - locals_) ** 2
    a = sum(w**2 * e for w, e in zip(weights, squared, strict=True)).mean()
    b = sum(w**2 for w in weights).mean()
    mse = 2 * a * b  # rows and columns: a pixel's error adds both axes' seams
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def default_overlap(
    config: AdaCodeConfig, tile: int | None, profile: SeamProfile | None = None
) -> int:
    """The overlap (input px) for tiles of side `tile`: the smallest aligned overlap from
    MIN_OVERLAP_STEPS alignment steps up to half the tile predicted to keep TARGET_DB +
    MARGIN_DB, else half the tile. For automatic tiles
    (`tile` None or 0), which the planner keeps at least 4x the overlap wide, the smallest
    overlap that keeps it on tiles of max(GUARANTEED_TILE, 4 x overlap)."""
    profile = profile or profile_for(config)
    align = config.pad_multiple
    if profile is None:
        return 2 * align  # 16 latent pixels of context on each side of a seam
    least = MIN_OVERLAP_STEPS * align
    if tile:
        side = max(tile // align * align, align)
        largest = int(side * MAX_SHARE) // align * align
        candidates = [(side, o) for o in range(min(least, largest), largest + 1, align)]
    else:
        candidates = [(max(GUARANTEED_TILE, 4 * o), o)
                      for o in range(least, MAX_AUTO_OVERLAP + 1, align)]
    for side, candidate in candidates:
        if expected_psnr(config, side, candidate, profile) >= TARGET_DB + MARGIN_DB:
            return candidate
    return candidates[-1][1]


def seam_notices(config: AdaCodeConfig, plan: Plan, overlap: int) -> list[str]:
    """One notice when this plan's tiles are expected to show seams (below TARGET_DB, or an
    overlap narrower than MIN_OVERLAP_STEPS alignment steps)."""
    if plan.tile is None or plan.per_tile_statistics:
        return []
    expected = expected_psnr(config, plan.tile, overlap)
    narrow = overlap < MIN_OVERLAP_STEPS * config.pad_multiple
    measured = _measured_tile(config)
    if expected >= TARGET_DB and not narrow and plan.tile >= measured:
        return []
    if plan.tile < measured:  # both cuts within the reach: the prediction does not hold
        reason = f"smaller than the {measured} px the seam profile covers"
    elif expected < TARGET_DB:
        reason = f"about {expected:.0f} dB against the whole image"
    else:
        reason = "too narrow a band to blend them"
    suggested = default_overlap(config, plan.tile)
    if plan.tile >= measured and expected_psnr(config, plan.tile, suggested) >= TARGET_DB:
        advice = f"--tile-overlap {suggested} keeps {TARGET_DB:.0f} dB"
    else:
        advice = f"--tile {_tile_that_keeps_target(config, plan.tile)} or more keeps it"
    return [f"{plan.tile} px tiles with {overlap} px overlap are expected to show seams "
            f"({reason}); {advice}"]


def _measured_tile(config: AdaCodeConfig) -> int:
    """The tile side the model's profile was measured on (0 without a profile)."""
    profile = profile_for(config)
    return 0 if profile is None else len(profile.rms_error)


def _tile_that_keeps_target(config: AdaCodeConfig, tile: int) -> int:
    """The smallest aligned tile side above `tile` whose default overlap keeps TARGET_DB."""
    align = config.pad_multiple
    side = max(tile // align * align + align, _measured_tile(config))
    while side < 4096 and expected_psnr(config, side, default_overlap(config, side)) < TARGET_DB:
        side += align
    return side
