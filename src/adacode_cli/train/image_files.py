"""Folders of training / evaluation images: find them, read them as 8-bit RGB, write atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from adacode_cli.atomic import TEMP_PREFIX, atomic_save
from adacode_cli.errors import AdaCodeError, ImageError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp"})
JPEG_QUALITY = 95  # what OpenCV's imwrite (used by the official dataset scripts) defaults to


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder` (recursively, as the official `make_dataset`), sorted."""
    if not folder.is_dir():
        raise AdaCodeError(f"{folder}: not a folder")
    found = sorted(
        path for path in folder.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
        and not path.name.startswith(TEMP_PREFIX)
    )
    if not found:
        raise AdaCodeError(f"{folder}: no images found")
    return found


def read_rgb(path: Path) -> np.ndarray:
    """HxWx3 uint8 RGB; grey and palette images are expanded, alpha is dropped."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise ImageError(f"{path}: cannot read image ({error})") from error


def write_image(path: Path, pixels: np.ndarray) -> None:
    """Write uint8 HxW (grey) or HxWx3 (RGB) pixels atomically, format from the extension."""
    image = Image.fromarray(pixels)
    options = {"quality": JPEG_QUALITY} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    try:
        atomic_save(path, lambda temp: image.save(temp, **options))
    except (OSError, ValueError) as error:
        raise ImageError(f"{path}: cannot write image ({error})") from error


def to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1], the range the training code works in."""
    return pixels.astype(np.float32) / 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float in [0, 1] -> uint8, rounded (the official script truncates: see docs)."""
    return (np.clip(image, 0.0, 1.0) * 255.0).round().astype(np.uint8)
