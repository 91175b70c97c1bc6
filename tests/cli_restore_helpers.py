"""Helpers for the restoration-command tests: tiny models, generated images, PNG headers."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adacode_cli.atomic import TEMP_PREFIX
from adacode_cli.cli.app import main


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> Ran:
    """Run `adacode ARGS` in this process through the real entry point (error handling too)."""
    capsys.readouterr()
    try:
        main([*args])
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    captured = capsys.readouterr()
    return Ran(code, captured.out, captured.err)


def save_tiny_model(path: Path, task: str, scale: int) -> Path:
    """A small random AdaCode network in our safetensors format."""
    import torch

    from adacode_cli.model.checkpoint import save_safetensors
    from adacode_cli.model.config import AdaCodeConfig
    from adacode_cli.model.networks import build_network

    torch.manual_seed(0)
    config = AdaCodeConfig.tiny(task, scale)  # type: ignore[arg-type]
    save_safetensors(path, config, build_network(config).state_dict())
    return path


def tiny_models(folder: Path) -> dict[str, Path]:
    """A tiny random model for each restoration task, saved in `folder`."""
    return {
        "sr2": save_tiny_model(folder / "sr2.safetensors", "sr", 2),
        "inpaint": save_tiny_model(folder / "inpaint.safetensors", "inpaint", 1),
        "recon": save_tiny_model(folder / "recon.safetensors", "recon", 1),
    }


def noise(shape: tuple[int, ...], dtype: type = np.uint8, seed: int = 0) -> np.ndarray:
    """Random pixels over the full range of `dtype`."""
    top = np.iinfo(dtype).max
    return np.random.default_rng(seed).integers(0, top, shape, endpoint=True, dtype=dtype)


def save_png(path: Path, pixels: np.ndarray) -> Path:
    """Write 8-bit (L, RGB, RGBA) or 16-bit grey pixels with Pillow."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def png_header(path: Path) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from a PNG's IHDR chunk, read independently of
    the image layer (colour type 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA)."""
    data = path.read_bytes()[:29]
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    return width, height, depth, colour


def leftovers(folder: Path) -> list[Path]:
    """Temporary files our atomic writes would leave behind if they were not cleaned up."""
    return [path for path in folder.rglob("*") if path.name.startswith(TEMP_PREFIX)]


def touch_image(path: Path) -> Path:
    """A tiny valid PNG at `path` (folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (2, 2)).save(path, format="PNG")
    return path
