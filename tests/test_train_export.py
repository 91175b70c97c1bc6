"""`--official-keys` exports carry exactly the official state-dict layout."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import build_network
from adacode_cli.train.export import official_state

LAYOUT = Path(__file__).parent / "fixtures" / "official_layout.json.gz"


@pytest.mark.parametrize(
    ("name", "task", "scale"),
    [("recon", "recon", 1), ("sr-x2", "sr", 2), ("sr-x4", "sr", 4), ("inpaint", "inpaint", 1)],
)
def test_official_keys_match_the_released_checkpoints(name: str, task: str, scale: int) -> None:
    official = json.loads(gzip.decompress(LAYOUT.read_bytes()))["models"][name]
    batch = official["contrast_cri.negatives_mask"][0] // 2  # the batch it was trained with
    network = build_network(AdaCodeConfig.official(task, scale))  # type: ignore[arg-type]
    exported = official_state(network, network.state_dict(), batch)
    assert {k: list(v.shape) for k, v in exported.items()} == official
