"""The memory profile is measured once per model, precision, device type and torch version, and
kept in the cache root between processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from adacode_cli.engine import memory, profile_cache, shipped_profiles
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


def _with_profile(record: dict, **changes: object) -> str:
    return json.dumps({**record, "profile": {**record["profile"], **changes}})


@pytest.mark.parametrize("damage", [
    "{not json", "[]", "null",
    # the right key, values a hand edit or a bad disk could leave: each must be measured again,
    # not crash every later run (a missing field) or plan with nonsense (a zero or NaN cost)
    "missing stream", "stream zero", "stream NaN", "parked text", "negative fixed",
])
def test_a_damaged_profile_file_is_measured_again_and_replaced(
    tmp_path: Path, monkeypatch, damage: str
) -> None:
    monkeypatch.setenv("ADACODE_HOME", str(tmp_path))
    config = AdaCodeConfig.tiny("inpaint", 1)
    key = profile_cache.profile_key(config, torch.float32, "cpu")
    path = profile_cache.profile_path(key)
    path.parent.mkdir(parents=True)
    good = {"key": key, "profile": {"stream": 100.0, "parked": [1.0], "fixed": 0, "slack": 1.3,
                                    "whole": 0.0, "whole_fixed": 0}}
    damaged = {
        "missing stream": json.dumps({"key": key, "profile": {
            k: v for k, v in good["profile"].items() if k != "stream"}}),
        "stream zero": _with_profile(good, stream=0.0),
        "stream NaN": _with_profile(good, stream=float("nan")),
        "parked text": _with_profile(good, parked="abc"),
        "negative fixed": _with_profile(good, fixed=-1),
    }
    path.write_text(damaged.get(damage, damage))
    measured = memory.profile.__wrapped__(config, torch.float32, "cpu")
    assert (measured.parked, measured.whole, measured.whole_fixed) == memory.layered_costs(
        config, torch.float32)
    assert json.loads(path.read_text())["profile"] == measured.to_record()


def test_the_shipped_profiles_of_the_official_models_equal_a_fresh_count() -> None:
    """A change to the network that changes its memory fails here until
    `python -m adacode_cli.engine.shipped_profiles` writes them again."""
    stored = json.loads(shipped_profiles.SHIPPED_PATH.read_text(encoding="utf-8"))
    fresh = shipped_profiles.count_official()
    assert [entry["key"] for entry in stored] == [entry["key"] for entry in fresh]
    for old, new in zip(stored, fresh, strict=True):
        old, new = old["profile"], new["profile"]
        fields = ("parked", "fixed", "slack", "whole", "whole_fixed")
        assert [old[name] for name in fields] == [new[name] for name in fields]
        # the streaming peak differs by up to 0.7% from one process to the next: the first pass
        # in a process also counts caches the network builds on its first call, and the tracker
        # follows storages by address, which the allocator reuses in its own order
        assert abs(old["stream"] - new["stream"]) <= new["stream"] * 0.01
    assert {entry["key"]["torch"] for entry in stored} == {torch.__version__.split("+")[0]}


def test_an_official_model_first_run_counts_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ADACODE_HOME", str(tmp_path))

    def refuse(*args: object) -> None:
        raise AssertionError("counted on the meta device")

    monkeypatch.setattr(memory, "count_on_meta", refuse)
    config = AdaCodeConfig.official("sr", 4)
    first = memory.profile.__wrapped__(config, torch.bfloat16, "cpu")
    key = profile_cache.profile_key(config, torch.bfloat16, "cpu")
    assert first.to_record() == shipped_profiles.shipped(key)
    assert not (tmp_path / "profiles").exists()  # nothing to store: the package has it
    with pytest.raises(AssertionError, match="counted"):  # other models are still counted
        memory.profile.__wrapped__(AdaCodeConfig.tiny("sr", 4), torch.float32, "cpu")
