"""`adacode data degrade|masks` and `adacode eval` end to end, through real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adacode_cli.images.encode import write_image
from process_helpers import run_adacode, torch_blocked
from train_fakes import lin_state, vgg_state, write

OFFLINE = {"ADACODE_OFFLINE": "1"}


def make_images(folder: Path) -> dict[str, tuple[int, int]]:
    """A few small smooth images, one in a subfolder and one JPEG; name -> (width, height)."""
    sizes = {"a.png": (96, 64), "sub/b.jpg": (64, 64), "c.png": (90, 67)}
    rng = np.random.default_rng(0)
    for name, (width, height) in sizes.items():
        y, x = np.mgrid[:height, :width]
        pixels = np.stack([127 + 90 * np.sin(x / 7), 127 + 90 * np.cos(y / 5), x * 2.0], axis=-1)
        pixels = np.clip(pixels + rng.normal(0, 4, pixels.shape), 0, 255).astype(np.uint8)
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / name)
    return sizes


@pytest.fixture
def hq(tmp_path: Path) -> Path:
    folder = tmp_path / "hq"
    make_images(folder)
    return folder


def test_degrade_writes_same_names_at_one_quarter_size_reproducibly(
    hq: Path, tmp_path: Path
) -> None:
    first, second = tmp_path / "lq1", tmp_path / "lq2"
    for out in (first, second):
        result = run_adacode("data", "degrade", str(hq), str(out), "--scale", "4", "--seed", "9",
                             env=OFFLINE)
        assert result.returncode == 0, result.stderr
        assert "wrote 3 low-quality x4 images" in result.stdout
    for name, (width, height) in {"a.png": (24, 16), "sub/b.jpg": (16, 16),
                                  "c.png": (22, 16)}.items():
        with Image.open(first / name) as image:
            assert image.size == (width, height) and image.mode == "RGB"
        assert (first / name).read_bytes() == (second / name).read_bytes()
    assert not [p for p in first.rglob("*") if p.name.startswith(".adacode-tmp")]


def test_degrade_reads_16_bit_and_writes_unwritable_formats_as_png(tmp_path: Path) -> None:
    hq = tmp_path / "hq"
    hq.mkdir()
    Image.new("RGB", (32, 24), (200, 10, 90)).save(hq / "flat.bmp")
    write_image(hq / "deep.png", np.full((24, 32, 3), 40_000, np.uint16), bit_depth=16)
    result = run_adacode("data", "degrade", str(hq), str(tmp_path / "lq"), "--scale", "2",
                         env=OFFLINE)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "lq").iterdir()) == ["deep.png", "flat.png"]
    for name in ("deep.png", "flat.png"):
        with Image.open(tmp_path / "lq" / name) as image:
            assert image.size == (16, 12) and image.mode == "RGB"


def test_masks_writes_white_holes_and_mask_files(hq: Path, tmp_path: Path) -> None:
    out = tmp_path / "masked"
    result = run_adacode("data", "masks", str(hq), str(out), env=OFFLINE)
    assert result.returncode == 0, result.stderr
    for name in ("a.png", "c.png"):
        holed = np.asarray(Image.open(out / name))
        mask = np.asarray(Image.open(out / "masks" / name))
        original = np.asarray(Image.open(hq / name))
        assert mask.shape == original.shape[:2] and set(np.unique(mask)) <= {0, 255}
        assert (mask == 255).any()
        assert (holed[mask == 255] == 255).all()
        np.testing.assert_array_equal(holed[mask == 0], original[mask == 0])
    assert (out / "sub/b.jpg").is_file() and (out / "masks/sub/b.png").is_file()


def test_eval_json_for_identical_and_a_changed_folder(hq: Path, tmp_path: Path) -> None:
    changed = tmp_path / "changed"
    changed.mkdir()
    pixels = np.asarray(Image.open(hq / "a.png")).astype(int)
    Image.fromarray(np.clip(pixels + 3, 0, 255).astype(np.uint8)).save(changed / "a.png")
    Image.open(hq / "c.png").save(changed / "c.png")
    Image.new("RGB", (8, 8)).save(changed / "stray.png")

    result = run_adacode("eval", str(changed), str(hq), "--json", env=OFFLINE)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    scores = {row["name"]: row for row in report["images"]}
    assert report["count"] == 2 and report["crop_border"] == 4
    assert scores["c"]["psnr"] is None and scores["c"]["ssim"] == pytest.approx(1.0)
    assert 30 < scores["a"]["psnr"] < 45 and scores["a"]["ssim"] < 1
    assert report["mean"]["psnr"] is None  # one identical image makes the mean infinite
    assert "stray" in result.stderr and "sub/b" in result.stderr  # unmatched, both sides


def test_eval_table_with_lpips_from_local_weight_files(hq: Path, tmp_path: Path) -> None:
    vgg16 = write(vgg_state("vgg16", up_to=28), tmp_path / "vgg16.safetensors")
    lin = write(lin_state(), tmp_path / "lpips.pth")
    result = run_adacode("eval", str(hq / "a.png"), str(hq / "a.png"), "--lpips",
                         "--vgg16-weights", str(vgg16), "--lpips-weights", str(lin), env=OFFLINE)
    assert result.returncode == 0, result.stderr
    assert "LPIPS" in result.stdout and "0.0000" in result.stdout and "inf" in result.stdout


def test_eval_lpips_without_available_weights_warns_and_scores_the_rest(
    hq: Path, tmp_path: Path
) -> None:
    env = {**OFFLINE, "ADACODE_HOME": str(tmp_path / "home")}
    result = run_adacode("eval", str(hq), str(hq), "--lpips", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert "warning: LPIPS left out" in result.stderr
    assert "lpips" not in json.loads(result.stdout)["mean"]


@pytest.mark.parametrize("command", ["degrade", "masks"])
def test_two_inputs_that_would_write_one_file_are_refused_before_writing(
    command: str, tmp_path: Path
) -> None:
    hq = tmp_path / "hq"
    hq.mkdir()
    pixels = np.full((32, 32, 3), 120, np.uint8)
    Image.fromarray(pixels).save(hq / "x.bmp")
    Image.fromarray(pixels).save(hq / "x.png")
    out = tmp_path / "out"
    extra = ["--scale", "2"] if command == "degrade" else []
    result = run_adacode("data", command, str(hq), str(out), *extra, env=OFFLINE)
    assert result.returncode == 2
    assert "both" in result.stderr and "would be written there" in result.stderr
    assert "x.bmp" in result.stderr and "x.png" in result.stderr
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))


def test_user_errors_are_one_line_with_exit_code_2(hq: Path, tmp_path: Path) -> None:
    env = torch_blocked(tmp_path / "blocker")  # every one is found before torch is imported
    (tmp_path / "notes.pth").write_text("not weights")
    image = str(hq / "a.png")
    cases = {
        ("data", "degrade", str(hq), str(tmp_path / "x"), "--scale", "3"):
            "--scale must be 2 or 4",
        ("data", "masks", str(hq), str(hq)): "must differ",
        ("eval", str(tmp_path / "nowhere"), str(hq)): "nowhere: no such file or folder",
        ("eval", image, str(tmp_path / "nowhere.png")): "nowhere.png: no such file or folder",
        ("eval", image, image, "--lpips", "--vgg16-weights", str(tmp_path / "no.pth")):
            "no.pth: no such file",
        ("eval", image, image, "--lpips", "--lpips-weights", str(tmp_path / "notes.pth")):
            "notes.pth: truncated or not a weights file",
        ("eval", image, image, "--vgg16-weights", str(tmp_path / "notes.pth")):
            "--vgg16-weights is for --lpips",
    }
    for args, text in cases.items():
        result = run_adacode(*args, env=env)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, (args, result.stderr)
        assert lines[0].startswith("error: ") and text in lines[0], (args, result.stderr)


def test_sigterm_stops_a_folder_like_ctrl_c_and_leaves_only_whole_files(tmp_path: Path) -> None:
    """`kill`, `timeout` or a container stop in the middle of `data degrade`: exit 130 with one
    line, every file written is complete, no temporary file is left."""
    hq, lq = tmp_path / "hq", tmp_path / "lq"
    hq.mkdir()
    rng = np.random.default_rng(1)
    for index in range(150):
        Image.fromarray(rng.integers(0, 256, (160, 160, 3), np.uint8)).save(hq / f"{index}.png")
    process = subprocess.Popen(
        [sys.executable, "-m", "adacode_cli", "data", "degrade", str(hq), str(lq), "--scale", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **OFFLINE},
    )
    deadline = time.monotonic() + 120
    while not any(lq.glob("[0-9]*.png")) and process.poll() is None:
        assert time.monotonic() < deadline, "nothing was written"
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted"
    written = list(lq.rglob("*"))
    assert not [p for p in written if p.name.startswith(".adacode-tmp")]
    assert 0 < len(written) < 150
    for path in written:
        with Image.open(path) as image:
            image.load()
            assert image.size == (40, 40)
