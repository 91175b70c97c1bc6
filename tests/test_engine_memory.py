"""Measured activation costs and the memory-driven plans built on them."""

from __future__ import annotations

import weakref

import torch

from adacode_cli.engine import memory
from adacode_cli.engine.graph import network_steps, run_steps, segments
from adacode_cli.engine.memory import host_available_memory, profile
from adacode_cli.engine.planner import Budget, PlanInputs, choose_plan
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import build_network
from adacode_cli.model.swin import chunk_tokens


def test_costs_are_measured_per_model_and_precision() -> None:
    x2 = profile(AdaCodeConfig.official("sr", 2), torch.float32)
    x4 = profile(AdaCodeConfig.official("sr", 4), torch.float32)
    x4_half = profile(AdaCodeConfig.official("sr", 4), torch.bfloat16)
    assert 0.45 < x4_half.stream / x4.stream < 0.55
    assert x4.stream > 3 * x2.stream  # four times the output pixels per input pixel
    assert max(x4.parked) < x4.stream  # parked registers are a fraction of a live pass
    # a 271 x 271 input at x4 (padded 272) grew the peak RSS of a whole-image run by 1.5 GB
    assert 1.5e9 < x4.stream_bytes(272 * 272) < 2.5e9


def test_exact_statistics_spill_to_disk_and_estimate_only_when_asked() -> None:
    config = AdaCodeConfig.official("sr", 4)
    costs = profile(config, torch.float32)
    segments = len(costs.parked) + 1

    def plan(budget: int, statistics: str = "auto"):
        inputs = PlanInputs(config, costs, (1040, 1040), Budget(budget, budget, True), 32, None,
                            statistics, torch.device("cpu"), segments, (1030, 1030))
        return choose_plan(inputs, None)

    roomy, tight, estimated = plan(20 * 2**30), plan(3 * 2**30), plan(3 * 2**30, "estimate")
    assert roomy.tile is not None and roomy.exact_segments == segments - 1
    assert roomy.estimate_scale is None and roomy.parking == "device"
    assert tight.exact_segments == segments - 1 and tight.parking == "disk"
    assert tight.spill_bytes >= costs.parked_bytes(1040 * 1040, segments - 1)
    assert estimated.tile is not None and estimated.tile < roomy.tile
    assert estimated.exact_segments < segments - 1 and estimated.estimate_scale is not None


def test_available_host_memory_is_plausible() -> None:
    assert 2**26 < host_available_memory() < 2**50



def test_one_meta_pass_counts_the_registers_a_real_run_parks(monkeypatch) -> None:
    """The profile's parked bytes per segment equal the registers a real CPU run of the same
    tile holds between segments, and the count builds and runs the network only once."""
    config = AdaCodeConfig.tiny("sr", 2)
    builds = []
    monkeypatch.setattr(memory, "build_network", lambda c: builds.append(c) or build_network(c))
    counted = memory.count_on_meta(config, torch.bfloat16)
    assert len(builds) == 1

    side = 4 * config.pad_multiple
    torch.manual_seed(0)
    network = build_network(config).eval()
    regs = {"h": torch.rand(1, 3, side, side)}
    real = []
    with torch.inference_mode():
        for segment in segments(network_steps(network))[:-1]:
            run_steps(segment, regs)
            storages = {v.untyped_storage().data_ptr(): v.numel() for v in regs.values()}
            real.append(sum(storages.values()) * torch.bfloat16.itemsize / side**2)
    assert counted.parked == tuple(real)


def test_the_whole_latent_steps_cost_a_few_latent_tensors() -> None:
    """Chunked Swin blocks and a per-tile codebook lookup: the costliest `whole` step of the
    official models holds a few latent-sized tensors (it held 16-22 before), plus a fixed part
    of tens of MB."""
    for task, scale in (("sr", 2), ("sr", 4), ("inpaint", 1)):
        config = AdaCodeConfig.official(task, scale)  # type: ignore[arg-type]
        costs = profile(config, torch.float32)
        latent = config.channels[0] * 4 / config.latent_factor**2  # bytes per input pixel
        assert 2.5 * latent < costs.whole < 5 * latent
        assert 2**20 < costs.whole_fixed < 2**27


def _real_whole_step_peak(network: torch.nn.Module, step, channels: int, latent: int) -> int:
    """Live bytes the dispatcher sees in a real CPU run of `step` on a square latent, inputs
    included."""
    regs = {name: torch.rand(1, channels, latent, latent) for name in step.reads}
    inputs = {t.untyped_storage()._cdata: t.untyped_storage().nbytes() for t in regs.values()}
    tracker = memory._LiveBytes([*network.parameters(), *network.buffers(), *regs.values()])
    with torch.inference_mode(), tracker:
        run_steps([step], regs)
    return sum(inputs.values()) + tracker.peak


def test_the_whole_latent_count_bounds_real_runs_at_every_size() -> None:
    """The fitted count (fixed + per pixel, without slack) against real CPU runs of each
    `whole` step on latents none of which was counted: below one chunk (the whole map at
    once) and of several chunks; its per-pixel part is the real growth."""
    config = AdaCodeConfig.tiny("sr", 2)
    costs = memory.count_on_meta(config, torch.float32)
    torch.manual_seed(0)
    network = build_network(config).eval()
    wholes = [step for step in network_steps(network) if step.whole]
    latents = (40, 160, 224)
    peaks = {latent: [_real_whole_step_peak(network, step, config.channels[0], latent)
                      for step in wholes] for latent in latents}
    for latent in latents:
        pixels = (latent * config.latent_factor) ** 2
        assert max(peaks[latent]) <= costs.whole * pixels + costs.whole_fixed
    growth = ((latents[2] ** 2 - latents[1] ** 2) * config.latent_factor**2)
    slopes = [(large - small) / growth for small, large in zip(peaks[160], peaks[224],
                                                               strict=True)]
    assert abs(max(slopes) - costs.whole) <= 0.05 * costs.whole


def test_accelerators_count_the_larger_swin_chunks_they_run() -> None:
    """A chunk costs kernel launches on an accelerator, so chunks are larger there: the count
    for a CUDA device holds the larger chunk's temporaries, per pixel the same."""
    config = AdaCodeConfig.official("sr", 2)
    cpu, cuda = (memory.count_on_meta(config, torch.float16, kind) for kind in ("cpu", "cuda"))
    assert chunk_tokens("cuda") == chunk_tokens("mps") == 16 * chunk_tokens("cpu")
    assert cuda.whole_fixed > 8 * cpu.whole_fixed
    assert abs(cuda.whole - cpu.whole) <= 0.05 * cpu.whole



def test_the_counter_holds_the_inputs_it_is_told_to_leave_out() -> None:
    """The counter knows storages by address; an input the caller drops would free its address
    for the next activation, which would then go uncounted (profiles were 12% low now and
    then). So it holds them while it counts."""
    source = torch.empty(1, 3, 64, 64, device="meta")
    alive = weakref.ref(source)
    tracker = memory._LiveBytes([source])
    del source
    assert alive() is not None
    with torch.inference_mode(), tracker:
        activation = torch.ones(1, 3, 64, 64, device="meta")
    assert tracker.peak == activation.untyped_storage().nbytes()
