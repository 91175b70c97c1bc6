"""Two real `adacode` processes wanting the same model: one download, both succeed."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

from weights_helpers import LOSS_FILE, FixtureServer, wait_for

pytest_plugins = ["weights_fixtures"]


def _start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "adacode_cli", "weights", "download", "loss-a"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def _wait_for_line(process: subprocess.Popen[str], text: str) -> list[str]:
    """Read the process's stderr (in a thread, so a silent process cannot hang the test)."""
    lines: queue.Queue[str] = queue.Queue()
    stream = process.stderr
    assert stream is not None
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    seen: list[str] = []
    while not any(text in line for line in seen):
        seen.append(lines.get(timeout=60))
    return seen


def test_concurrent_processes_download_once(
    weights_env: Path, weights_server: FixtureServer
) -> None:
    # The server holds the body until the second process is seen waiting on the lock, so the
    # two runs overlap for sure instead of by timing luck.
    weights_server.gate = threading.Event()
    env = dict(os.environ)
    first = _start(env)
    second: subprocess.Popen[str] | None = None
    try:
        wait_for(lambda: weights_server.gets(LOSS_FILE) or first.poll() is not None)
        second = _start(env)
        seen = _wait_for_line(second, "waiting for another adacode process")
        weights_server.gate.set()
        out_first, err_first = first.communicate(timeout=60)
        out_second = second.communicate(timeout=60)[0]
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    cached = str(weights_env / "weights" / "loss-a.safetensors")
    assert first.returncode == 0, err_first
    assert second.returncode == 0, seen
    assert out_first.strip() == out_second.strip() == cached
    assert len(weights_server.gets(LOSS_FILE)) == 1
