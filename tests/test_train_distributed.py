"""Two processes under torchrun (gloo on CPU) train one network whose replicas stay identical."""

from __future__ import annotations

import json
import subprocess
import sys

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
