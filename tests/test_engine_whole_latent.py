"""Tiles with exact statistics run the Swin steps once over the whole latent: their output is the
whole image's, in batches as one by one, in memory as spilled; without room for it (or without
exact statistics) tiles run their Swin steps themselves, with the overlap their reach needs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from adacode_cli.engine import overlap
from adacode_cli.engine.restorer import RestoreInterrupted
from adacode_cli.model.padding import padded_size
from adacode_cli.model.swin import SwinBlock
from engine_helpers import photo_like, psnr, tiny_restorer


@pytest.mark.parametrize(("task", "scale"), [("sr", 2), ("sr", 4), ("recon", 1), ("inpaint", 1)])
def test_tiles_with_the_whole_latent_give_the_whole_image(task: str, scale: int) -> None:
    image = photo_like(192, 384).astype(np.float32) / 255
    whole = tiny_restorer(task, scale, tile=0, precision="fp32").restore(image,
                                                                         with_weight_map=True)
    tiled_restorer = tiny_restorer(task, scale, tile=192, precision="fp32")
    plan = tiled_restorer.plan(192, 384)
    assert plan.tile is not None and plan.whole_latent
    tiled = tiled_restorer.restore(image, with_weight_map=True)
    # measured (tiny models, seed 0, default overlap): 96.5 dB at x2 (per-tile Swin steps:
    # 55.2 dB), 82.9 dB at x4, where the whole image in channels-last against the plain layout
    # already differs as much, 94 dB for recon and inpaint; tiles on the latent grid (8 px)
    assert tiled.tiles > 1 and psnr(tiled.image, whole.image, peak=1.0) >= 80
    assert plan.tile % tiled_restorer.config.latent_factor == 0
    assert np.abs(tiled.weight_map - whole.weight_map).max() <= 1e-4


def test_batches_of_tiles_gather_the_latent_as_single_tiles_do() -> None:
    image = photo_like(200, 300)
    single = tiny_restorer("sr", 2, tile=96, batch_size=1).restore(image, with_weight_map=True)
    batched = tiny_restorer("sr", 2, tile=96, batch_size=3).restore(image, with_weight_map=True)
    assert single.tiles == batched.tiles == 12  # 3 x 4: batches of 3 tiles
    assert np.abs(single.image.astype(int) - batched.image).max() <= 1
    assert np.allclose(single.weight_map, batched.weight_map, atol=1e-5)


def test_without_room_for_the_whole_latent_tiles_run_their_swin_steps_with_more_overlap() -> None:
    restorer = tiny_restorer("sr", 2, tile=240, memory_limit=2**34)
    config = restorer.config
    padded = (padded_size(480, config.pad_multiple),) * 2
    roomy = restorer.plan(480, 480)
    assert roomy.whole_latent
    assert roomy.overlap == overlap.image_overlap(config, padded, (480, 480), 240, True)
    restorer._profile = replace(restorer._memory_profile(), whole=1e9)  # bytes per pixel
    short = restorer.plan(480, 480)
    assert not short.whole_latent
    assert short.overlap == overlap.image_overlap(config, padded, (480, 480), 240, False)
    # the Swin steps' reach needs more overlap than the convolutions' (96 against 64 px here)
    assert short.overlap > roomy.overlap


@pytest.mark.parametrize("statistics", ["estimate", "tile"])
def test_without_exact_statistics_tiles_run_their_swin_steps(statistics: str) -> None:
    restorer = tiny_restorer("sr", 2, tile=96, statistics=statistics)
    config = restorer.config
    plan = restorer.plan(200, 300)
    assert plan.tile is not None and not plan.whole_latent
    if statistics == "estimate":
        padded = padded_size(200, config.pad_multiple), padded_size(300, config.pad_multiple)
        assert plan.overlap == overlap.image_overlap(config, padded, (200, 300), 96, False)


def test_a_stop_during_the_whole_latent_step_ends_it_before_the_next_swin_block() -> None:
    restorer = tiny_restorer("sr", 2, tile=96)
    assert restorer.plan(200, 300).whole_latent
    started: list[tuple[int, ...]] = []
    for module in restorer.network.modules():
        if isinstance(module, SwinBlock):
            module.register_forward_pre_hook(
                lambda module, args: started.append(tuple(args[0].shape)))
    with pytest.raises(RestoreInterrupted):
        restorer.restore(photo_like(200, 300), should_stop=lambda: bool(started))
    assert len(started) == 1


def test_an_overlap_or_a_batch_beyond_the_image_or_the_memory_changes_nothing() -> None:
    """`--tile-overlap 1000000` on a small image is the image, not terabytes of tiles, and a
    requested batch beyond what fits is what fits (video frames would all be decoded first)."""
    image = photo_like(40, 32)
    huge = tiny_restorer("sr", 2, tile=16, tile_overlap=1_000_000)
    estimate = huge.memory_estimate(40, 32)
    assert estimate.fits and estimate.needed < 2**30
    assert huge.plan(40, 32).tile is None or huge.plan(40, 32).overlap <= 64
    assert huge.restore(image).image.shape == (80, 64, 3)
    many = tiny_restorer("sr", 2, tile=0, batch_size=1_000_000, memory_limit=2**30)
    assert 1 <= many.frames_per_batch(120, 160) < 1000
