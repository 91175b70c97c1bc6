"""One folder restored by two torchrun processes on the CPU, as a user runs it: real processes,
real signals, a rank killed mid-job and the job resumed by running the same command again."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cli_restore_helpers import leftovers, noise, save_png, save_tiny_model
from process_helpers import run_adacode
from scaleout_helpers import mixed_folder

# torchrun gives each rank one thread; CPU results depend on the thread count (the order of
# sums), so the single-process reference runs with one thread too.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def sr_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("model") / "model.safetensors", "sr", 2)


def torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
            "2", "--monitor-interval", "0.1", "-m", "adacode_cli", *args]


def restore_args(model: Path, output: str) -> list[str]:
    return ["sr", "in", output, "--scale", "2", "-w", str(model), "--device", "cpu", "--json"]


def records_of(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_two_ranks_restore_each_image_once_like_one_process(tmp_path, sr_model) -> None:
    names = mixed_folder(tmp_path / "in")
    reference = run_adacode(*restore_args(sr_model, "ref"), env=ONE_THREAD, cwd=tmp_path)
    assert reference.returncode == 1, reference.stderr

    ran = subprocess.run(torchrun(*restore_args(sr_model, "out")), cwd=tmp_path, text=True,
                         capture_output=True, env={**os.environ, **ONE_THREAD}, timeout=300)

    assert ran.returncode == 1, ran.stderr  # torchrun: a rank exited 1 (the bad file)
    records = records_of(ran.stdout)
    assert sorted(Path(str(r["input"])).name for r in records) == names  # each exactly once
    assert {r["rank"] for r in records} == {0, 1}
    assert [r["status"] for r in records].count("done") == len(names) - 1
    written = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert written == sorted(path.name for path in (tmp_path / "ref").iterdir())
    for name in written:
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()
    assert ran.stderr.count("summary:") == 1
    assert "summary: 7 done, 0 skipped, 1 failed" in ran.stderr
    assert ran.stderr.count("failed: in/bad.png") == 2  # when it failed, and in the summary
    assert leftovers(tmp_path) == []


def test_a_killed_rank_loses_nothing_and_a_rerun_finishes_the_rest(tmp_path, sr_model) -> None:
    for index in range(12):
        save_png(tmp_path / "in" / f"{index:02}.png", noise((48, 40, 3), seed=index))
    command = torchrun(*restore_args(sr_model, "out"), "--tile", "16", "--batch-size", "1")
    env = {**os.environ, **ONE_THREAD}
    job = subprocess.Popen(command, cwd=tmp_path, text=True, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert job.stdout is not None
    for line in job.stdout:  # kill rank 1 once it has written an image
        if '"rank": 1' in line and '"done"' in line:
            os.kill(rank_pid(job.pid, 1), signal.SIGKILL)
            break
    job.communicate(timeout=120)
    assert job.returncode != 0
    first = sorted(path.name for path in (tmp_path / "out").iterdir()
                   if not path.name.startswith("."))
    assert 1 <= len(first) < 12

    rerun = subprocess.run(command, cwd=tmp_path, text=True, capture_output=True, env=env,
                           timeout=300)

    assert rerun.returncode == 0, rerun.stderr
    records = records_of(rerun.stdout)
    skipped = sorted(Path(str(r["output"])).name for r in records if r["status"] == "skipped")
    done = [Path(str(r["output"])).name for r in records if r["status"] == "done"]
    assert skipped == first
    assert sorted(done + skipped) == [f"{index:02}.png" for index in range(12)]
    assert f"summary: {len(done)} done, {len(first)} skipped, 0 failed" in rerun.stderr
    for index in range(12):  # complete files (the first test compares bytes with one process)
        with Image.open(tmp_path / "out" / f"{index:02}.png") as written:
            written.load()
            assert written.size == (80, 96)
    assert leftovers(tmp_path) == []


def test_two_machines_end_together_with_the_jobs_exit_code(tmp_path, sr_model) -> None:
    """Two torchrun launchers meeting at a rendezvous, as on two machines: a failed image on
    one rank fails both, and neither launcher waits for the other's success."""
    names = mixed_folder(tmp_path / "in")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node",
               "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
               "--rdzv-id", "two-machines", "-m", "adacode_cli", *restore_args(sr_model, "out")]
    machines = [subprocess.Popen(command, cwd=tmp_path, text=True, env={**os.environ, **ONE_THREAD},
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(2)]
    try:
        ran = [machine.communicate(timeout=200) for machine in machines]
    finally:
        for machine in machines:
            if machine.poll() is None:
                machine.kill()

    assert [machine.returncode for machine in machines] == [1, 1]
    records = records_of(ran[0][0] + ran[1][0])
    assert sorted(Path(str(r["input"])).name for r in records) == names
    assert {r["rank"] for r in records} == {0, 1}
    assert sum(errors.count("summary: 7 done, 0 skipped, 1 failed") for _, errors in ran) == 1


def test_usage_error_exits_2_on_every_rank(tmp_path) -> None:
    ran = subprocess.run(torchrun("sr", "missing-folder", "out"), cwd=tmp_path, text=True,
                         capture_output=True, timeout=120, env={**os.environ, **ONE_THREAD})
    assert ran.stderr.count("error: missing-folder: no such file or folder") == 2
    assert "exitcode  : 2" in ran.stderr
    assert not (tmp_path / "out").exists()


def rank_pid(launcher: int, rank: int) -> int:
    """The process id of the worker of `rank` that torchrun (`launcher`) started."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environment = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if parent == launcher and f"RANK={rank}".encode() in environment:
            return int(entry.name)
    raise AssertionError(f"no rank {rank} under process {launcher}")
