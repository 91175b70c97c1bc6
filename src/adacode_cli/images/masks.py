"""Inpainting masks: which pixels are holes, and which mask file belongs to which image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adacode_cli.errors import AdaCodeError, ImageError
from adacode_cli.images.decode import read_image
from adacode_cli.images.formats import is_image_path
from adacode_cli.images.resize import resize_nearest

_LOSSY_FORMATS = frozenset({"JPEG", "MPO"})


def load_mask(
    path: Path, shape: tuple[int, int], *, dilate: int = 0, resize: bool = False
) -> np.ndarray:
    """The holes of mask file `path` as an HxW bool array for an image of `shape` (height, width).

    A pixel is a hole when any colour channel is non-zero (so white-on-black masks and 0/1 label
    maps both work) and, where the mask has alpha, it is not fully transparent. JPEG masks are
    cut at half intensity instead, so compression noise around black does not become holes.
    A mask of another size is a usage error unless `resize` (nearest neighbour); `dilate` grows
    every hole by that many pixels (a square neighbourhood).
    """
    mask = read_image(path)
    threshold = (255 if mask.bit_depth == 8 else 65535) // 2 if mask.format in _LOSSY_FORMATS else 0
    holes = mask.rgb.max(axis=2) > threshold
    if mask.alpha is not None:
        holes &= mask.alpha > 0
    if holes.shape != tuple(shape):
        if not resize:
            raise AdaCodeError(
                f"{path}: mask is {holes.shape[1]}x{holes.shape[0]} but the image is "
                f"{shape[1]}x{shape[0]} (width x height); allow resizing or supply a matching mask"
            )
        holes = resize_nearest(holes, shape)
    return dilate_mask(holes, dilate) if dilate > 0 else holes


def dilate_mask(holes: np.ndarray, radius: int) -> np.ndarray:
    """Grow the True region of `holes` by `radius` pixels in every direction (a square element).

    A separable running maximum: along each axis a pixel becomes True when its window of
    2*radius+1 pixels holds any True, counted with a cumulative sum in O(H*W).
    """
    grown = holes
    for axis in (0, 1):
        grown = _window_any(grown, radius, axis)
    return grown


def _window_any(holes: np.ndarray, radius: int, axis: int) -> np.ndarray:
    length = holes.shape[axis]
    counts = np.cumsum(holes, axis=axis, dtype=np.int64)
    padded = np.concatenate([np.zeros_like(np.take(counts, [0], axis=axis)), counts], axis=axis)
    index = np.arange(length)
    upper = np.take(padded, np.minimum(index + radius + 1, length), axis=axis)
    lower = np.take(padded, np.maximum(index - radius, 0), axis=axis)
    return upper - lower > 0


def match_mask(input_path: Path, mask_spec: Path) -> Path:
    """The mask for `input_path`: `mask_spec` itself when it is a file, else the image in the
    folder `mask_spec` with the input's stem (any image extension)."""
    if mask_spec.is_file():
        return mask_spec
    if not mask_spec.is_dir():
        raise AdaCodeError(f"{mask_spec}: no such mask file or folder")
    own = input_path.resolve()  # a mask folder may also hold the inputs
    candidates = sorted(
        path
        for path in mask_spec.iterdir()
        if path.stem == input_path.stem
        and is_image_path(path)
        and not path.name.startswith(".")
        and path.is_file()
        and path.resolve() != own
    )
    if not candidates:
        raise ImageError(f"{input_path}: no mask named {input_path.stem}.* in {mask_spec}")
    if len(candidates) > 1:
        raise ImageError(
            f"{input_path}: several masks match "
            f"({', '.join(path.name for path in candidates)}) in {mask_spec}"
        )
    return candidates[0]
