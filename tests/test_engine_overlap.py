"""Default tile overlap from the measured seam profile, and the notice for seams that will show."""

from __future__ import annotations

import numpy as np
import pytest

from adacode_cli.engine import overlap
from adacode_cli.engine.planner import Plan
from adacode_cli.model.config import AdaCodeConfig
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
        assert overlap.expected_psnr(CONFIG, 256, value, profile) >= aim
        if value > overlap.MIN_OVERLAP_STEPS * align:  # the smallest overlap that does
            assert overlap.expected_psnr(CONFIG, 256, value - align, profile) < aim


def test_official_models_keep_the_target_or_get_half_the_tile_and_a_notice() -> None:
    for task, scale in (("sr", 2), ("sr", 4), ("inpaint", 1), ("recon", 1)):
        config = AdaCodeConfig.official(task, scale)  # type: ignore[arg-type]
        assert overlap.profile_for(config) is not None, overlap.model_key(config)
        for tile in range(192, 1025, 64):
            chosen = overlap.default_overlap(config, tile)
            expected = overlap.expected_psnr(config, tile, chosen)
            half = tile // 2 // config.pad_multiple * config.pad_multiple
            assert expected >= overlap.TARGET_DB or chosen == half
            plan = Plan(tile, 1, 0, None, False)
            narrow = chosen < overlap.MIN_OVERLAP_STEPS * config.pad_multiple
            assert len(overlap.seam_notices(config, plan, chosen)) == (expected < 40 or narrow)
        automatic = overlap.default_overlap(config, None)  # tiles >= max(192, 4 x overlap)
        side = max(overlap.GUARANTEED_TILE, 4 * automatic)
        assert (overlap.expected_psnr(config, side, automatic) >= overlap.TARGET_DB
                or automatic == overlap.MAX_AUTO_OVERLAP)


def test_tiles_smaller_than_the_profile_always_get_the_notice() -> None:
    # measured: 20.2 dB for 32 px tiles with 16 px overlap, sr-x4, 48 px photo
    config = AdaCodeConfig.official("sr", 4)
    [notice] = overlap.seam_notices(config, Plan(32, 1, 0, None, False), 16)
    assert "smaller than the 128 px the seam profile covers" in notice
    assert "--tile 128 or more" in notice


def seam_notices(notices: list[str]) -> list[str]:
    return [text for text in notices if "expected to show seams" in text]


@pytest.fixture(scope="module")
def whole_and_tiled() -> dict[str, tuple[np.ndarray, list[str]]]:
    """A 192 x 384 photo (float, so no rounding hides the seams) restored whole, and in 192 px
    tiles with the default overlap and with none (two tiles that just touch)."""
    image = photo_like(192, 384).astype(np.float32) / 255
    results = {}
    for name, tile_overlap in (("whole", None), ("default", None), ("none", 0)):
        restorer = tiny_restorer(tile=0 if name == "whole" else 192, tile_overlap=tile_overlap,
                                 statistics="exact", precision="fp32")
        result = restorer.restore(image)
        results[name] = (result.image, result.notices)
    return results


def test_too_small_overlap_gets_one_notice_with_the_overlap_to_use(whole_and_tiled) -> None:
    [notice] = seam_notices(whole_and_tiled["none"][1])
    assert "192 px tiles with 0 px overlap are expected to show seams" in notice
    assert f"--tile-overlap {overlap.default_overlap(CONFIG, 192)}" in notice
    assert seam_notices(whole_and_tiled["whole"][1]) == []
    chosen = overlap.default_overlap(CONFIG, 192)
    expected = overlap.expected_psnr(CONFIG, 192, chosen)
    assert len(seam_notices(whole_and_tiled["default"][1])) == (expected < overlap.TARGET_DB)


def test_default_overlap_is_closer_to_the_whole_image_than_none(whole_and_tiled) -> None:
    whole = whole_and_tiled["whole"][0]
    with_default = psnr(whole_and_tiled["default"][0], whole, peak=1.0)
    without = psnr(whole_and_tiled["none"][0], whole, peak=1.0)
    # measured (tiny model, seed 0): 54.3 dB with the default overlap, 41.8 dB with none
    assert with_default >= 53.3
    assert without <= 42.8
