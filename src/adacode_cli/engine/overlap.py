"""How much overlap tiles need, from a measured error-versus-distance profile of each model.

Image-wide statistics make a tile normalise like the whole image, but its receptive field still
reaches past its border: output pixels near a cut edge differ from the whole-image output. The
profile (`seam_profile.json`, written by `benchmarks/seams.py --profile`) is the RMS output
error of a tile at each distance, in input pixels, from a cut edge, measured per model on a
real photo cut into two abutting tiles that are given the whole image's statistics.
Each model has two profiles: tiles that run the long-reach Swin steps themselves, and tiles
whose Swin steps run once over the whole latent (`whole_latent`; the executor gathers it from
the tile cores), where only the convolutions around them reach past a border.
`grid_psnr` predicts PSNR(tiled, whole) for an actual tile grid (its tiles, seams and blend
bands; errors of the two tiles under a blend band independent), `expected_psnr` for an image
many tiles wide. `image_overlap` is the default for `--tile N` on one image: the smallest
aligned overlap whose grid is predicted to keep `TARGET_DB + MARGIN_DB` (a 2 x 2 grid has fewer
seams than a 9 x 9 one, so it may need less), `default_overlap` the same for images many tiles
wide and for automatic tiles. Checked against PSNR measured on photos by `benchmarks/seams.py`
(README, "Seams").
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from adacode_cli.engine.canvas import _axis_weights, _ramp
from adacode_cli.engine.tiling import Axis, TileGrid, plan_tiles, side_for_core
from adacode_cli.model.config import AdaCodeConfig

if TYPE_CHECKING:
    from adacode_cli.engine.planner import Plan

PROFILE_PATH = Path(__file__).with_name("seam_profile.json")
TARGET_DB = 40.0  # below this, seams can be seen on a careful look
# the default aims this far above the target: near 40 dB the prediction measured 1.1-4.9 dB
# above PSNR on photos (sr-x2, 480 px, benchmarks/seams.py; README, Seams)
MARGIN_DB = 5.0
GUARANTEED_TILE = 192  # automatic tiles are at least this large (or 4x the overlap)
MAX_SHARE = 0.5  # overlap at most half the tile: at most 4x the work of tiles without overlap
# at least two alignment steps of overlap, so every seam gets a blend band: tiles that only
# touch measured 28.7 dB where 64 px measured 47.5 dB (sr-x2, 320 px photo, 192 px tiles)
MIN_OVERLAP_STEPS = 2
LATENT_REACH_KEY = "latent_reach"
# the latent gathered from tile cores must be the whole image's, not merely seamless: its errors
# spread over whole Swin windows, and the cliff is sharp (sr-x2: RMS 0.05 at 16 px from a cut,
# noise at 32 px), so the reach (`least_overlap`) is measured where every column keeps 60 dB
LATENT_REACH_DB = 60.0
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


WHOLE_LATENT_KEY = "rms_error_whole_latent"


@functools.cache
def _profile_data() -> dict[str, dict]:
    """`seam_profile.json`, read once: the profiles and latent reaches come from it."""
    return json.loads(PROFILE_PATH.read_text(encoding="utf-8"))


@functools.cache
def _profiles() -> dict[tuple[str, bool], SeamProfile]:
    profiles = {}
    for key, entry in _profile_data().items():
        profiles[key, False] = SeamProfile(tuple(entry["rms_error"]))
        if WHOLE_LATENT_KEY in entry:
            profiles[key, True] = SeamProfile(tuple(entry[WHOLE_LATENT_KEY]))
    return profiles


def profile_for(config: AdaCodeConfig, whole_latent: bool = False) -> SeamProfile | None:
    """The measured profile of this model's task for tiles that run their Swin steps
    themselves or (`whole_latent`) over the whole latent; None where none was measured."""
    return _profiles().get((model_key(config), whole_latent))


@functools.cache
def _latent_reaches() -> dict[str, int]:
    return {key: int(entry[LATENT_REACH_KEY]) for key, entry in _profile_data().items()
            if LATENT_REACH_KEY in entry}


def tile_alignment(config: AdaCodeConfig, whole_latent: bool = False) -> int:
    """What tile starts and sides are multiples of (input px): the Swin window grid
    (`pad_multiple`) for tiles that run their Swin steps themselves, so their windows fall where
    the whole image's do; the latent grid (`latent_factor`, the strided convolutions' step) when
    the Swin steps run over the whole latent."""
    return config.latent_factor if whole_latent and _has_latent_reach(config) \
        else config.pad_multiple


def _has_latent_reach(config: AdaCodeConfig) -> bool:
    return model_key(config) in _latent_reaches() and profile_for(config, True) is not None


def least_overlap(config: AdaCodeConfig, whole_latent: bool = False) -> int:
    """The narrowest overlap the seam prediction holds for: MIN_OVERLAP_STEPS steps of the
    Swin window grid (a blend band at every seam). With the whole latent this also keeps every
    core edge a full step inside its tile, so the latent gathered from the cores is the whole
    image's: the encoder before the Swin steps sees about one step around each latent pixel,
    and the measured `latent_reach` (10-56 px for the official models at 60 dB) sits close to
    a sharp cliff that moves with the weights (the tiny test models need 64 px where the
    official inpainting model needs 56). A model measured to reach further gets twice its
    reach."""
    least = MIN_OVERLAP_STEPS * config.pad_multiple
    align = tile_alignment(config, whole_latent)
    if align == config.pad_multiple:
        return least
    return max(least, -(-2 * _latent_reaches()[model_key(config)] // align) * align)


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
    config: AdaCodeConfig, tile: int, overlap: int, profile: SeamProfile | None = None,
    whole_latent: bool = False,
) -> float:
    """PSNR(tiled, whole) the profile predicts for `tile`/`overlap` (rounded as the tiler
    rounds them) on an image many tiles wide; inf where no profile is known."""
    profile = profile or profile_for(config, whole_latent)
    if profile is None:
        return math.inf
    align = tile_alignment(config, whole_latent)
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


def grid_psnr(config: AdaCodeConfig, grid: TileGrid, profile: SeamProfile | None = None
              ) -> float:
    """PSNR(tiled, whole) the profile predicts for this very grid (its tiles, seams and blend
    bands over the padded image; cut edges only where a tile ends inside the image); inf where
    no profile is known or one tile covers the image."""
    profile = profile or profile_for(config)
    if profile is None or len(grid) == 1:
        return math.inf
    rows_a, rows_b = _axis_terms(grid.rows, grid.height, profile)
    cols_a, cols_b = _axis_terms(grid.cols, grid.width, profile)
    mse = rows_a * cols_b + rows_b * cols_a  # a pixel's error adds both axes' cuts
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def _axis_terms(axis: Axis, size: int, profile: SeamProfile) -> tuple[float, float]:
    """Means over one axis of sum_t w_t^2 e_t^2 (blend weight w, squared cut error e^2 of
    tile t) and of sum_t w_t^2."""
    a, b = np.zeros(size), np.zeros(size)
    for index, start in enumerate(axis.starts):
        low, high = axis.support(index, size)
        weights = _axis_weights(axis, index, size, 1).double().numpy() ** 2
        position = np.arange(low, high)
        squared = np.zeros(high - low)
        if start > 0:
            squared += profile.error(position - start) ** 2
        if start + axis.length < size:
            squared += profile.error(start + axis.length - 1 - position) ** 2
        a[low:high] += weights * squared
        b[low:high] += weights
    return float(a.mean()), float(b.mean())


def default_overlap(
    config: AdaCodeConfig, tile: int | None, profile: SeamProfile | None = None,
    whole_latent: bool = False,
) -> int:
    """The overlap (input px) for tiles that each own `tile` x `tile` pixels (`--tile`) on an
    image many tiles wide: the smallest aligned overlap from `least_overlap` up to the core
    itself predicted to keep TARGET_DB + MARGIN_DB on tiles of core plus overlap, else the
    core (half the computed tile). For automatic tiles (`tile` None or 0), which the planner
    keeps at least 4x the overlap wide, the smallest overlap that keeps it on tiles of
    max(GUARANTEED_TILE, 4 x overlap). `image_overlap` refines it for one image."""
    profile = profile or profile_for(config, whole_latent)
    align = tile_alignment(config, whole_latent)
    if profile is None:
        return MIN_OVERLAP_STEPS * config.pad_multiple  # 16 latent pixels each side of a seam
    least = least_overlap(config, whole_latent)
    if tile:
        core = max(tile // align * align, align)
        candidates = [(core + o, o) for o in range(min(least, core), core + 1, align)]
    else:
        candidates = [(max(GUARANTEED_TILE, 4 * o), o)
                      for o in range(least, MAX_AUTO_OVERLAP + 1, align)]
    for side, candidate in candidates:
        if expected_psnr(config, side, candidate, profile, whole_latent) >= TARGET_DB + MARGIN_DB:
            return candidate
    return candidates[-1][1]


def image_overlap(config: AdaCodeConfig, padded: tuple[int, int], image: tuple[int, int],
                  core: int, whole_latent: bool = False) -> int:
    """The default overlap for `--tile core` on one image (its `padded` and own `image`
    (height, width)): the smallest aligned overlap from `least_overlap` up to the core whose
    actual grid is predicted to keep TARGET_DB + MARGIN_DB (a grid of few tiles has few
    seams), else the largest of them."""
    align = tile_alignment(config, whole_latent)
    core = min(core, max(image))  # a core beyond the image is the whole image
    if profile_for(config, whole_latent) is None:
        return default_overlap(config, core)
    largest = max(core // align * align, align)
    candidates = range(min(least_overlap(config, whole_latent), largest), largest + 1, align)
    for candidate in candidates:
        predicted = core_prediction(config, padded, image, core, candidate, whole_latent)[1]
        if predicted >= TARGET_DB + MARGIN_DB:
            return candidate
    return candidates[-1]


def core_prediction(config: AdaCodeConfig, padded: tuple[int, int], image: tuple[int, int],
                    core: int, overlap: int, whole_latent: bool = False) -> tuple[int, float]:
    """For `--tile core --tile-overlap overlap` on one image: the computed tile side, and the
    PSNR(tiled, whole) `grid_psnr` predicts for its grid."""
    side = side_for_core(padded, image, core, overlap, tile_alignment(config, whole_latent))
    grid = tile_grid(config, padded, side, overlap, whole_latent=whole_latent)
    return side, grid_psnr(config, grid, profile_for(config, whole_latent))


def tile_grid(config: AdaCodeConfig, padded: tuple[int, int], side: int, overlap: int,
              blend: int | None = None, whole_latent: bool = False) -> TileGrid:
    """The engine's grid over a `padded` (height, width) input for tiles of `side` with
    `overlap`, blended over `blend` pixels (default: half the overlap)."""
    blend = overlap // 2 if blend is None else blend
    return plan_tiles(*padded, side, overlap, tile_alignment(config, whole_latent),
                      config.latent_factor, blend)


def seam_notices(config: AdaCodeConfig, plan: Plan, padded: tuple[int, int],
                 image: tuple[int, int], core: int | None = None) -> list[str]:
    """One notice when this plan's tiles on an image (its `padded` and own `image` (height,
    width)) are expected to show seams (below TARGET_DB, or an overlap narrower than
    `least_overlap`). `core` is the `--tile` the plan was made for (None for
    automatic tiles): the overlap the notice advises is for that `--tile`."""
    if plan.tile is None or plan.per_tile_statistics:
        return []
    overlap, whole_latent = plan.overlap, plan.whole_latent
    profile = profile_for(config, whole_latent)
    grid = tile_grid(config, padded, plan.tile, overlap, whole_latent=whole_latent)
    expected = grid_psnr(config, grid, profile)
    narrow = overlap < least_overlap(config, whole_latent)
    measured = 0 if profile is None else len(profile.rms_error)  # the profile's tile side
    if expected >= TARGET_DB and not narrow and plan.tile >= measured:
        return []
    if plan.tile < measured:  # both cuts within the reach: the prediction does not hold
        reason = f"smaller than the {measured} px the seam profile covers"
    elif expected < TARGET_DB:
        reason = f"about {expected:.0f} dB against the whole image"
    else:
        reason = "too narrow a band to blend them"
    suggested = _overlap_that_keeps_target(config, padded, image, plan.tile, core, whole_latent)
    if plan.tile >= measured and suggested is not None:
        advice = f"--tile-overlap {suggested} keeps {TARGET_DB:.0f} dB"
    else:
        core = _core_that_keeps_target(config, padded, image, plan.tile, whole_latent, measured)
        advice = f"--tile {core} or more keeps it"
    return [f"{plan.tile} px tiles with {overlap} px overlap are expected to show seams "
            f"({reason}); {advice}"]


def _overlap_that_keeps_target(config: AdaCodeConfig, padded: tuple[int, int],
                               image: tuple[int, int], side: int, core: int | None,
                               whole_latent: bool) -> int | None:
    """The overlap to advise, predicted to keep TARGET_DB + MARGIN_DB on this image (as the
    defaults are): for `--tile core` its default overlap, whose tiles grow with it; for tiles
    of a fixed `side` the smallest aligned one up to half the side. None where none does."""
    align = tile_alignment(config, whole_latent)
    aim = TARGET_DB + MARGIN_DB
    if core:
        candidate = image_overlap(config, padded, image, core, whole_latent)
        keeps = core_prediction(config, padded, image, core, candidate, whole_latent)[1] >= aim
        return candidate if keeps else None
    profile = profile_for(config, whole_latent)
    for candidate in range(least_overlap(config, whole_latent), side // 2 + 1, align):
        grid = tile_grid(config, padded, side, candidate, whole_latent=whole_latent)
        if grid_psnr(config, grid, profile) >= aim:
            return candidate
    return None


def _core_that_keeps_target(config: AdaCodeConfig, padded: tuple[int, int],
                            image: tuple[int, int], side: int, whole_latent: bool,
                            measured: int) -> int:
    """The smallest aligned `--tile` (the pixels a tile owns) whose tiles on this image, with
    their default overlap, are larger than `side`, at least the profile's tile (`measured`),
    and keep TARGET_DB."""
    align = tile_alignment(config, whole_latent)
    core = align
    while core < max(image):
        overlap = image_overlap(config, padded, image, core, whole_latent)
        computed, expected = core_prediction(config, padded, image, core, overlap, whole_latent)
        if computed > side and computed >= measured and expected >= TARGET_DB:
            break
        core += align
    return core
