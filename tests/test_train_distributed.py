"""Two processes under torchrun (gloo on CPU) train one network whose replicas stay identical."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from adacode_cli.model.checkpoint import load_network
from adacode_cli.train.distributed import digest
from adacode_cli.train.state import RunFolder
from train_helpers import FAST, make_images, metrics


def test_two_process_gloo_run_keeps_replicas_identical(tmp_path) -> None:
    data = make_images(tmp_path / "data", count=4)
    run = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "adacode_cli", "train", "stage1", "--data", str(data), "--output", str(run),
        *FAST, "--iters", "3", "--device", "cpu", "--set", "log.print_every=1",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    checkpoint = RunFolder(run).latest()
    assert checkpoint is not None and checkpoint.iteration == 3
    meta = json.loads((checkpoint.folder / "meta.json").read_text())
    assert meta["world_size"] == 2
    first, second = meta["replica_digests"]
    assert first == second == digest(load_network(checkpoint.net_g))
    assert [row["iter"] for row in metrics(run)] == [1, 2, 3]
    assert result.stdout.count("stage 1 (data)") == 5  # rank 0 only: header, 3 logs, closing


@pytest.mark.parametrize("how", ["ctrl-c in the terminal", "kill torchrun"])
def test_a_stopped_two_process_run_is_saved_by_every_rank_at_one_iteration(tmp_path, how) -> None:
    """Ctrl-C reaches every process of the terminal's group (torchrun passes it on again);
    `kill` (or a cluster's time limit) reaches torchrun, which sends SIGTERM to its workers.
    Either way the ranks agree on the iteration to stop at, and the run is saved there with
    identical replicas, instead of being lost since its last checkpoint."""
    data = make_images(tmp_path / "data", count=4)
    run = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "adacode_cli", "train", "stage1", "--data", str(data), "--output", str(run),
        *FAST, "--no-gan", "--iters", "100000", "--device", "cpu",
        "--set", "log.print_every=1", "--set", "log.checkpoint_every=100000",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    while not (run / "metrics.jsonl").is_file() and process.poll() is None:
        assert time.monotonic() < deadline, "the run never logged"
        time.sleep(0.05)
    if how == "kill torchrun":
        process.send_signal(signal.SIGTERM)
    else:
        os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=240)
    assert "continue with --resume" in output, output
    checkpoint = RunFolder(run).latest()
    assert checkpoint is not None, output
    assert checkpoint.iteration == metrics(run)[-1]["iter"] >= 1
    meta = json.loads((checkpoint.folder / "meta.json").read_text())
    first, second = meta["replica_digests"]
    assert first == second == digest(load_network(checkpoint.net_g))
