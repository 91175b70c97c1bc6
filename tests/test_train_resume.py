"""Learning, interruption and exact resume, and the loss networks' clear offline failure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adacode_cli.train.state import RunFolder
from process_helpers import run_adacode
from train_helpers import FAST, make_images, metrics, train

LOSS_KEYS = ("l_codebook", "l_pix", "l_g_gan", "l_d_real", "l_d_fake")


def test_stage1_l1_loss_falls_by_half_in_100_iterations(tmp_path) -> None:
    data = make_images(tmp_path / "data", count=4)
    run = tmp_path / "run"
    train("stage1", "--data", str(data), "--output", str(run), *FAST, "--no-gan",
          "--iters", "100", "--set", "log.print_every=1")
    l1 = [row["l_pix"] for row in metrics(run)]
    assert len(l1) == 100
    assert sum(l1[-5:]) / 5 <= 0.5 * sum(l1[:5]) / 5


def _interrupt_after_first_log(args: list[str], run: Path, signum: int = signal.SIGINT,
                               group: bool = False) -> int:
    """Start a training command, Ctrl-C it (or send `signum`) once it has logged, return its
    exit code. `group`: to its whole process group, data loader workers included, as a
    terminal's Ctrl-C does."""
    process = subprocess.Popen(
        [sys.executable, "-m", "adacode_cli", "train", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=group,
    )
    deadline = time.monotonic() + 120
    while not (run / "metrics.jsonl").is_file() and process.poll() is None:
        assert time.monotonic() < deadline, "the run never logged"
        time.sleep(0.05)
    if group:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    output, _ = process.communicate(timeout=120)
    assert "continue with --resume" in output, output
    return process.returncode


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path) -> None:
    data = make_images(tmp_path / "data", count=3)
    args = ["stage1", "--data", str(data), *FAST, "--iters", "12",
            "--set", "log.print_every=1", "--set", "log.checkpoint_every=5"]
    straight = tmp_path / "straight"
    train(*args, "--output", str(straight))

    resumed = tmp_path / "resumed"
    code = _interrupt_after_first_log([*args, "--output", str(resumed)], resumed)
    assert code == 130
    stopped_at = metrics(resumed)[-1]["iter"]
    assert stopped_at < 12
    train(*args[:1], "--output", str(resumed), "--resume", "--workers", "0")

    expected, got = metrics(straight), metrics(resumed)
    assert [row["iter"] for row in got] == list(range(1, 13))
    for want, have in zip(expected, got, strict=True):
        assert {k: have[k] for k in LOSS_KEYS} == {k: want[k] for k in LOSS_KEYS}


@pytest.mark.parametrize(("signum", "group"), [(signal.SIGTERM, False), (signal.SIGTERM, True),
                                               (signal.SIGINT, True)])
def test_a_stop_saves_the_run_where_it_stops(tmp_path, signum: int, group: bool) -> None:
    """`kill`, a container stop or a cluster's time limit (SIGTERM, to the trainer or to all its
    processes), or a Ctrl-C in the terminal (to the whole group, the data loader's worker
    too): the iteration in flight finishes and is saved (not the last scheduled checkpoint,
    long before), exit 130."""
    data = make_images(tmp_path / "data", count=2)
    run = tmp_path / "run"
    args = ["stage1", "--data", str(data), *FAST, "--no-gan", "--iters", "100000",
            "--set", "log.print_every=1", "--set", "log.checkpoint_every=100000",
            "--output", str(run)]
    assert _interrupt_after_first_log(args, run, signum, group) == 130
    checkpoint = RunFolder(run).latest()
    assert checkpoint is not None and checkpoint.iteration == metrics(run)[-1]["iter"] >= 1


def test_resume_needs_a_run_and_a_fresh_run_needs_a_new_folder(tmp_path) -> None:
    data = make_images(tmp_path / "data", count=2)
    missing = run_adacode("train", "stage1", "--output", str(tmp_path / "none"), "--resume")
    assert missing.returncode == 2 and "not a training run" in missing.stderr
    run = tmp_path / "run"
    train("stage1", "--data", str(data), "--output", str(run), *FAST, "--no-gan", "--iters", "1")
    again = run_adacode("train", "stage1", "--data", str(data), "--output", str(run), *FAST)
    assert again.returncode == 2 and "pass --resume" in again.stderr


def test_missing_loss_weights_offline_stop_with_the_flag_to_use(tmp_path) -> None:
    data = make_images(tmp_path / "data", count=2)
    env = {**os.environ, "ADACODE_HOME": str(tmp_path / "empty"), "ADACODE_OFFLINE": "1"}
    base = ["train", "stage1", "--data", str(data), "--output", str(tmp_path / "run"),
            "--preset", "tiny"]
    semantic = run_adacode(*base, "--no-perceptual", env=env)
    assert semantic.returncode == 2
    lines = semantic.stderr.strip().splitlines()
    assert "vgg19" in lines[1] and "--no-semantic" in lines[1]
    assert "vgg16" not in semantic.stderr and "--offline" in lines[0]
    assert not (tmp_path / "run").exists()


def test_a_stop_request_cuts_a_long_validation_short(tmp_path) -> None:
    """A cluster's time limit leaves seconds: validation checks the stop request between
    images, and gives no mean over part of the set (it would mislead the best checkpoint)."""
    import numpy as np
    import torch

    from adacode_cli.model.config import AdaCodeConfig
    from adacode_cli.model.networks import build_network
    from adacode_cli.train.config import ValSection
    from adacode_cli.train.data import ValidationSample
    from adacode_cli.train.validation import Validator

    torch.manual_seed(0)
    network = build_network(AdaCodeConfig.tiny("sr", 2)).eval()
    reference = np.full((64, 64, 3), 128, np.uint8)
    samples = [ValidationSample(f"v{index}", torch.rand(1, 3, 32, 32), reference, reference)
               for index in range(5)]
    validator = Validator(samples, "bicubic", None, ValSection(), torch.device("cpu"))
    calls: list[int] = []
    network.register_forward_pre_hook(lambda module, args: calls.append(1))
    assert validator.scores(network, lambda: len(calls) >= 2) is None
    assert len(calls) == 2
    assert set(validator.scores(network)) == {"psnr", "ssim"} and len(calls) == 7
