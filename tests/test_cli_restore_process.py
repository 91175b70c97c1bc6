"""The restoration commands as a user runs them: real `adacode` processes, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adacode_cli.images.encode import write_image
from cli_restore_helpers import leftovers, noise, png_header, save_png, save_tiny_model
from process_helpers import run_adacode


@pytest.fixture(scope="module")
def sr_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("model") / "model.safetensors", "sr", 2)


def test_mixed_folder_restores_every_image_in_its_own_mode(tmp_path, sr_model):
    folder = tmp_path / "folder"
    save_png(folder / "rgb.png", noise((10, 12, 3), seed=1))
    save_png(folder / "rgba.png", noise((10, 12, 4), seed=2))
    save_png(folder / "grey.png", noise((10, 12), seed=3))
    write_image(folder / "deep.png", noise((10, 12, 3), np.uint16, seed=4), bit_depth=16)
    Image.fromarray(noise((10, 12, 3), seed=5)).quantize(16).save(folder / "palette.png")
    Image.fromarray(noise((10, 12, 3), seed=6)).save(folder / "photo.jpg")
    (folder / "corrupt.png").write_bytes((folder / "rgb.png").read_bytes()[:70])
    (folder / "empty.png").write_bytes(b"")
    (folder / "readme.txt").write_text("not an image")

    ran = run_adacode("sr", "folder", "out", "--scale", "2", "--weights", str(sr_model),
                      cwd=tmp_path)

    assert ran.returncode == 1, ran.stderr
    out = tmp_path / "out"
    assert png_header(out / "rgb.png") == (24, 20, 8, 2)
    assert png_header(out / "rgba.png") == (24, 20, 8, 6)
    assert png_header(out / "grey.png") == (24, 20, 8, 0)
    assert png_header(out / "deep.png") == (24, 20, 16, 2)
    assert png_header(out / "palette.png") == (24, 20, 8, 2)
    with Image.open(out / "photo.jpg") as photo:
        assert (photo.format, photo.size) == ("JPEG", (24, 20))
    assert sorted(path.name for path in out.iterdir()) == [
        "deep.png", "grey.png", "palette.png", "photo.jpg", "rgb.png", "rgba.png"]
    assert "corrupt.png" in ran.stderr and "empty.png: empty file" in ran.stderr
    assert "readme.txt" not in ran.stdout + ran.stderr
    assert "6 done, 0 skipped, 2 failed" in ran.stdout
    assert "Traceback" not in ran.stderr
    assert leftovers(tmp_path) == []


def test_json_output_is_only_json(tmp_path, sr_model):
    save_png(tmp_path / "in" / "a.png", noise((8, 8, 3)))
    (tmp_path / "in" / "b.png").write_bytes(b"not a png")

    ran = run_adacode("sr", "in", "out", "--json", "-w", str(sr_model), cwd=tmp_path)

    assert ran.returncode == 1
    records = [json.loads(line) for line in ran.stdout.splitlines()]
    assert [(Path(r["input"]).name, r["status"]) for r in records] == [
        ("a.png", "done"), ("b.png", "failed")]
    assert "summary:" in ran.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_stops_cleanly_with_a_summary(tmp_path, sr_model, signum):
    """Ctrl-C, and SIGTERM (`kill`, `timeout`: like Ctrl-C pressed twice) in a lone run,
    mid-batch: finished images kept, the summary, exit 130, nothing partial."""
    for index in range(5):
        save_png(tmp_path / "in" / f"{index}.png", noise((64, 64, 3), seed=index))
    process = subprocess.Popen(
        [sys.executable, "-m", "adacode_cli", "sr", "in", "out", "-w", str(sr_model),
         "--tile", "32", "--batch-size", "1"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    first_line = process.stdout.readline()  # the first image is written: stop mid-batch
    process.send_signal(signum)
    rest, errors = process.communicate(timeout=120)

    assert first_line.startswith("[1/5]"), errors
    assert process.returncode == 130, errors
    assert signum != signal.SIGINT or "stopping after the current tile batch" in errors
    assert "summary:" in rest
    assert "Traceback" not in errors
    written = sorted((tmp_path / "out").iterdir())
    assert 1 <= len(written) < 5
    for path in written:
        assert png_header(path)[:2] == (128, 128)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("args", [["--help"], ["sr", "--help"], ["inpaint", "--help"],
                                  ["recon", "--help"]])
def test_help_does_not_import_torch(args):
    script = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from adacode_cli.cli.app import app\n"
        f"result = CliRunner().invoke(app, {args!r})\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'Usage' in result.output\n"
        "heavy = sorted({'torch', 'numpy', 'adacode_cli.engine'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, check=False)
    assert ran.returncode == 0, ran.stderr


@pytest.mark.parametrize("args", [["--help"], ["sr", "--help"], ["inpaint", "--help"],
                                  ["weights", "download", "--help"], ["info", "--help"]])
def test_help_reads_like_a_usual_cli(args):
    from typer.testing import CliRunner

    from adacode_cli.cli.app import app

    shown = CliRunner().invoke(app, args, terminal_width=120).output
    assert "Usage: adacode" in shown
    assert not any(mark in shown for mark in ("<bool>", "<str>", "<int", "<path>", "{")), shown
    if args[0] == "sr":
        assert "Usage: adacode sr [OPTIONS] INPUT [OUTPUT]" in shown
        assert "--tile" in shown and "INTEGER" in shown


def test_help_paragraphs_wrap_at_the_terminal_width_not_at_the_source_lines():
    from typer.testing import CliRunner

    from adacode_cli.cli.app import app

    shown = CliRunner().invoke(app, ["data", "degrade", "--help"], env={"COLUMNS": "200"}).output
    # one paragraph of the command's docstring, split over three source lines, reads as one
    assert "the input's last rows or columns beyond a multiple of the scale are dropped" in shown
