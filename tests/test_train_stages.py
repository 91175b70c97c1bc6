"""The three stages end to end on generated images, then export to an inference file.

One chain per module (stage 1 on two categories -> stage 2 -> stage 3) keeps it fast; the
semantic and perceptual losses run against random-weight stand-ins of the registry's VGG files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from adacode_cli.model.checkpoint import load_network, read_checkpoint
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import build_network
from adacode_cli.model.padding import restore_whole
from adacode_cli.train.discriminator import UNetDiscriminatorSN
from adacode_cli.train.state import RunFolder
from train_helpers import fake_loss_weights, latest_weights, make_images, metrics, train
from weights_helpers import record_as_downloaded

TINY = ("--preset", "tiny", "--batch-size", "2")
STAGE3_FROZEN = ("quantize_group.", "decoder_group.", "after_quant_group.", "out_conv.")


@dataclass
class Workspace:
    root: Path
    data: Path
    val: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    root = tmp_path_factory.mktemp("train")
    make_images(root / "data" / "a", "a")
    make_images(root / "data" / "b", "b")
    val = make_images(root / "val", "a", count=2, size=40)
    home = root / "home"
    fake_loss_weights(home)
    env = {"ADACODE_HOME": str(home), "ADACODE_OFFLINE": "1"}
    return Workspace(root, root / "data", val, env)


@pytest.fixture(scope="module")
def stage1(ws: Workspace) -> Path:
    out = ws.root / "s1"
    train("stage1", "--data", str(ws.data), "--output", str(out), *TINY, "--iters", "4",
          "--no-perceptual", "--val", str(ws.val), env=ws.env)
    return out


@pytest.fixture(scope="module")
def stage2(ws: Workspace, stage1: Path) -> Path:
    out = ws.root / "s2"
    train("stage2", "--data", str(ws.data), "--codebooks", str(stage1), "--output", str(out),
          *TINY, "--iters", "3", env=ws.env)
    return out


@pytest.fixture(scope="module")
def stage3(ws: Workspace, stage2: Path) -> Path:
    out = ws.root / "s3"
    train("stage3", "--task", "sr", "--scale", "2", "--data", str(ws.data / "a"), "--init",
          str(stage2), "--output", str(out), *TINY, "--iters", "4", "--no-perceptual",
          "--val", str(ws.val), env=ws.env)
    return out


def test_stage1_trains_one_run_per_category_with_semantic_loss(stage1: Path) -> None:
    for category in ("a", "b"):
        run = stage1 / category
        rows = metrics(run)
        assert [row["iter"] for row in rows] == [4]
        assert {"l_pix", "l_codebook", "l_semantic", "l_g_gan", "l_d_real"} <= rows[0].keys()
        validation = RunFolder(run).rows(RunFolder(run).validation)
        assert {"psnr", "ssim", "lpips"} <= validation[0].keys()
        assert RunFolder(run).best() is not None
        config, _ = read_checkpoint(RunFolder(run).weights().net_g)
        assert config.stage == "vqgan" and config.codebook_sizes == (32,)


def test_stage2_keeps_the_stage1_codebooks_bit_identical(stage1: Path, stage2: Path) -> None:
    trained = latest_weights(stage2)
    for index, category in enumerate(("a", "b")):
        source = load_file(str(RunFolder(stage1 / category).weights().net_g))
        assert torch.equal(trained[f"quantize_group.{index}.embedding.weight"],
                           source["quantize_group.0.embedding.weight"])
    assert "l_percep" in metrics(stage2)[-1]


def test_stage3_keeps_every_frozen_tensor_bit_identical(stage2: Path, stage3: Path) -> None:
    teacher = load_file(str(RunFolder(stage2).weights().net_g))
    student = latest_weights(stage3)
    frozen = [k for k in student if k.startswith(STAGE3_FROZEN)]
    assert frozen and all(torch.equal(student[k], teacher[k]) for k in frozen)
    trained = [k for k in student if k.startswith("weight_predictor.") and k in teacher]
    assert any(not torch.equal(student[k], teacher[k]) for k in trained)
    assert {"l_codebook", "l_after_quant", "l_contrast", "l_pix"} <= metrics(stage3)[-1].keys()


def test_export_restores_an_image_and_writes_official_keys(stage3: Path, tmp_path) -> None:
    out = tmp_path / "sr.safetensors"
    train("export", str(stage3), str(out))
    network = load_network(out)
    assert network.config.task == "sr" and network.config.scale == 2
    image = torch.rand(1, 3, 20, 28, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        restored, _ = restore_whole(network, image)
    assert restored.shape == (1, 3, 40, 56) and torch.isfinite(restored).all()

    official = tmp_path / "sr.pth"
    train("export", str(stage3), str(official), "--official-keys")
    params = torch.load(official, weights_only=True)["params"]
    assert any(k.endswith(".attn_mask") for k in params)
    assert any(k.endswith(".attn.relative_position_index") for k in params)
    assert params["contrast_cri.negatives_mask"].shape == (4, 4)
    config, state = read_checkpoint(official)
    assert config == network.config
    assert all(torch.equal(state[k], v) for k, v in network.state_dict().items())


def test_stage3_inpainting_from_the_registry_recon_model(ws: Workspace, tmp_path) -> None:
    weights = Path(ws.env["ADACODE_HOME"]) / "weights"
    torch.manual_seed(3)
    recon = build_network(AdaCodeConfig.tiny("recon"))
    save_file(recon.state_dict(), str(weights / "recon.safetensors"))
    record_as_downloaded(weights, "recon", kind="adacode")
    discriminator = UNetDiscriminatorSN(3, 8)  # narrower than the preset's: proves it was loaded
    save_file(discriminator.state_dict(), str(weights / "recon-d.safetensors"))
    record_as_downloaded(weights, "recon-d", kind="discriminator")
    out = tmp_path / "inpaint"
    train("stage3", "--task", "inpaint", "--data", str(ws.data / "b"), "--init", "recon",
          "--output", str(out), *TINY, "--iters", "2", "--no-perceptual", env=ws.env)
    student = latest_weights(out)
    assert torch.equal(student["out_conv.weight"], recon.state_dict()["out_conv.weight"])
    disc = load_file(str(RunFolder(out).latest().net_d))
    assert disc["conv0.weight"].shape[0] == 8
    exported = tmp_path / "inpaint.safetensors"
    train("export", str(out), str(exported))
    assert load_network(exported).config.task == "inpaint"
