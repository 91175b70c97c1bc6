"""`Restorer.restore_batch`: whole frames of one size in one network call, equal to restoring
them one by one; tiled plans run image by image; out of memory, the batch is halved."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adacode_cli.engine.restorer import InsufficientMemoryError, RestoreInterrupted, Restorer
from engine_helpers import photo_like, tiny_restorer


def frames(count: int, height: int = 40, width: int = 56) -> list[np.ndarray]:
    return [photo_like(height, width, seed=seed) for seed in range(count)]


def batch_sizes(restorer: Restorer) -> list[int]:
    """The batch dimension of every input that reaches the network's first convolution."""
    seen: list[int] = []
    restorer.network.multiscale_encoder.in_conv.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].shape[0])
    )
    return seen


@pytest.mark.parametrize("task", ["sr", "inpaint"])
def test_a_batch_of_frames_equals_restoring_them_one_by_one(task: str) -> None:
    images = frames(4)
    single = tiny_restorer(task, 2, tile=0)
    one_by_one = [single.restore(image, with_weight_map=True) for image in images]
    batched_restorer = tiny_restorer(task, 2, tile=0, batch_size=4)
    seen = batch_sizes(batched_restorer)
    batched = batched_restorer.restore_batch(images, with_weight_map=True)
    assert seen == [4]
    image_diff = max(int(np.abs(b.image.astype(int) - o.image.astype(int)).max())
                     for b, o in zip(batched, one_by_one, strict=True))
    weight_diff = max(float(np.abs(b.weight_map - o.weight_map).max())
                      for b, o in zip(batched, one_by_one, strict=True))
    print(f"{task}: batch of 4 vs one by one: max {image_diff} uint8 levels, "
          f"weight map max {weight_diff:.2e}")
    assert image_diff <= 1 and weight_diff < 1e-4
    scale = batched_restorer.config.scale
    assert [b.image.shape for b in batched] == [(40 * scale, 56 * scale, 3)] * 4
    assert all(b.tiles == 1 and b.seconds > 0 for b in batched)


def test_frames_per_batch_follows_the_batch_option_and_the_plan() -> None:
    assert tiny_restorer("sr", 2, tile=0).frames_per_batch(40, 56) == 1  # automatic on the CPU
    assert tiny_restorer("sr", 2, tile=0, batch_size=3).frames_per_batch(40, 56) == 3
    tiled = tiny_restorer("sr", 2, tile=64, tile_overlap=32, batch_size=3)
    # --tile 64 owns 64 px: 2 x 2 tiles on 100 px (128 padded), each 80 px with the overlap
    # (aligned to the latent grid: the Swin steps run over the whole latent)
    assert tiled.plan(100, 100).tile == 80 and tiled.frames_per_batch(100, 100) == 1


def test_more_frames_than_a_batch_run_in_batches_in_order() -> None:
    images = frames(5)
    restorer = tiny_restorer("sr", 2, tile=0, batch_size=2)
    seen = batch_sizes(restorer)
    batched = restorer.restore_batch(images)
    assert seen == [2, 2, 1]
    single = tiny_restorer("sr", 2, tile=0)
    for image, result in zip(images, batched, strict=True):
        assert np.abs(single.restore(image).image.astype(int) - result.image).max() <= 1


def test_tiled_plans_run_image_by_image() -> None:
    images = frames(2, 100, 100)
    restorer = tiny_restorer("sr", 2, tile=64, tile_overlap=32, statistics="tile")
    batched = restorer.restore_batch(images)
    for image, result in zip(images, batched, strict=True):
        assert result.tiles == 4  # ceil(100 / 64) ** 2, as the official tiling counts
        assert np.array_equal(result.image, restorer.restore(image).image)


def test_out_of_memory_halves_the_batch_then_tiles_a_single_frame() -> None:
    images = frames(4)
    restorer = tiny_restorer("sr", 2, tile=0, batch_size=4)
    seen: list[int] = []

    def fail_on_large_batches(module: torch.nn.Module, args: tuple[torch.Tensor]) -> None:
        seen.append(args[0].shape[0])
        if args[0].shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")

    restorer.network.multiscale_encoder.in_conv.register_forward_pre_hook(fail_on_large_batches)
    batched = restorer.restore_batch(images)
    assert seen == [4, 2, 2]
    assert batched[0].notices == ["out of memory with 4 images per batch; finished with 2"]
    single = tiny_restorer("sr", 2, tile=0)
    for image, result in zip(images, batched, strict=True):
        assert np.abs(single.restore(image).image.astype(int) - result.image).max() <= 1


def test_when_no_batch_fits_each_frame_falls_back_to_tiles() -> None:
    images = frames(2, 100, 100)
    restorer = tiny_restorer("sr", 2, tile=0, tile_overlap=32, statistics="tile", batch_size=2)
    seen: list[tuple[int, int]] = []

    def fail_on_large_inputs(module: torch.nn.Module, args: tuple[torch.Tensor]) -> None:
        seen.append((args[0].shape[0], args[0].shape[-1]))
        if args[0].shape[0] > 1 or args[0].shape[-1] > 64:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")

    restorer.network.multiscale_encoder.in_conv.register_forward_pre_hook(fail_on_large_inputs)
    batched = restorer.restore_batch(images)
    assert seen[:2] == [(2, 128), (1, 128)] and set(seen[2:]) == {(1, 128), (1, 64)}
    assert [result.tiles for result in batched] == [9, 9]
    assert batched[1].notices[:2] == [
        "out of memory with 2 images per batch; finished with 1",
        "out of memory with the whole image; finished with 64 px tiles",
    ]


def test_a_batch_checks_the_stop_request_and_the_memory() -> None:
    restorer = tiny_restorer("sr", 2, tile=0, batch_size=3)
    with pytest.raises(RestoreInterrupted):
        restorer.restore_batch(frames(3), should_stop=lambda: True)
    restorer.options.memory_limit = 1
    with pytest.raises(InsufficientMemoryError):
        restorer.restore_batch(frames(3))
    assert restorer.restore_batch([]) == []


def test_a_batch_takes_images_of_one_shape_and_dtype() -> None:
    restorer = tiny_restorer("sr", 2, tile=0)
    with pytest.raises(ValueError, match="one shape and dtype"):
        restorer.restore_batch([photo_like(40, 40), photo_like(40, 48)])
