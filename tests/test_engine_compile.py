"""`--compile`: the compiled whole-image path equals eager, and a second process reuses the
compiled artefacts from the cache instead of compiling again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from adacode_cli.engine.compile import compile_cache_dir, wants_compile
from adacode_cli.errors import AdaCodeError

# One process of a user's run: a tiny x2 model (one unshifted Swin block keeps compiling short),
# the whole image, fp32; prints inductor's cache counters.
CHILD = """
import dataclasses, json, sys
import numpy as np, torch
from torch._dynamo.utils import counters
from adacode_cli.engine.restorer import RestoreOptions, Restorer
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import build_network

mode, output = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
config = dataclasses.replace(AdaCodeConfig.tiny("sr", 2, codebooks=1), swin_depth=1)
restorer = Restorer(build_network(config), RestoreOptions(device="cpu", precision="fp32",
                                                          tile=0, compile=mode))
image = np.random.default_rng(0).random((32, 32, 3), dtype=np.float32)
np.save(output, restorer.restore(image).image)
print(json.dumps({key: counters["inductor"][key]
                  for key in ("fxgraph_cache_hit", "fxgraph_cache_miss")}))
"""


def run_child(mode: str, home: Path, output: Path) -> dict[str, int]:
    environment = {**os.environ, "ADACODE_HOME": str(home)}
    environment.pop("TORCHINDUCTOR_CACHE_DIR", None)
    completed = subprocess.run([sys.executable, "-c", CHILD, mode, str(output)],
                               capture_output=True, text=True, env=environment, timeout=1500,
                               check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def artefacts(home: Path) -> set[Path]:
    return {path.relative_to(home) for path in home.rglob("*") if path.is_file()
            and "locks" not in path.parts}


@pytest.mark.slow
def test_compiled_output_equals_eager_and_the_second_process_reuses_the_cache(tmp_path) -> None:
    home = tmp_path / "home"
    eager = run_child("off", home, tmp_path / "eager.npy")
    assert eager == {"fxgraph_cache_hit": 0, "fxgraph_cache_miss": 0}  # nothing compiled
    assert not (home / "compiled").exists()

    first = run_child("on", home, tmp_path / "first.npy")
    assert first["fxgraph_cache_miss"] >= 1 and first["fxgraph_cache_hit"] == 0
    created = artefacts(home)
    assert any(path.parts[0] == "compiled" for path in created)

    second = run_child("on", home, tmp_path / "second.npy")
    assert second["fxgraph_cache_miss"] == 0
    assert second["fxgraph_cache_hit"] == first["fxgraph_cache_miss"]
    assert artefacts(home) == created  # the second run compiled nothing new

    reference = np.load(tmp_path / "eager.npy")
    for name in ("first.npy", "second.npy"):
        compiled = np.load(tmp_path / name)
        assert compiled.dtype == np.float32 and compiled.shape == reference.shape
        np.testing.assert_allclose(compiled, reference, rtol=0, atol=1e-4)


def test_auto_compiles_only_where_it_measured_faster(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("ADACODE_HOME", str(tmp_path))
    cpu = torch.device("cpu")
    assert not wants_compile("auto", cpu, "fp32")  # measured slower end to end on the CPU
    assert not wants_compile("auto", cpu, "bf16")
    assert wants_compile("on", cpu, "fp32") and not wants_compile("off", cpu, "fp32")
    assert compile_cache_dir() == tmp_path / "compiled" / f"torch-{torch.__version__}"
    with pytest.raises(AdaCodeError, match="unknown compile mode"):
        wants_compile("always", cpu, "fp32")
