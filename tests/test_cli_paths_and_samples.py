"""The CLI as a subprocess, for what users write and feed it: an OUTPUT or INPUT spelled with a
trailing separator (a folder, as `cp` reads it, for every command that writes or reads paths),
float and int32 TIFFs, and a JPEG cut short. One line and the documented exit code for every
mistake; the right files written otherwise."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_restore_helpers import noise, save_png, save_tiny_model
from process_helpers import run_adacode

USAGE, SOME_FAILED = 2, 1


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {"sr": save_tiny_model(folder / "sr2.safetensors", "sr", 2),
            "inpaint": save_tiny_model(folder / "inpaint.safetensors", "inpaint", 1)}


def one_error_line(ran, expected: str) -> None:
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in ran.stderr, ran.stderr


def test_an_output_with_a_trailing_slash_is_a_folder(tmp_path: Path, models) -> None:
    save_png(tmp_path / "a.png", noise((12, 12, 3)))
    holes = np.zeros((12, 12), np.uint8)
    holes[3:6, 3:6] = 255
    save_png(tmp_path / "masks" / "a.png", holes)
    cases = [("sr", "a.png", "newdir.png/", "-w", str(models["sr"])),
             ("inpaint", "a.png", "filled.jpg/", "--mask", "masks/", "-w", str(models["inpaint"])),
             ("sr", "a.png", "notes.txt/", "-w", str(models["sr"]))]
    for command in cases:
        ran = run_adacode(*command, "-q", cwd=tmp_path, timeout=120)
        assert ran.returncode == 0, ran.stderr
        folder = tmp_path / command[2].rstrip("/")
        assert folder.is_dir() and [p.name for p in folder.iterdir()] == ["a.png"]


def test_a_trailing_slash_on_a_file_is_a_usage_error(tmp_path: Path, models) -> None:
    save_png(tmp_path / "a.png", noise((12, 12, 3)))
    save_png(tmp_path / "m.png", np.full((12, 12), 255, np.uint8))
    (tmp_path / "run").mkdir()
    cases = {
        ("sr", "a.png/", "out/", "-w", str(models["sr"])): "a.png/: is a file, but the trailing",
        ("sr", "a.png", "m.png/", "-w", str(models["sr"])): "m.png/: is a file, but the trailing",
        ("inpaint", "a.png", "out/", "--mask", "m.png/", "-w", str(models["inpaint"])):
            "m.png/: is a file, but the trailing",
        ("convert", str(models["sr"]), "copy.safetensors/"):
            "copy.safetensors/: the output is one file, but the trailing '/' names a folder",
        ("train", "export", "run", "model.safetensors/"):
            "model.safetensors/: the output is one file",
        ("eval", "a.png/", "a.png"): "a.png/: is a file, but the trailing",
        ("info", f"{models['sr']}/"): "sr2.safetensors/: is a file, but the trailing",
        ("convert", f"{models['sr']}/", "copy.safetensors"): "sr2.safetensors/: is a file",
        ("sr", "a.png", "out/", "-w", f"{models['sr']}/"): "sr2.safetensors/: is a file",
    }
    for command, message in cases.items():
        ran = run_adacode(*command, cwd=tmp_path, timeout=120)
        assert ran.returncode == USAGE, (command, ran.stderr)
        one_error_line(ran, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "m.png", "run"]


def test_a_float_tiff_is_restored_to_a_float_tiff(tmp_path: Path, models) -> None:
    samples = np.random.default_rng(1).random((12, 14)).astype(np.float32)
    Image.fromarray(samples).save(tmp_path / "f.tif")
    ran = run_adacode("sr", "f.tif", "out/", "-w", str(models["sr"]), "-q", cwd=tmp_path,
                      timeout=120)
    assert ran.returncode == 0, ran.stderr
    with Image.open(tmp_path / "out" / "f.tif") as result:
        assert result.mode == "F" and result.size == (28, 24)
        values = np.asarray(result)
        assert values.min() >= 0.0 and values.max() <= 1.0


@pytest.mark.parametrize(("name", "make", "message"), [
    ("deep.tif", lambda: Image.fromarray(np.full((12, 12), 70000, np.int32)),
     "deep.tif: 32-bit integer samples have no agreed brightness scale"),
    ("hdr.tif", lambda: Image.fromarray(np.full((12, 12), 4.0, np.float32)),
     "hdr.tif: float samples span 4 to 4, outside [0, 1]"),
])
def test_samples_without_a_meaning_fail_in_one_line(tmp_path: Path, models, name: str, make,
                                                    message: str) -> None:
    make().save(tmp_path / name)
    ran = run_adacode("sr", name, "out/", "-w", str(models["sr"]), cwd=tmp_path, timeout=120)
    assert ran.returncode == SOME_FAILED and message in ran.stderr, ran.stderr
    assert "Traceback" not in ran.stderr and not (tmp_path / "out" / name).exists()


def test_a_jpeg_cut_short_and_closed_fails_and_the_batch_goes_on(tmp_path: Path, models) -> None:
    buffer = io.BytesIO()
    Image.fromarray(noise((32, 32, 3))).save(buffer, "JPEG")
    data = buffer.getvalue()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cut.jpg").write_bytes(data[: len(data) * 2 // 3] + b"\xff\xd9")
    save_png(tmp_path / "in" / "whole.png", noise((12, 12, 3)))
    ran = run_adacode("sr", "in", "out", "-w", str(models["sr"]), cwd=tmp_path, timeout=120)
    assert ran.returncode == SOME_FAILED, ran.stderr
    assert "cut.jpg: truncated image: the data of its last scan ends" in ran.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["whole.png"]


def test_a_cut_animation_with_animated_is_its_first_frame_with_a_warning(tmp_path: Path,
                                                                        models) -> None:
    """Counting the frames of a cut GIF raised IndexError in the video check: a traceback.
    Now it is restored as an image, as without --animated, and says why."""
    frames = [Image.fromarray(noise((12, 12, 3), seed=seed)) for seed in range(5)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    data = buffer.getvalue()
    (tmp_path / "cut.gif").write_bytes(data[: len(data) * 7 // 10])
    ran = run_adacode("sr", "cut.gif", "out/", "--animated", "-w", str(models["sr"]),
                      cwd=tmp_path, timeout=120)
    assert ran.returncode == 0 and "Traceback" not in ran.stderr, ran.stderr
    assert "cut.gif: the frames after the first are damaged" in ran.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["cut.png"]
