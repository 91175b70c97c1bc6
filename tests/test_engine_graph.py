"""The engine's step graph computes exactly what the network's own forward computes."""

from __future__ import annotations

import pytest
import torch

from adacode_cli.engine.graph import network_steps, run_steps, segments
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.layers import GroupNorm
from adacode_cli.model.networks import build_network


@pytest.mark.parametrize(
    ("task", "scale"), [("sr", 2), ("sr", 4), ("inpaint", 1), ("recon", 1), ("vqgan", 1)]
)
def test_steps_equal_forward_bit_for_bit(task: str, scale: int) -> None:
    torch.manual_seed(0)
    network = build_network(AdaCodeConfig.tiny(task, scale)).eval()  # type: ignore[arg-type]
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        expected = network(x)
        regs = {"h": x}
        run_steps(network_steps(network), regs)
    assert torch.equal(regs["h"], expected.image)
    if expected.weight is not None:
        assert torch.equal(regs["weight"], expected.weight)
    assert set(regs) == ({"h"} if expected.weight is None else {"h", "weight"})


def test_only_the_swin_stacks_reach_over_the_whole_latent() -> None:
    """The weight predictor gives `weight` as a step of its own; looking the latent up in the
    codebooks and fusing them (one set of temporaries per codebook) runs per tile."""
    config = AdaCodeConfig.tiny("sr", 4)
    steps = network_steps(build_network(config))
    swin = f"encoder.{config.input_levels}"  # after the down blocks
    assert [step.name for step in steps if step.whole] == [swin, "codebook weights"]
    quantize = next(step for step in steps if step.name == "quantize")
    assert quantize.reads == ("feature0", "weight") and quantize.writes == ("h",)


def test_every_segment_after_the_first_starts_with_one_norm_and_covers_all_norms() -> None:
    network = build_network(AdaCodeConfig.tiny("sr", 4))
    cut = segments(network_steps(network))
    norms = [m for m in network.modules() if isinstance(m, GroupNorm)]
    starts = [segment[0].norm for segment in cut[1:]]
    assert all(norm is not None for norm in starts)
    assert sorted(map(id, starts)) == sorted(map(id, norms))
    assert all(step.norm is None for segment in cut for step in segment[1:])
