"""Default tile overlap from the measured seam profile, and the notice for seams that will show."""

from __future__ import annotations

import re

import numpy as np
import pytest

from adacode_cli.engine import overlap
from adacode_cli.engine.planner import Plan
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.padding import padded_size
from engine_helpers import photo_like, psnr, tiny_restorer

CONFIG = AdaCodeConfig.tiny("sr", 2)


def decaying(reach: float) -> overlap.SeamProfile:
    """An error of 0.03 at a cut edge falling off over `reach` pixels to a 0.0005 floor."""
    distance = np.arange(256)
    return overlap.SeamProfile(tuple(0.03 * np.exp(-distance / reach) + 0.0005))


def test_default_overlap_grows_with_the_reach_the_profile_measured() -> None:
    chosen = [overlap.default_overlap(CONFIG, 256, decaying(reach)) for reach in (8, 40, 48)]
    assert chosen[0] <= chosen[1] <= chosen[2] and chosen[0] < chosen[2]
    align = CONFIG.pad_multiple
    for reach, value in zip((8, 40, 48), chosen, strict=True):
        profile = decaying(reach)
        aim = overlap.TARGET_DB + overlap.MARGIN_DB
        # --tile 256 owns 256 px: its tiles are 256 px plus the overlap
        assert overlap.expected_psnr(CONFIG, 256 + value, value, profile) >= aim
        if value > overlap.MIN_OVERLAP_STEPS * align:  # the smallest overlap that does
            smaller = value - align
            assert overlap.expected_psnr(CONFIG, 256 + smaller, smaller, profile) < aim


def grid_for(config: AdaCodeConfig, size: int, core: int) -> tuple[int, int, int, float]:
    """For `--tile core` on a size x size image: padded side, overlap, tile side, prediction."""
    padded = padded_size(size, config.pad_multiple)
    chosen = overlap.image_overlap(config, (padded, padded), (size, size), core)
    side, expected = overlap.core_prediction(config, (padded, padded), (size, size), core,
                                             chosen)
    return padded, chosen, side, expected


@pytest.mark.parametrize("size", [480, 1000, 2000])
def test_official_models_keep_the_target_or_get_the_largest_overlap_and_a_notice(size) -> None:
    for task, scale in (("sr", 2), ("sr", 4), ("inpaint", 1), ("recon", 1)):
        config = AdaCodeConfig.official(task, scale)  # type: ignore[arg-type]
        assert overlap.profile_for(config) is not None, overlap.model_key(config)
        for core in range(192, 1025, 64):
            padded, chosen, side, expected = grid_for(config, size, core)
            aligned_core = core // config.pad_multiple * config.pad_multiple
            assert expected >= overlap.TARGET_DB + overlap.MARGIN_DB or chosen == aligned_core
            plan = Plan(side, overlap=chosen)
            notices = overlap.seam_notices(config, plan, (padded, padded), (size, size))
            small = side < len(overlap.profile_for(config).rms_error)
            assert len(notices) == (expected < overlap.TARGET_DB or small)
        automatic = overlap.default_overlap(config, None)  # tiles >= max(192, 4 x overlap)
        side = max(overlap.GUARANTEED_TILE, 4 * automatic)
        assert (overlap.expected_psnr(config, side, automatic) >= overlap.TARGET_DB
                or automatic == overlap.MAX_AUTO_OVERLAP)


def test_the_grid_prediction_counts_the_seams_an_image_really_has() -> None:
    config = AdaCodeConfig.official("sr", 2)
    # one seam per axis on a 480 px image, eight on a 2000 px one: the same tiles and overlap
    # predict fewer dB on the larger image, so its default overlap is at least as large
    _, small_overlap, _, small = grid_for(config, 480, 240)
    _, large_overlap, _, _ = grid_for(config, 2000, 240)
    assert large_overlap >= small_overlap
    padded = padded_size(2000, config.pad_multiple)
    _, large = overlap.core_prediction(config, (padded, padded), (2000, 2000), 240,
                                       small_overlap)
    assert large < small


def test_tiles_smaller_than_the_profile_always_get_the_notice() -> None:
    # measured: 20.2 dB for 32 px tiles with 16 px overlap, sr-x4, 48 px photo
    config = AdaCodeConfig.official("sr", 4)
    [notice] = overlap.seam_notices(config, Plan(32, overlap=16), (64, 64), (48, 48))
    assert "smaller than the 128 px the seam profile covers" in notice
    assert "or more keeps it" in notice


def seam_notices(notices: list[str]) -> list[str]:
    return [text for text in notices if "expected to show seams" in text]


@pytest.fixture(scope="module")
def whole_and_tiled() -> dict[str, tuple[np.ndarray, list[str]]]:
    """A 192 x 384 photo (float, so no rounding hides the seams) restored whole, and with
    `--tile 192` at the default overlap and with none (two tiles that just touch)."""
    image = photo_like(192, 384).astype(np.float32) / 255
    results = {}
    for name, tile_overlap, whole_latent in (
        ("whole", None, True), ("default", None, True), ("none", 0, True),
        ("default, Swin per tile", None, False), ("none, Swin per tile", 0, False),
    ):
        restorer = tiny_restorer(tile=0 if name == "whole" else 192, tile_overlap=tile_overlap,
                                 statistics="exact", precision="fp32", whole_latent=whole_latent)
        result = restorer.restore(image)
        results[name] = (result.image, result.notices)
    return results


def test_too_small_overlap_gets_one_notice_whose_overlap_removes_it(whole_and_tiled) -> None:
    [notice] = seam_notices(whole_and_tiled["none"][1])
    match = re.search(r"(\d+) px tiles with 0 px overlap are expected to show seams .*"
                      r"--tile-overlap (\d+) keeps 40 dB", notice)
    assert match, notice
    assert seam_notices(whole_and_tiled["whole"][1]) == []
    assert seam_notices(whole_and_tiled["default"][1]) == []
    image = photo_like(192, 384).astype(np.float32) / 255
    advised = tiny_restorer(tile=192, tile_overlap=int(match[2]), statistics="exact",
                            precision="fp32").restore(image)
    assert seam_notices(advised.notices) == []
    whole = whole_and_tiled["whole"][0]
    assert psnr(advised.image, whole, peak=1.0) > psnr(whole_and_tiled["none"][0], whole,
                                                       peak=1.0) + 6


def test_default_overlap_is_closer_to_the_whole_image_than_none(whole_and_tiled) -> None:
    whole = whole_and_tiled["whole"][0]
    measured = {name: psnr(image, whole, peak=1.0) for name, (image, _) in whole_and_tiled.items()
                if name != "whole"}
    # measured (tiny model, seed 0): Swin steps over the whole latent 96.5 dB with the default
    # overlap (64 px), 19.4 dB with none (the gathered latent then holds pixels computed at a
    # tile edge); Swin steps per tile 55.2 and 31.1 dB
    assert measured["default"] >= 95.5
    assert measured["none"] <= 20.4
    assert measured["default, Swin per tile"] >= 54.2
    assert measured["none, Swin per tile"] <= 32.1
