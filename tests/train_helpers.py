"""Helpers of the training tests: generated image sets, stand-in loss-network weights, runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from process_helpers import run_adacode
from weights_helpers import record_as_downloaded

VGG_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
VGG_WIDTHS = (64, 128, 256, 512, 512)
LPIPS_WIDTHS = (64, 128, 256, 512, 512)
# Train fast: tiny networks, small batches, losses that need downloaded weights off.
FAST = ("--preset", "tiny", "--batch-size", "2", "--no-perceptual", "--no-semantic")


def pattern(kind: str, index: int, size: int = 72) -> np.ndarray:
    """A smooth, learnable RGB test image; `kind` picks a family (a category)."""
    y, x = np.mgrid[0:size, 0:size] / size
    phase = 0.7 * index
    if kind == "a":
        planes = [np.sin(6 * x + phase), np.cos(5 * y - phase), np.sin(4 * (x + y) + phase)]
    else:
        planes = [np.cos(3 * x * y + phase), np.sin(7 * y + phase), np.cos(2 * x - phase)]
    image = np.clip(np.stack(planes, -1) * 0.4 + 0.5, 0, 1)
    return (image * 255).round().astype(np.uint8)


def make_images(folder: Path, kind: str = "a", count: int = 4, size: int = 72) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.fromarray(pattern(kind, index, size)).save(folder / f"img{index}.png")
    return folder


def _cache(home: Path, name: str, tensors: dict) -> None:
    from safetensors.torch import save_file

    folder = home / "weights"
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / f"{name}.safetensors"))
    record_as_downloaded(folder, name)  # stand-ins pass the cache's check on use


def fake_loss_weights(home: Path, names: tuple[str, ...] = ("vgg19", "vgg16", "lpips-vgg")) -> None:
    """Random-weight stand-ins for the registry's loss networks, cached under ADACODE_HOME.

    Only the layers the losses read are written (VGG19 to conv4_4, VGG16 to conv5_3), with He
    initialisation so activations stay finite.
    """
    import torch

    generator = torch.Generator().manual_seed(0)
    for name in names:
        if name == "lpips-vgg":
            tensors = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=generator)
                       for i, c in enumerate(LPIPS_WIDTHS)}
        else:
            tensors, index, in_ch = {}, 0, 3
            blocks = VGG_BLOCKS[name][:4] if name == "vgg19" else VGG_BLOCKS[name]
            for block, convs in enumerate(blocks):
                for _ in range(convs):
                    out_ch = VGG_WIDTHS[block]
                    std = math.sqrt(2 / (9 * in_ch))
                    tensors[f"features.{index}.weight"] = (
                        torch.randn(out_ch, in_ch, 3, 3, generator=generator) * std
                    )
                    tensors[f"features.{index}.bias"] = torch.zeros(out_ch)
                    index, in_ch = index + 2, out_ch
                index += 1  # the pool
        _cache(home, name, tensors)


def train(*args: str, env: dict[str, str] | None = None) -> str:
    """Run `adacode train ...`; fail the test with the command's output if it fails."""
    result = run_adacode("train", *args, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def latest_weights(run: Path) -> dict:
    """Tensors of the run's newest checkpoint."""
    from safetensors.torch import load_file

    pointer = json.loads((run / "checkpoints" / "latest.json").read_text())
    return load_file(str(run / "checkpoints" / pointer["folder"] / "net_g.safetensors"))
