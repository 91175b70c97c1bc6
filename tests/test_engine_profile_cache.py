"""The memory profile is measured once per model, precision, device type and torch version, and
kept in the cache root between processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from adacode_cli.engine import memory, profile_cache
from adacode_cli.model.config import AdaCodeConfig

# One process: count the meta-device measurements a restorer's first restores trigger.
CHILD = """
import json, sys
import numpy as np, torch
from adacode_cli.engine import memory
from adacode_cli.engine.restorer import RestoreOptions, Restorer
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import build_network

calls = []
count = memory.count_on_meta
memory.count_on_meta = lambda *args: calls.append(args) or count(*args)
torch.manual_seed(0)
restorer = Restorer(build_network(AdaCodeConfig.tiny("sr", 2)), RestoreOptions(device="cpu"))
image = np.full((40, 40, 3), 128, np.uint8)
restorer.restore(image)
restorer.restore(image)
print(json.dumps({"calls": len(calls), "profile": restorer._memory_profile().to_record()}))
"""


def _run_child(home: Path) -> dict:
    env = {**os.environ, "ADACODE_HOME": str(home)}
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                          text=True, check=True, timeout=300)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_second_process_reads_the_profile_the_first_one_measured(tmp_path: Path) -> None:
    first = _run_child(tmp_path / "home")
    stored = list((tmp_path / "home" / "profiles").glob("*.json"))
    second = _run_child(tmp_path / "home")
    assert first["calls"] == 1 and second["calls"] == 0
    assert second["profile"] == first["profile"] and len(stored) == 1
    assert not [p for p in stored[0].parent.iterdir() if p.name.startswith(".")]  # atomic


def test_the_key_separates_precision_device_and_configuration(tmp_path: Path,
                                                              monkeypatch) -> None:
    monkeypatch.setenv("ADACODE_HOME", str(tmp_path))
    config = AdaCodeConfig.tiny("sr", 2)
    keys = {
        profile_cache.profile_path(profile_cache.profile_key(c, dtype, device))
        for c in (config, AdaCodeConfig.tiny("sr", 4))
        for dtype in (torch.float32, torch.bfloat16)
        for device in ("cpu", "cuda")
    }
    assert len(keys) == 8 and all(path.parent == tmp_path / "profiles" for path in keys)


def test_a_damaged_profile_file_is_measured_again_and_replaced(tmp_path: Path,
                                                               monkeypatch) -> None:
    monkeypatch.setenv("ADACODE_HOME", str(tmp_path))
    config = AdaCodeConfig.tiny("inpaint", 1)
    path = profile_cache.profile_path(profile_cache.profile_key(config, torch.float32, "cpu"))
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    measured = memory.profile.__wrapped__(config, torch.float32, "cpu")
    assert measured.parked == memory.parked_registers(config, torch.float32)
    assert json.loads(path.read_text())["profile"] == measured.to_record()
