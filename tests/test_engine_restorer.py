"""The restorer: official whole-image numerics, seamless tiles, memory-driven tiling, OOM
fallback, precisions, determinism, dtypes, progress and interruption."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adacode_cli.engine.canvas import quantise
from adacode_cli.engine.restorer import RestoreInterrupted
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import build_network
from adacode_cli.model.padding import restore_whole
from engine_helpers import photo_like, psnr, tiny_restorer


def test_whole_image_is_the_official_test_path() -> None:
    image = photo_like(37, 53)
    result = tiny_restorer("sr", 4, tile=0, channels_last=False).restore(
        image, with_weight_map=True
    )
    torch.manual_seed(0)
    network = build_network(AdaCodeConfig.tiny("sr", 4)).eval()
    x = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float() / 255
    with torch.inference_mode():
        official, weight = restore_whole(network, x)
    assert result.image.shape == (148, 212, 3) and result.image.dtype == np.uint8
    assert np.array_equal(result.image, quantise(official[0], np.dtype(np.uint8)))
    assert np.array_equal(result.weight_map, weight[0].numpy())
    assert result.tiles == 1
    default_layout = tiny_restorer("sr", 4, tile=0).restore(image).image  # NHWC on the CPU
    assert psnr(default_layout, result.image) > 60


def test_one_tile_covering_the_image_gives_the_whole_image_result() -> None:
    image = photo_like(60, 70)
    whole = tiny_restorer("sr", 2, tile=0).restore(image, with_weight_map=True)
    covering = tiny_restorer("sr", 2, tile=512).restore(image, with_weight_map=True)
    assert covering.tiles == 1
    assert np.array_equal(covering.image, whole.image)
    assert np.array_equal(covering.weight_map, whole.weight_map)


def test_global_statistics_make_tiles_agree_far_better_than_per_tile_norms() -> None:
    image = photo_like(150, 150)
    whole = tiny_restorer("sr", 2, tile=0).restore(image).image
    exact = tiny_restorer("sr", 2, tile=128).restore(image, with_weight_map=True)
    per_tile = tiny_restorer("sr", 2, tile=128, statistics="tile").restore(image)
    assert exact.tiles == per_tile.tiles == 4
    assert exact.weight_map is not None and exact.weight_map.shape == (2, 38, 38)
    assert psnr(exact.image, whole) > 40  # measured 48.4 dB
    assert psnr(per_tile.image, whole) < 25  # measured 17.5 dB


def test_auto_tile_size_shrinks_with_the_memory_limit() -> None:
    restorer = tiny_restorer("sr", 4)
    sides = []
    for limit in (2**34, 2**31, 2**29, 2**27):
        restorer.options.memory_limit = limit
        sides.append(restorer.plan(600, 600).tile or 10**9)
    assert sides[0] == 10**9  # whole image
    assert sides == sorted(sides, reverse=True) and sides[-1] < sides[1]


def test_an_out_of_memory_error_halves_the_tile_and_retries_once_noticed() -> None:
    restorer = tiny_restorer("sr", 2, tile=0, tile_overlap=32, statistics="tile")
    seen = []

    def fail_on_large_inputs(module: torch.nn.Module, args: tuple[torch.Tensor]) -> None:
        seen.append(args[0].shape[-1])
        if args[0].shape[-1] > 64:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")

    restorer.network.multiscale_encoder.in_conv.register_forward_pre_hook(fail_on_large_inputs)
    result = restorer.restore(photo_like(100, 100))
    assert result.image.shape == (200, 200, 3) and result.tiles == 9
    assert seen[0] == 128 and set(seen[1:]) == {64}
    assert result.notices == ["out of memory with the whole image; finished with 64 px tiles"]


def test_an_unrelated_runtime_error_is_not_taken_for_out_of_memory() -> None:
    restorer = tiny_restorer("sr", 2, tile=0)

    def broken(module: torch.nn.Module, args: tuple[torch.Tensor]) -> None:
        raise RuntimeError("shape mismatch")

    restorer.network.out_conv.register_forward_pre_hook(broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        restorer.restore(photo_like(40, 40))


@pytest.mark.parametrize(("precision", "floor_db"), [("bf16", 28.0), ("fp16", 33.0)])
def test_reduced_precision_runs_on_cpu_close_to_fp32(precision: str, floor_db: float) -> None:
    image = photo_like(48, 48)
    reference = tiny_restorer("sr", 2).restore(image).image
    reduced = tiny_restorer("sr", 2, precision=precision)
    assert reduced.precision == precision
    assert psnr(reduced.restore(image).image, reference) > floor_db


def test_tf32_is_fp32_on_the_cpu() -> None:
    image = photo_like(40, 40)
    tf32 = tiny_restorer("sr", 2, precision="tf32")
    assert tf32.precision == "tf32" and tf32.dtype == torch.float32
    assert np.array_equal(tf32.restore(image).image, tiny_restorer("sr", 2).restore(image).image)


def test_same_input_same_bytes() -> None:
    image = photo_like(100, 90)
    first = tiny_restorer("sr", 2, tile=96, tile_overlap=32).restore(image).image
    second = tiny_restorer("sr", 2, tile=96, tile_overlap=32).restore(image).image
    assert first.tobytes() == second.tobytes()


def test_uint16_and_float_inputs_keep_their_dtype_and_precision() -> None:
    restorer = tiny_restorer("sr", 2)
    image8 = photo_like(40, 40)
    image16 = image8.astype(np.uint16) * 257
    out8 = restorer.restore(image8).image
    out16 = restorer.restore(image16).image
    out32 = restorer.restore(image8.astype(np.float32) / 255).image
    assert out16.dtype == np.uint16 and out32.dtype == np.float32
    assert np.abs(out16 / 65535 - out32).max() <= 0.5 / 65535 + 1e-6
    assert len(np.unique(out16)) > len(np.unique(out8))
    assert out32.min() >= 0 and out32.max() <= 1


def test_progress_counts_tiles_and_should_stop_interrupts_after_the_batch() -> None:
    image = photo_like(128, 128)
    calls: list[tuple[int, int]] = []
    restorer = tiny_restorer("sr", 2, tile=96, tile_overlap=32, statistics="tile")
    restorer.restore(image, on_progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (4, 4) and calls == sorted(calls)

    batches = []
    with pytest.raises(RestoreInterrupted):
        restorer.restore(image, on_progress=lambda done, total: batches.append(done),
                         should_stop=lambda: len(batches) >= 2)
    assert batches == [0, 1] or batches == [1, 2]


def test_unknown_modes_are_user_errors() -> None:
    from adacode_cli.errors import AdaCodeError

    with pytest.raises(AdaCodeError, match="precision"):
        tiny_restorer(precision="fp8")
    with pytest.raises(AdaCodeError, match="device"):
        tiny_restorer(device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(AdaCodeError, match="CUDA is not available"):
            tiny_restorer(device="cuda:0")


def test_from_file_loads_an_official_checkpoint_once_for_many_images(make_official_pth) -> None:
    from adacode_cli.engine.restorer import RestoreOptions, Restorer

    restorer = Restorer.from_file(make_official_pth("sr", 4), RestoreOptions(device="cpu"))
    assert (restorer.config.scale, restorer.device.type, restorer.precision) == (4, "cpu", "fp32")
    shapes = [restorer.restore(photo_like(size, size)).image.shape for size in (20, 33)]
    assert shapes == [(80, 80, 3), (132, 132, 3)]
