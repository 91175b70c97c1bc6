"""The weights cache under faults: damaged files, killed and interrupted runs, file modes, names
that do not exist, batches where one model fails, Ctrl-C during a download."""

from __future__ import annotations

import os
import signal
import stat
import threading
import time
from pathlib import Path

import pytest

from adacode_cli.errors import WeightsError
from adacode_cli.weights.api import ensure_weights
from adacode_cli.weights.cache import CachePaths, read_record
from adacode_cli.weights.lock import writers_lock
from weights_helpers import (
    LOSS_FILE,
    SR_FILE,
    FixtureServer,
    adacode_process,
    cache_files,
    flip_bit,
    start_adacode,
    wait_for,
)

pytest_plugins = ["weights_fixtures"]


def test_a_damaged_cached_file_is_refused_with_the_repair(
    weights_env: Path, weights_server: FixtureServer
) -> None:
    path = ensure_weights("loss-a", quiet=True)
    flip_bit(path, offset=len(path.read_bytes()) // 2)
    with pytest.raises(WeightsError, match="is damaged") as caught:
        ensure_weights("loss-a", quiet=True, offline=True)
    assert "adacode weights download --force loss-a" in str(caught.value)
    assert "adacode weights remove loss-a" in str(caught.value)
    ensure_weights("loss-a", quiet=True, force=True)  # the repair it names
    assert ensure_weights("loss-a", quiet=True, offline=True) == path
    assert len(weights_server.gets(LOSS_FILE)) == 2


def test_an_unchanged_file_is_not_hashed_again(
    weights_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = ensure_weights("loss-a", quiet=True)
    hashed: list[Path] = []
    from adacode_cli.weights import cache

    real = cache.sha256_file
    monkeypatch.setattr(cache, "sha256_file", lambda p: hashed.append(p) or real(p))
    for _ in range(3):
        ensure_weights("loss-a", quiet=True)
    assert hashed == []
    os.utime(path, ns=(1, 1))  # any change of the file: hashed once, then trusted again
    ensure_weights("loss-a", quiet=True)
    ensure_weights("loss-a", quiet=True)
    assert hashed == [path]
    record = read_record(CachePaths.for_model("loss-a"))
    assert record is not None and record.verified_stamp is not None
    assert record.verified_stamp[:2] == [path.stat().st_size, 1]


def test_a_damaged_file_fails_the_command_that_uses_it(
    weights_env: Path, tmp_path: Path
) -> None:
    from PIL import Image

    path = ensure_weights("tiny-sr", quiet=True)
    flip_bit(path)
    image = tmp_path / "in.png"
    Image.new("RGB", (8, 8)).save(image)
    done = adacode_process("sr", str(image), str(tmp_path / "out.png"), "--offline",
                           "--weights", "tiny-sr")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "is damaged" in done.stderr and "--force tiny-sr" in done.stderr
    assert not (tmp_path / "out.png").exists()


def _stop_once_converting(paths: CachePaths) -> object:
    return lambda: paths.download.exists()  # the verified download waits for its conversion


def test_an_interrupted_conversion_keeps_the_verified_download(
    weights_env: Path, weights_server: FixtureServer
) -> None:
    paths = CachePaths.for_model("tiny-sr")
    with pytest.raises(KeyboardInterrupt):
        ensure_weights("tiny-sr", quiet=True, should_stop=_stop_once_converting(paths))
    assert cache_files(weights_env) == ["tiny-sr.pth"]  # no temporary, no half file
    assert ensure_weights("tiny-sr", quiet=True) == paths.safetensors
    assert len(weights_server.gets(SR_FILE)) == 1  # converted from the kept download
    assert cache_files(weights_env) == ["tiny-sr.json", "tiny-sr.safetensors"]


def test_a_kept_download_is_checked_again(
    weights_env: Path, weights_server: FixtureServer
) -> None:
    paths = CachePaths.for_model("loss-a")
    paths.folder.mkdir(parents=True)
    paths.download.write_bytes(b"not what the registry's checksum says")
    with pytest.raises(WeightsError, match="checksum mismatch for loss-a"):
        ensure_weights("loss-a", quiet=True)
    assert cache_files(weights_env) == []


def test_a_stopped_download_keeps_its_part_file(
    weights_env: Path, weights_server: FixtureServer
) -> None:
    weights_server.drop_after[LOSS_FILE] = 50_000
    calls = iter(range(10**6))
    with pytest.raises(KeyboardInterrupt):
        ensure_weights("loss-a", quiet=True, should_stop=lambda: next(calls) > 3)
    assert cache_files(weights_env) == ["loss-a.part"]
    ensure_weights("loss-a", quiet=True)
    assert weights_server.gets(LOSS_FILE)[-1].headers["Range"].startswith("bytes=")


def _leftover(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / ".adacode-tmp-x1y2z3.safetensors"  # what a SIGKILL mid-write leaves
    temp.write_bytes(b"\0" * 1000)
    return temp


def test_temporaries_of_killed_runs_are_cleaned_unless_a_writer_is_alive(
    weights_env: Path,
) -> None:
    folder = weights_env / "weights"
    temp = _leftover(folder)
    live = threading.Event()
    done = threading.Event()

    def writer() -> None:  # another process's download in progress, as far as the lock goes
        with writers_lock(folder):
            live.set()
            done.wait(30)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        live.wait(10)
        ensure_weights("loss-a", quiet=True)
        assert temp.exists()  # maybe the live writer's own file: untouched
    finally:
        done.set()
        thread.join()
    ensure_weights("loss-a", quiet=True)  # even a run that finds its model cached cleans up
    assert not temp.exists()


def test_remove_cleans_temporaries_and_lock_files(weights_env: Path) -> None:
    ensure_weights("loss-a", quiet=True)
    folder = weights_env / "weights"
    temp = _leftover(folder)
    (folder / "disc.lock").touch()
    done = adacode_process("weights", "remove", "--all")
    assert done.returncode == 0, done.stderr
    assert not temp.exists() and sorted(folder.iterdir()) == []


@pytest.mark.parametrize("args", [["nosuch"], ["loss-a", "nosuch"], ["Bad/Name"]])
def test_remove_refuses_unknown_names_and_creates_nothing(
    weights_env: Path, args: list[str]
) -> None:
    ensure_weights("loss-a", quiet=True)
    before = sorted(p.name for p in (weights_env / "weights").iterdir())
    done = adacode_process("weights", "remove", *args)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert sorted(p.name for p in (weights_env / "weights").iterdir()) == before


def test_download_all_tries_every_model(weights_env: Path) -> None:
    # tiny-sr2's file is missing on the server (404); every other model downloads
    done = adacode_process("weights", "download", "--all", "-q")
    assert done.returncode == 1
    assert len(done.stdout.splitlines()) == 4
    failed = [line for line in done.stderr.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and failed[0].startswith("tiny-sr2: FAILED") and "404" in failed[0]
    assert "1 of 5 models failed: tiny-sr2" in done.stderr
    assert "tiny-sr.safetensors" in done.stdout and "Traceback" not in done.stderr


@pytest.mark.parametrize("umask", [0o002, 0o027])
def test_written_weights_follow_the_umask(
    weights_env: Path, tmp_path: Path, umask: int
) -> None:
    done = adacode_process("weights", "download", "-q", "tiny-sr", "loss-a", umask=umask)
    assert done.returncode == 0, done.stderr
    expected = 0o666 & ~umask
    folder = weights_env / "weights"
    for name in ("tiny-sr.safetensors", "tiny-sr.json", "loss-a.safetensors", "loss-a.lock"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == expected, name
    converted = tmp_path / "mine.safetensors"
    done = adacode_process("convert", str(folder / "tiny-sr.safetensors"), str(converted),
                           umask=umask)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(converted.stat().st_mode) == expected


def test_ctrl_c_during_a_download_stops_at_once(
    weights_env: Path, weights_server: FixtureServer
) -> None:
    weights_server.gate = threading.Event()  # the body never comes: the download hangs
    process = start_adacode("weights", "download", "loss-a")
    try:
        wait_for(lambda: weights_server.gets(LOSS_FILE) or process.poll() is not None)
        time.sleep(0.3)
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        took = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130 and took < 3 and "Traceback" not in err
    assert cache_files(weights_env) in ([], ["loss-a.part"])  # kept to resume, nothing else


def test_a_rerun_after_a_kill_mid_conversion_converts_without_downloading(
    weights_env: Path, weights_server: FixtureServer
) -> None:
    from weights_helpers import sr_bytes

    paths = CachePaths.for_model("tiny-sr")
    temp = _leftover(paths.folder)  # what SIGKILL during the conversion leaves behind:
    paths.download.write_bytes(sr_bytes())  # the verified download and a half-written file
    done = adacode_process("weights", "download", "tiny-sr")
    assert done.returncode == 0, done.stderr
    assert "converting the download kept from an interrupted run" in done.stderr
    assert not weights_server.gets(SR_FILE) and not temp.exists()
    assert cache_files(weights_env) == ["tiny-sr.json", "tiny-sr.safetensors"]
