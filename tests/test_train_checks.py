"""Training tells the truth early: every data and weights problem before iteration 1 (and no
run folder left), `data degrade` output that trains, baselines beside validation scores,
logged losses that are means over the logging window."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from PIL import Image

from adacode_cli.model.checkpoint import save_safetensors
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import build_network
from adacode_cli.train.data import load_validation
from adacode_cli.train.image_files import list_images
from adacode_cli.train.metrics import psnr_y
from process_helpers import run_adacode
from train_helpers import FAST, make_images, metrics, train

TINY_STAGE3 = ("--preset", "tiny", "--batch-size", "2", "--no-perceptual", "--no-gan")


@pytest.fixture(scope="module")
def recon_file(tmp_path_factory) -> Path:
    """A tiny stage-2 network file to start stage 3 from."""
    torch.manual_seed(0)
    config = AdaCodeConfig.tiny("recon")
    path = tmp_path_factory.mktemp("init") / "recon.safetensors"
    save_safetensors(path, config, build_network(config).state_dict())
    return path


def _odd_sized(folder: Path, count: int = 2) -> Path:
    """Images of 131x129: not a multiple of 2 or 4 on either side."""
    make_images(folder, count=count, size=131)
    for path in folder.iterdir():
        with Image.open(path) as image:
            image.crop((0, 0, 131, 129)).save(path)
    return folder


def _bicubic_by_hand(image: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB `imresize(image, scale, 'bicubic')` when enlarging, one output pixel at a time:
    Keys a=-0.5 over the 4 nearest samples, mirrored at the borders."""
    def kernel(d: float) -> float:
        d = abs(d)
        if d <= 1:
            return 1.5 * d**3 - 2.5 * d**2 + 1
        return -0.5 * d**3 + 2.5 * d**2 - 4 * d + 2 if d < 2 else 0.0

    def weights(length: int) -> np.ndarray:
        matrix = np.zeros((length * scale, length))
        for out in range(length * scale):
            centre = (out + 0.5) / scale - 0.5
            for tap in range(int(np.floor(centre)) - 1, int(np.floor(centre)) + 3):
                source = -tap - 1 if tap < 0 else 2 * length - 1 - tap if tap >= length else tap
                matrix[out, source] += kernel(centre - tap)
        return matrix / matrix.sum(axis=1, keepdims=True)

    rows, cols = weights(image.shape[0]), weights(image.shape[1])
    out = np.einsum("ij,jkc,lk->ilc", rows, image.astype(np.float64), cols)
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


def test_degrade_output_of_odd_sized_images_trains_and_validates_with_bicubic_beside(
    tmp_path, recon_file: Path
) -> None:
    hq = _odd_sized(tmp_path / "hq")
    val = _odd_sized(tmp_path / "val", count=1)
    for folder in ("hq", "val"):
        made = run_adacode("data", "degrade", str(tmp_path / folder),
                           str(tmp_path / f"{folder}-lq"), "--scale", "2")
        assert made.returncode == 0, made.stderr
    run = tmp_path / "run"
    printed = train("stage3", "--task", "sr", "--scale", "2", "--data", str(hq), "--lq",
                    str(tmp_path / "hq-lq"), "--val", str(val), "--val-lq",
                    str(tmp_path / "val-lq"), "--init", str(recon_file), "--output", str(run),
                    *TINY_STAGE3, "--iters", "2", env={"ADACODE_HOME": str(tmp_path / "home")})
    assert ("best checkpoint: highest PSNR-Y (4 px border) (val.key_metric is lpips, but the "
            "LPIPS weights are not cached") in printed
    assert printed.strip().splitlines()[-1].startswith("stage 3 sr x2: done; best at iter 2: "
                                                       "PSNR-Y (4 px border)")
    assert "(bicubic" in printed.strip().splitlines()[-1]
    row = json.loads((run / "validation.jsonl").read_text().splitlines()[-1])
    assert row["baseline"] == "bicubic"

    [sample] = load_validation(val, list_images(val), "sr", 2, seed=0,
                               lq_paths=list_images(tmp_path / "val-lq"))
    lq = sample.lq[0].permute(1, 2, 0).numpy()
    direct = _bicubic_by_hand(lq, 2)
    assert sample.reference.shape == direct.shape == (128, 130, 3)  # HQ cropped to 2x LQ
    np.testing.assert_allclose(sample.baseline, direct, atol=1)
    assert row["baseline_psnr"] == pytest.approx(psnr_y(direct, sample.reference, 4), abs=0.05)


