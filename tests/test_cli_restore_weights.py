"""Restoration commands without --weights: the task's registry model, downloaded once, then
used offline (issue 3's "must hold", through the command a user types)."""

from __future__ import annotations

from pathlib import Path

from cli_restore_helpers import noise, png_header, run_cli, save_png
from weights_helpers import SR_FILE, FixtureServer

pytest_plugins = ["weights_fixtures"]


def test_sr_uses_the_downloaded_default_then_works_offline(
    tmp_path: Path, capsys, monkeypatch, weights_env: Path, weights_server: FixtureServer
) -> None:
    image = save_png(tmp_path / "img.png", noise((8, 6, 3)))
    assert run_cli(capsys, "weights", "download", "tiny-sr", "-q").code == 0

    online = run_cli(capsys, "sr", str(image), str(tmp_path / "out"), "--scale", "4")

    assert online.code == 0, online.stderr
    assert png_header(tmp_path / "out" / "img.png")[:2] == (24, 32)
    assert len(weights_server.gets(SR_FILE)) == 1, "downloaded once, by `weights download`"

    monkeypatch.setenv("ADACODE_MIRROR", "http://127.0.0.1:9/gone")
    monkeypatch.setenv("ADACODE_OFFLINE", "1")
    offline = run_cli(capsys, "sr", str(image), str(tmp_path / "out"), "--overwrite")

    assert offline.code == 0, offline.stderr
    assert len(weights_server.gets(SR_FILE)) == 1


def test_a_registry_model_for_another_scale_is_refused(
    tmp_path: Path, capsys, weights_env: Path
) -> None:
    image = save_png(tmp_path / "img.png", noise((8, 6, 3)))

    ran = run_cli(capsys, "sr", str(image), str(tmp_path / "out"), "--scale", "2",
                  "--weights", "tiny-sr")

    assert ran.code == 2
    assert "do not fit sr x2" in ran.stderr
