"""Folders of training and evaluation images, through the images layer.

Training works on 8-bit RGB, as the official data pipeline does: 16-bit files are reduced to 8
bits, grey is expanded to RGB and alpha is dropped. Only the folder rules are training's own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adacode_cli.errors import AdaCodeError
from adacode_cli.images.decode import read_image
from adacode_cli.images.depth import to_bit_depth
from adacode_cli.images.inputs import images_in


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively (as the official `make_dataset`), sorted."""
    if not folder.is_dir():
        raise AdaCodeError(f"{folder}: not a folder")
    found = images_in(folder, recursive=True)
    if not found:
        raise AdaCodeError(f"{folder}: no images found")
    return found


def read_rgb(path: Path, read_before: bool = False) -> np.ndarray:
    """HxWx3 uint8 RGB, upright; a file that cannot be read raises `ImageError`.
    `read_before`: see `read_image`."""
    return to_bit_depth(read_image(path, read_before=read_before).rgb, 8)
