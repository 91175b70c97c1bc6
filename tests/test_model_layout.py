"""Our modules produce exactly the official key layout, and the config is derived from it."""

from __future__ import annotations

import gzip
import json

import pytest
import torch

from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.detect import clean_official, infer_config
from adacode_cli.model.networks import build_network, count_parameters
from process_helpers import FIXTURES

LAYOUT = json.loads(gzip.decompress((FIXTURES / "official_layout.json.gz").read_bytes()))["models"]
KINDS = {
    "sr-x2": AdaCodeConfig.official("sr", 2),
    "sr-x4": AdaCodeConfig.official("sr", 4),
    "inpaint": AdaCodeConfig.official("inpaint"),
    "recon": AdaCodeConfig.official("recon"),
    "stage1-vqgan": AdaCodeConfig.official("vqgan"),
}


def official_state(kind: str) -> dict[str, torch.Tensor]:
    """Shape-only tensors (meta device) with the official names, strays and buffers included."""
    return {k: torch.empty(v, device="meta") for k, v in LAYOUT[kind].items()}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_state_dict_matches_official_layout(kind: str) -> None:
    with torch.device("meta"):
        ours = {k: list(v.shape) for k, v in build_network(KINDS[kind]).state_dict().items()}
    official = {
        k: v for k, v in LAYOUT[kind].items()
        if not k.endswith(("attn_mask", "relative_position_index"))
        and not k.startswith(("contrast_cri.", "vgg_feat_extractor."))
    }
    assert ours == official


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_config_is_derived_from_official_shapes(kind: str) -> None:
    config = infer_config(clean_official(official_state(kind), keep_semantic=True))
    assert config == KINDS[kind]


def test_official_parameter_counts() -> None:
    with torch.device("meta"):
        counts = {kind: count_parameters(build_network(c)) for kind, c in KINDS.items()}
    assert counts["sr-x4"] == 57_321_352
    assert counts["sr-x2"] == 59_972_616
    assert counts["inpaint"] == 60_634_696
    assert counts["recon"] == 35_438_088
