"""Training pairs as the official datasets build them: random resize, 256 crop, flips/rotation.

Stage 3 is the only stage with a low-quality input (stages 1-2 train on clean crops alone).
`bsrgan_pair` is `BSRGANTrainDataset` (stage 3 super-resolution without `--lq`: the LQ crop is
synthesised on the fly from the HQ crop); `paired_crop` is the training branch of
`PairedImageDataset` (stage 3 with `--lq`: pre-degraded files such as `adacode data degrade`
writes, or masked images for inpainting at scale 1). A pair's LQ side is its HQ side // scale:
HQ rows and columns beyond LQ * scale are ignored, as the degradation drops them. Images are
HxWx3 float32 RGB in [0, 1]; every random choice comes from the `numpy.random.Generator` passed in.
"""

from __future__ import annotations

import numpy as np

from adacode_cli.errors import ImageError
from adacode_cli.train.degradations import degrade_bsrgan
from adacode_cli.train.resize import resize_by

GT_SIZE = 256


def bsrgan_pair(
    gt: np.ndarray,
    scale: int,
    rng: np.random.Generator,
    *,
    gt_size: int = GT_SIZE,
    resize_crop: bool = True,
    flip: bool = True,
    rotate: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """(lq, gt): gt a gt_size crop (randomly shrunk first), lq its BSRGAN degradation."""
    if resize_crop:
        _check_size(gt, gt_size)
        short = min(gt.shape[:2])  # the official uses the height: portraits then crash
        size = int(rng.integers(gt_size, short + 1))
        gt = resize_by(gt, size / short, "bicubic")
    gt = _random_crop(gt, gt_size, rng)
    lq, gt = degrade_bsrgan(gt, scale, rng)
    gt, lq = augment([gt, lq], rng, flip=flip, rotate=rotate)
    return lq, gt


def pair_mismatch(
    hq_size: tuple[int, int], lq_size: tuple[int, int], scale: int, hq_name: str
) -> str | None:
    """Why (width, height) sizes are no x`scale` pair (LQ side = HQ side // scale), or None."""
    expected = (hq_size[0] // scale, hq_size[1] // scale)
    if lq_size == expected:
        return None
    return (f"{lq_size[0]}x{lq_size[1]} is not 1/{scale} of {hq_name} "
            f"({hq_size[0]}x{hq_size[1]}): expected {expected[0]}x{expected[1]}")


def aligned_pair(gt: np.ndarray, lq: np.ndarray, scale: int) -> np.ndarray:
    """`gt` cropped to exactly `scale` times `lq` (an HQ side one to scale-1 pixels longer, as
    `adacode data degrade` leaves it, loses its last rows or columns); other sizes refused."""
    mismatch = pair_mismatch((gt.shape[1], gt.shape[0]), (lq.shape[1], lq.shape[0]), scale,
                             "its reference")
    if mismatch:
        raise ImageError(f"low-quality image {mismatch} its reference")
    return gt[: lq.shape[0] * scale, : lq.shape[1] * scale]


def paired_crop(
    gt: np.ndarray,
    lq: np.ndarray,
    rng: np.random.Generator,
    *,
    scale: int,
    gt_size: int = GT_SIZE,
    resize_crop: bool = True,
    flip: bool = True,
    rotate: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """(lq, gt) aligned crops of an existing x`scale` pair (see `aligned_pair`)."""
    gt = aligned_pair(gt, lq, scale)
    if resize_crop:
        _check_size(gt, gt_size)
        short = min(gt.shape[:2])  # the official uses the height: portraits then crash
        size = int(rng.integers(gt_size, short + 1))
        factor = (size - size % scale) / short
        gt, lq = _trim_to_pair(resize_by(gt, factor, "bicubic"), resize_by(lq, factor, "bicubic"),
                               scale)
    lq_size = gt_size // scale
    _check_size(lq, lq_size)
    top = int(rng.integers(0, lq.shape[0] - lq_size + 1))
    left = int(rng.integers(0, lq.shape[1] - lq_size + 1))
    lq = lq[top : top + lq_size, left : left + lq_size]
    gt = gt[top * scale : top * scale + gt_size, left * scale : left * scale + gt_size]
    gt, lq = augment([gt, lq], rng, flip=flip, rotate=rotate)
    return lq, gt


def augment(
    images: list[np.ndarray], rng: np.random.Generator, *, flip: bool = True, rotate: bool = True
) -> list[np.ndarray]:
    """The same random horizontal flip, vertical flip and transpose on every image (basicsr)."""
    hflip = flip and rng.random() < 0.5
    vflip = rotate and rng.random() < 0.5
    transpose = rotate and rng.random() < 0.5
    out = []
    for image in images:
        if hflip:
            image = image[:, ::-1]
        if vflip:
            image = image[::-1]
        if transpose:
            image = image.transpose(1, 0, 2)
        out.append(np.ascontiguousarray(image))
    return out


def _trim_to_pair(gt: np.ndarray, lq: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Rounding each resized side separately can leave gt a pixel off lq * scale (the official
    loader then stops with an error); trim both to the largest aligned size instead."""
    height = min(lq.shape[0], gt.shape[0] // scale)
    width = min(lq.shape[1], gt.shape[1] // scale)
    return gt[: height * scale, : width * scale], lq[:height, :width]


def _random_crop(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    _check_size(image, size)
    top = int(rng.integers(0, image.shape[0] - size + 1))
    left = int(rng.integers(0, image.shape[1] - size + 1))
    return image[top : top + size, left : left + size]


def _check_size(image: np.ndarray, size: int) -> None:
    if image.shape[0] < size or image.shape[1] < size:
        raise ImageError(f"image of {image.shape[1]}x{image.shape[0]} is smaller than {size}")