def test_bad_data_is_refused_in_one_message_before_any_run_folder(tmp_path, recon_file) -> None:
    hq = _odd_sized(tmp_path / "hq", count=4)
    made = run_adacode("data", "degrade", str(hq), str(tmp_path / "lq"), "--scale", "2")
    assert made.returncode == 0, made.stderr
    lq = tmp_path / "lq"
    with Image.open(lq / "img1.png") as image:
        image.resize((60, 60)).save(lq / "img1.png")  # not half of 131x129
    (lq / "img2.png").write_bytes(b"not an image")
    (lq / "img3.png").unlink()
    Image.new("RGB", (40, 200)).save(hq / "small.png")
    Image.new("RGB", (20, 100)).save(lq / "small.png")
    run = tmp_path / "run"
    result = run_adacode("train", "stage3", "--task", "sr", "--scale", "2", "--data", str(hq),
                         "--lq", str(lq), "--init", str(recon_file), "--output", str(run),
                         *TINY_STAGE3, "--iters", "2")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: 4 problems with the images; nothing was written")
    problems = "\n".join(lines[1:])
    assert "img1.png: 60x60 is not 1/2 of" in problems and "expected 65x64" in problems
    assert f"{lq / 'img2.png'}:" in problems
    assert "no low-quality image 'img3'" in problems
    assert "small.png: 40x200 is smaller than the 64px training crop" in problems
    assert "iter" not in result.stdout and not run.exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    again = run_adacode("train", "stage1", "--data", str(empty), "--output", str(run), *FAST)
    assert again.returncode == 2 and "no images found" in again.stderr and not run.exists()


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_folder(tmp_path) -> None:
    data = make_images(tmp_path / "data", count=2)
    run = tmp_path / "run"
    failed = run_adacode("train", "stage1", "--data", str(data), "--output", str(run), *FAST,
                         "--set", "optim.lr_g=1e30", "--set", "log.print_every=1")
    assert failed.returncode == 2 and "became" in failed.stderr
    assert not run.exists()
    train("stage1", "--data", str(data), "--output", str(run), *FAST, "--iters", "1")


class _NotFound(BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        self.send_error(404)


@pytest.fixture
def empty_mirror() -> Iterator[str]:
    """A loopback mirror that has no file at all, recording what is asked of it."""
    _NotFound.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_every_missing_weights_file_is_named_at_once(tmp_path, empty_mirror: str) -> None:
    data = make_images(tmp_path / "data", count=2)
    run = tmp_path / "run"
    base = ["train", "stage3", "--task", "sr", "--scale", "2", "--data", str(data), "--init",
            "recon", "--output", str(run), "--preset", "tiny"]
    env = {"ADACODE_HOME": str(tmp_path / "empty"), "ADACODE_OFFLINE": ""}
    started = time.monotonic()
    offline = run_adacode(*base, "--offline", env=env)
    assert time.monotonic() - started < 30  # no network: the time of starting Python
    assert offline.returncode == 2
    text = offline.stderr
    assert "4 weights files missing" in text and "offline mode is on" in text
    for name, flag in (("vgg16, lpips-vgg", "--no-perceptual"), ("recon:", "--init RUN|FILE"),
                       ("recon-d:", "--no-gan")):
        assert any(name in line and flag in line for line in text.splitlines()), (name, text)
    assert run_adacode(*base, env={**env, "ADACODE_OFFLINE": "1"}).stderr == text

    online = {**env, "ADACODE_MIRROR": empty_mirror, "NO_PROXY": "127.0.0.1"}
    failed = run_adacode(*base, env={**os.environ, **online})
    assert failed.returncode == 2 and "4 weights files missing" in failed.stderr
    assert "404" in failed.stderr and len(_NotFound.requests) == 1  # the rest not tried
    assert not run.exists()

    started = time.monotonic()
    unresolved = run_adacode(*base, env={**online, "ADACODE_MIRROR": "http://adacode.invalid/"})
    assert time.monotonic() - started < 20  # no retries against a host that does not resolve
    assert unresolved.returncode == 2 and "4 weights files missing" in unresolved.stderr
    assert "--no-perceptual" in unresolved.stderr and "--no-gan" in unresolved.stderr


def test_logged_losses_are_means_over_the_logging_window(tmp_path) -> None:
    data = make_images(tmp_path / "data", count=3)
    args = ["stage1", "--data", str(data), *FAST, "--iters", "6"]
    train(*args, "--output", str(tmp_path / "each"), "--set", "log.print_every=1")
    train(*args, "--output", str(tmp_path / "window"), "--set", "log.print_every=3")
    each, window = metrics(tmp_path / "each"), metrics(tmp_path / "window")
    assert [row["iter"] for row in window] == [3, 6]
    for row in window:
        steps = [r for r in each if row["iter"] - 3 < r["iter"] <= row["iter"]]
        for key in ("l_pix", "l_codebook", "l_d_real"):
            mean = math.fsum(r[key] for r in steps) / 3
            assert row[key] == pytest.approx(mean, rel=1e-5), key


def test_validation_line_and_tensorboard_show_model_and_baseline_side_by_side() -> None:
    from rich.console import Console

    from adacode_cli.train.progress import TrainingDisplay

    class Writer:
        calls: ClassVar[list[tuple]] = []

        def add_scalars(self, tag: str, values: dict, step: int) -> None:
            self.calls.append((tag, values, step))

    console = Console(record=True, width=300, force_terminal=False)
    display = TrainingDisplay(console, "stage 3 sr x2", 0, 200)
    display.writer = Writer()
    display.validation(100, {"psnr": 19.6, "ssim": 0.61}, {"psnr": 26.5, "ssim": 0.75},
                       "bicubic", 4, best=True)
    assert Writer.calls == [("val/psnr", {"model": 19.6, "bicubic": 26.5}, 100),
                            ("val/ssim", {"model": 0.61, "bicubic": 0.75}, 100)]
    assert ("PSNR-Y (4 px border) 19.60 dB (bicubic 26.50 dB)  SSIM-Y 0.6100 (bicubic 0.7500)"
            in console.export_text())
    Writer.calls.clear()
    display.validation(5, {"psnr": 16.0}, {"psnr": math.inf}, "identity", 4, best=False)
    assert Writer.calls == [("val/psnr", {"model": 16.0}, 5)]  # an infinite curve is left out
