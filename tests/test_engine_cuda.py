"""The engine on a CUDA device: official fp32 numerics, seamless tiles with statistics parked on
the device, fp16/bf16 fidelity, a real out-of-memory fallback, the memory model against the
allocator's peak, and determinism. Skipped where no CUDA device is present (CI); run on a GPU
machine with `python -m pytest -q -rA tests/test_engine_cuda.py`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors import safe_open

from adacode_cli.engine.restorer import RestoreOptions, Restorer
from adacode_cli.model.checkpoint import load_state_strict
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import AdaCodeNet, build_network
from engine_helpers import photo_like, psnr, tiny_restorer
from golden import deterministic_state_dict
from process_helpers import FIXTURES

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _golden_network(kind: str, config: AdaCodeConfig) -> tuple[AdaCodeNet, dict]:
    with safe_open(str(FIXTURES / "golden" / f"{kind}.safetensors"), framework="pt") as handle:
        golden = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    network = build_network(config)
    shapes = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    load_state_strict(network, deterministic_state_dict(shapes))
    return network.eval(), golden


@pytest.mark.parametrize(("kind", "task", "scale"), [("sr-x4", "sr", 4), ("inpaint", "inpaint", 1)])
def test_fp32_on_cuda_gives_the_official_output(kind: str, task: str, scale: int) -> None:
    network, golden = _golden_network(kind, AdaCodeConfig.official(task, scale))  # type: ignore[arg-type]
    restorer = Restorer(network, RestoreOptions(device="cuda", precision="fp32", tile=0))
    image = golden["input"][0].permute(1, 2, 0).numpy()
    result = restorer.restore(image.astype(np.float32), with_weight_map=True)
    expected = golden["output"][0].clamp(0, 1).permute(1, 2, 0).numpy()
    difference = float(np.abs(result.image - expected).max())
    print(f"{kind}: max abs difference to the official fp32 output on CUDA {difference:.2e}")
    assert difference < 1e-4


@pytest.mark.parametrize(("precision", "allowed"), [("fp32", False), ("tf32", True)])
def test_tf32_is_set_only_while_a_restore_runs(precision: str, allowed: bool) -> None:
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    seen = []
    restorer = tiny_restorer("sr", 2, device="cuda", precision=precision, tile=0)
    restorer.network.out_conv.register_forward_pre_hook(
        lambda module, args: seen.append(
            (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        )
    )
    restorer.restore(photo_like(40, 40))
    assert seen and set(seen) == {(allowed, allowed)}  # memory calibration runs it too
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


def test_cuda_matches_cpu_and_tiles_agree_with_the_whole_image() -> None:
    image = photo_like(150, 150)
    cpu = tiny_restorer("sr", 2, tile=0, precision="fp32").restore(image).image
    whole = tiny_restorer("sr", 2, device="cuda", tile=0, precision="fp32").restore(image).image
    tiled = tiny_restorer("sr", 2, device="cuda", tile=128, precision="fp32").restore(image)
    covering = tiny_restorer("sr", 2, device="cuda", tile=512, precision="fp32").restore(image)
    print(f"cuda vs cpu {psnr(whole, cpu):.1f} dB, tiled vs whole {psnr(tiled.image, whole):.1f}")
    assert psnr(whole, cpu) > 55
    assert tiled.tiles == 4 and psnr(tiled.image, whole) > 40
    assert np.array_equal(covering.image, whole)


@pytest.mark.parametrize(
    ("precision", "floor_db"), [("auto", 33.0), ("fp16", 33.0), ("bf16", 28.0)]
)
def test_reduced_precision_on_cuda_stays_close_to_fp32(precision: str, floor_db: float) -> None:
    image = photo_like(96, 96)
    reference = tiny_restorer("sr", 2, device="cuda", precision="fp32").restore(image).image
    reduced = tiny_restorer("sr", 2, device="cuda", precision=precision)
    assert reduced.precision == ("fp16" if precision == "auto" else precision)
    quality = psnr(reduced.restore(image).image, reference)
    print(f"{precision}: {quality:.1f} dB against fp32")
    assert quality > floor_db


def test_a_real_out_of_memory_error_halves_the_tile() -> None:
    torch.manual_seed(0)
    network = build_network(AdaCodeConfig.official("sr", 4)).eval()
    restorer = Restorer(network, RestoreOptions(device="cuda", precision="fp16", tile=0))
    image = photo_like(640, 640)
    torch.cuda.empty_cache()
    allowed = torch.cuda.memory_allocated() + 3 * 2**30
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(allowed / total)
    try:
        result = restorer.restore(image)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    print(result.notices)
    assert result.image.shape == (2560, 2560, 3)
    assert any(n.startswith("out of memory with the whole image") for n in result.notices)


@pytest.mark.parametrize("limit_gib", [1, 3])
def test_auto_tiles_keep_the_device_peak_under_the_memory_limit(limit_gib: int) -> None:
    torch.manual_seed(0)
    network = build_network(AdaCodeConfig.official("sr", 2)).eval()
    limit = limit_gib * 2**30
    restorer = Restorer(network, RestoreOptions(device="cuda", precision="fp16",
                                                memory_limit=limit))
    image = photo_like(1200, 1000)
    restorer.restore(photo_like(64, 64))
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    result = restorer.restore(image)
    peak = torch.cuda.max_memory_allocated()  # the weights included, as the limit means
    plan = restorer.plan(1200, 1000)
    print(f"limit {limit_gib} GiB: {plan}, {result.tiles} tiles, peak {peak / 2**30:.2f} GiB, "
          f"measured cost {restorer._memory_profile()}")
    assert result.tiles > 1
    assert peak < limit
    whole = Restorer(network, RestoreOptions(device="cuda", precision="fp16", tile=0))
    seams = psnr(result.image, whole.restore(image).image)
    print(f"limit {limit_gib} GiB: {seams:.1f} dB against the whole image")
    assert seams > 35


def test_same_input_same_bytes_on_cuda() -> None:
    image = photo_like(200, 180)
    options = {"device": "cuda", "tile": 96, "tile_overlap": 32, "batch_size": 3}
    first = tiny_restorer("sr", 2, **options).restore(image).image
    second = tiny_restorer("sr", 2, **options).restore(image).image
    assert first.tobytes() == second.tobytes()
