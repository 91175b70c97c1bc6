"""What each restoration command does to an image around the network call.

A task turns a decoded image into the network's input and, afterwards, the network's output into
the final picture: `sr` resizes to `--outscale`, `inpaint` whitens the holes first and pastes the
untouched pixels back after, `recon` measures how faithful the reconstruction is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from adacode_cli.errors import ImageError
from adacode_cli.images.decode import LoadedImage
from adacode_cli.images.depth import to_bit_depth, white
from adacode_cli.images.masks import MaskSizeError, load_mask, match_mask
from adacode_cli.images.resize import resize_lanczos


@dataclass
class PreparedImage:
    """The network's input for one image and how to turn the network's output into the result."""

    network_input: np.ndarray
    finish: Callable[[np.ndarray], np.ndarray] = field(default=lambda restored: restored)


class Task(Protocol):
    """One restoration command's per-image steps."""

    name: str

    @property
    def output_scale(self) -> float:
        """The largest side of an array this task makes, per input pixel side."""
        ...

    def prepare(self, path: Path, image: LoadedImage) -> PreparedImage:
        """The network input for `image` (read from `path`) and its finishing step."""
        ...

    def measures(self, image: LoadedImage, result: np.ndarray) -> dict[str, float | None]:
        """Numbers reported beside each result (empty for most tasks)."""
        ...


@dataclass(frozen=True)
class SuperResolution:
    """`adacode sr`: the network's x2/x4, then a Lanczos resize to `outscale` if it differs."""

    scale: int
    outscale: float
    name: str = "sr"

    @property
    def output_scale(self) -> float:
        return max(self.scale, self.outscale)

    def prepare(self, path: Path, image: LoadedImage) -> PreparedImage:
        height, width = image.rgb.shape[:2]
        final = (max(1, round(height * self.outscale)), max(1, round(width * self.outscale)))
        if final == (height * self.scale, width * self.scale):
            return PreparedImage(image.rgb)
        return PreparedImage(image.rgb, lambda restored: resize_lanczos(restored, final))

    def measures(self, image: LoadedImage, result: np.ndarray) -> dict[str, float | None]:
        return {}


@dataclass(frozen=True)
class Inpainting:
    """`adacode inpaint`: holes (non-zero mask pixels) filled pure white, as the model was
    trained; with `paste_back` every pixel outside the holes is the input's, bit for bit."""

    mask_spec: Path
    dilate: int
    paste_back: bool
    resize_mask: bool
    name: str = "inpaint"
    output_scale: float = 1.0

    def prepare(self, path: Path, image: LoadedImage) -> PreparedImage:
        mask_path = match_mask(path, self.mask_spec)
        try:
            holes = load_mask(
                mask_path, image.rgb.shape[:2], dilate=self.dilate, resize=self.resize_mask
            )
        except MaskSizeError as error:  # fail this image, and say how to allow it
            raise ImageError(
                f"{error}; pass --resize-mask to resize it, or supply a mask of the image's size"
            ) from error
        filled = image.rgb.copy()
        filled[holes] = white(filled.dtype)
        if not self.paste_back:
            return PreparedImage(filled)

        def paste_back(restored: np.ndarray) -> np.ndarray:
            result = image.rgb.copy()
            result[holes] = restored[holes]
            return result

        return PreparedImage(filled, paste_back)

    def measures(self, image: LoadedImage, result: np.ndarray) -> dict[str, float | None]:
        return {}


@dataclass(frozen=True)
class Reconstruction:
    """`adacode recon`: a stage-2 (or stage-1) autoencoder; reports the PSNR of the result
    against its input."""

    name: str = "recon"
    output_scale: float = 1.0

    def prepare(self, path: Path, image: LoadedImage) -> PreparedImage:
        return PreparedImage(image.rgb)

    def measures(self, image: LoadedImage, result: np.ndarray) -> dict[str, float | None]:
        return {"psnr": psnr(image.rgb, result)}


def psnr(reference: np.ndarray, result: np.ndarray) -> float | None:
    """adacode's one PSNR (`train.metrics.psnr_y`: Y channel of the 8-bit images, 4 px border,
    as `adacode eval` and training validation); None when the images are identical (infinite
    PSNR, which JSON cannot carry) or too small for the border."""
    from adacode_cli.train.metrics import psnr_y

    try:
        value = psnr_y(to_bit_depth(result, 8), to_bit_depth(reference, 8))
    except ValueError:
        return None
    return None if math.isinf(value) else value
