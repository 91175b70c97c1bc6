"""What validation compares the network with: the simplest method for the same task and input.

A PSNR of 19.6 dB means nothing until it stands beside the 26.5 dB that plain bicubic upscaling
reaches on the same images, so every validation scores a baseline next to the model:
- super-resolution: bicubic upscaling of the low-quality input (MATLAB's `imresize`, the
  resampler super-resolution papers report bicubic with);
- inpainting: the masked input with every hole filled by the mean colour of the known pixels;
- reconstruction (stages 1-2): the identity, the input itself, the ceiling a reconstruction
  approaches (infinite PSNR, SSIM 1, LPIPS 0).
"""

from __future__ import annotations

import numpy as np

from adacode_cli.images.depth import to_bit_depth
from adacode_cli.train.resize import imresize_matlab

BASELINE_NAMES = {"sr": "bicubic", "inpaint": "mean fill", "hq": "identity"}


def bicubic_upscale(lq: np.ndarray, scale: int) -> np.ndarray:
    """HxWx3 float [0, 1] -> (H*scale)x(W*scale)x3 uint8, MATLAB bicubic."""
    return to_bit_depth(np.clip(imresize_matlab(lq, float(scale)), 0.0, 1.0), 8)


def mean_fill(lq: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """HxWx3 float [0, 1] with HxW bool `holes` -> uint8, holes set to the known pixels' mean."""
    known = lq[~holes]
    colour = known.mean(axis=0) if known.size else np.full(3, 0.5, dtype=np.float32)
    return to_bit_depth(np.where(holes[..., None], colour, lq).astype(np.float32), 8)


def white_holes(lq: np.ndarray) -> np.ndarray:
    """The holes of a masked input read from a file: pixels pure white in every channel."""
    return np.all(lq >= 1.0, axis=2)
