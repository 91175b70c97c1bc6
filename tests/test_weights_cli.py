"""`adacode weights ...` through the real entry point: output, exit codes, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adacode_cli.cli.app import main
from weights_helpers import LOSS_FILE, FixtureServer, cache_files

pytest_plugins = ["weights_fixtures"]


def adacode(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _row(table: str, name: str) -> list[str]:
    line = next(line for line in table.splitlines() if f" {name} " in line)
    return [cell.strip() for cell in line.strip("│ ").split("│")]


def test_download_path_list_verify_remove(
    weights_env: Path, weights_server: FixtureServer, capsys: pytest.CaptureFixture[str]
) -> None:
    cached = weights_env / "weights" / "loss-a.safetensors"
    assert adacode(capsys, "weights", "download", "-q", "loss-a")[:2] == (0, f"{cached}\n")
    assert adacode(capsys, "weights", "path", "loss-a")[:2] == (0, f"{cached}\n")
    assert len(weights_server.gets(LOSS_FILE)) == 1
    code, table, _ = adacode(capsys, "weights", "list")
    assert code == 0
    assert _row(table, "loss-a")[-2:] == ["yes", "yes"]
    assert _row(table, "disc")[-2:] == ["no", "-"]
    assert adacode(capsys, "weights", "verify", "loss-a")[:2] == (0, "loss-a: ok\n")
    assert adacode(capsys, "weights", "remove", "loss-a")[0] == 0
    assert cache_files(weights_env) == []
    assert _row(adacode(capsys, "weights", "list")[1], "loss-a")[-2:] == ["no", "-"]


def test_verify_detects_a_damaged_file(
    weights_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert adacode(capsys, "weights", "download", "-q", "loss-a", "disc")[0] == 0
    cached = weights_env / "weights" / "disc.safetensors"
    data = bytearray(cached.read_bytes())
    data[-1] ^= 0xFF
    cached.write_bytes(bytes(data))
    code, _, err = adacode(capsys, "weights", "verify", "disc")
    assert code == 2 and err.startswith("error: ") and "damaged" in err
    assert len(err.splitlines()) == 1
    code, out, err = adacode(capsys, "weights", "verify")
    assert code == 2 and out == "loss-a: ok\n"
    assert "disc: FAILED" in err and "1 cached model(s) failed verification: disc" in err


def test_remove_all_and_download_needs_names(
    weights_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert adacode(capsys, "weights", "download", "-q", "loss-a", "loss-b")[0] == 0
    assert adacode(capsys, "weights", "remove", "--all")[0] == 0
    assert cache_files(weights_env) == []
    code, _, err = adacode(capsys, "weights", "download")
    assert code == 2 and "give model names or --all" in err
    code, _, err = adacode(capsys, "weights", "remove", "loss-a", "--all")
    assert code == 2 and "not both" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["path", "../etc/passwd"], "invalid weights name '../etc/passwd'"),
        (["path", "nope"], "unknown weights 'nope': valid names are loss-a"),
        (["download", "--offline", "disc"], "adacode weights download disc"),
        (["verify", "disc"], "disc is not cached"),
        # not "not cached: run `adacode weights download nope`", which would fail as well
        (["verify", "nope"], "unknown weights 'nope': neither a registry name nor in the cache"),
        (["remove", "nope"], "unknown weights 'nope': neither a registry name nor in the cache"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(
    weights_env: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = adacode(capsys, "weights", *args)
    assert code == 2 and err.startswith("error: ") and message in err
    assert len(err.splitlines()) == 1


def test_unwritable_cache_dir(
    weights_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Tests run as root, so permission bits stop nothing: put the cache under a regular file.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = adacode(capsys, "weights", "download", "--cache-dir", str(blocker / "c"), "disc")
    assert code == 2 and "cannot write to the weights cache" in err


def _subprocess_env(weights_env: Path) -> dict[str, str]:
    keep = ("ADACODE_REGISTRY", "ADACODE_HOME", "ADACODE_MIRROR", "ADACODE_RETRY_BACKOFF",
            "NO_PROXY")
    return {**os.environ, **{k: os.environ[k] for k in keep}}


def test_network_error_in_a_real_process_has_no_traceback(
    weights_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADACODE_MIRROR", "http://127.0.0.1:9")  # nothing listens there
    done = subprocess.run(
        [sys.executable, "-m", "adacode_cli", "weights", "download", "loss-a"],
        capture_output=True, text=True, env=_subprocess_env(weights_env), timeout=60,
        check=False,
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Connection refused" in errors[0]
    assert "Traceback" not in done.stderr


def test_cli_import_does_not_import_torch() -> None:
    code = "import sys, adacode_cli.cli.weights_cmds; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode == 0
