"""Numerical parity with the official AdaCode code on the full-size released architectures.

The golden outputs in tests/fixtures/golden/ were produced by the official networks (see the
README there) with the deterministic weights of tests/golden.py. Our network, given the same
weights and input, must agree within 1e-4 (fp32), weight map and code indices included.
"""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from adacode_cli.model.checkpoint import load_network, load_state_strict
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import AdaCodeNet, build_network
from adacode_cli.model.padding import flip_pad, restore_whole
from golden import deterministic_state_dict
from process_helpers import FIXTURES

GOLDEN = FIXTURES / "golden"
KINDS = {
    "sr-x2": AdaCodeConfig.official("sr", 2),
    "sr-x4": AdaCodeConfig.official("sr", 4),
    "inpaint": AdaCodeConfig.official("inpaint"),
    "recon": AdaCodeConfig.official("recon"),
}
TOLERANCE = 1e-4


def _golden(kind: str) -> dict[str, torch.Tensor]:
    with safe_open(str(GOLDEN / f"{kind}.safetensors"), framework="pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118


def _network(kind: str) -> AdaCodeNet:
    network = build_network(KINDS[kind])
    shapes = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    load_state_strict(network, deterministic_state_dict(shapes))
    return network.eval()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_forward_matches_official(kind: str) -> None:
    golden = _golden(kind)
    network = _network(kind)
    with torch.inference_mode():
        image, _ = restore_whole(network, golden["input"])
        full = network(flip_pad(golden["input"], network.config.pad_multiple))
    assert image.shape == golden["output"].shape
    assert (image - golden["output"]).abs().max().item() <= TOLERANCE
    assert (full.weight - golden["weight"]).abs().max().item() <= TOLERANCE
    assert torch.equal(torch.stack(full.indices).squeeze(2), golden["indices"])


@pytest.mark.parametrize("kind", ["sr-x4", "inpaint"])
def test_official_file_round_trip_matches_official(kind: str, tmp_path) -> None:
    """The same weights written as an official release file load strictly and give the golden."""
    golden = _golden(kind)
    network = _network(kind)
    state = dict(network.state_dict())
    state["contrast_cri.negatives_mask"] = torch.ones(16, 16)  # stray keys as in release files
    path = tmp_path / "release.pth"
    torch.save({"params": state}, path)
    with torch.inference_mode():
        image, _ = restore_whole(load_network(path), golden["input"])
    assert (image - golden["output"]).abs().max().item() <= TOLERANCE
