"""Inpainting masks: which pixels are holes, and which mask file belongs to which image."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from adacode_cli.errors import AdaCodeError, ImageError
from adacode_cli.images.decode import read_image, read_size
from adacode_cli.images.formats import is_image_path
from adacode_cli.images.inputs import resolved, what_is
from adacode_cli.images.resize import resize_nearest
from adacode_cli.video.codecs import ANIMATED_EXTENSIONS, VIDEO_EXTENSIONS

_LOSSY_FORMATS = frozenset({"JPEG", "MPO"})
_FRAME_NUMBER = re.compile(r"(\d+)$")


class MaskSizeError(ImageError):
    """A mask whose size is not its image's (the caller says how to allow resizing)."""


def load_mask(
    path: Path, shape: tuple[int, int], *, dilate: int = 0, resize: bool = False
) -> np.ndarray:
    """The holes of mask file `path` as an HxW bool array for an image of `shape` (height, width).

    A pixel is a hole when any colour channel is non-zero (so white-on-black masks and 0/1 label
    maps both work) and, where the mask has alpha, it is not fully transparent. A mask drawn only
    in its alpha channel (black everywhere, holes painted opaque on a transparent background) has
    its opaque pixels as holes. JPEG masks are cut at half intensity instead, so compression
    noise around black does not become holes. A mask without any hole is an error: the network
    would run for nothing. A mask of another size is an error unless `resize` (nearest
    neighbour); `dilate` grows every hole by that many pixels (a square neighbourhood).
    """
    mask = read_image(path)
    lossy = mask.format in _LOSSY_FORMATS
    threshold = (255 if mask.bit_depth == 8 else 65535) // 2 if lossy else 0
    painted = mask.rgb.max(axis=2) > threshold
    if mask.alpha is None:
        holes = painted
    elif painted.any():
        holes = painted & (mask.alpha > 0)
    else:
        holes = mask.alpha > 0
        if holes.all():  # opaque black: no hole drawn in either way
            holes[:] = False
    if holes.shape != tuple(shape):
        if not resize:
            raise MaskSizeError(
                f"{path}: the mask is {holes.shape[1]}x{holes.shape[0]} but its image is "
                f"{shape[1]}x{shape[0]} (width x height)"
            )
        holes = resize_nearest(holes, shape)
    if not holes.any():
        raise ImageError(
            f"{path}: the mask marks no holes (every pixel is black or transparent); holes are "
            "white or non-zero pixels, or opaque pixels of a mask drawn only in its alpha channel"
        )
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


def match_mask(input_path: Path, mask_spec: Path,
               index: dict[str, list[Path]] | None = None) -> Path:
    """The mask for `input_path`: `mask_spec` itself when it is a file, else the image in the
    folder `mask_spec` with the input's stem (any image extension). `index` is the folder's
    `mask_index`, when the caller matches many inputs."""
    if mask_spec.is_file():
        return mask_spec
    if not mask_spec.is_dir():
        kind = what_is(mask_spec)
        if kind == "missing":
            raise AdaCodeError(f"{mask_spec}: no such mask file or folder")
        raise AdaCodeError(f"{mask_spec}: {kind}, not a mask image or a folder of them")
    own = resolved(input_path)  # a mask folder may also hold the inputs
    named = (index if index is not None else mask_index(mask_spec)).get(input_path.stem, [])
    candidates = sorted(path for path in named if path.is_file() and resolved(path) != own)
    if not candidates:
        raise ImageError(f"{input_path}: no mask named {input_path.stem}.* in {mask_spec}")
    if len(candidates) > 1:
        raise ImageError(
            f"{input_path}: several masks match "
            f"({', '.join(path.name for path in candidates)}) in {mask_spec}"
        )
    return candidates[0]


def mask_index(folder: Path) -> dict[str, list[Path]]:
    """The image names in a mask folder by stem (hidden files left out): listed once, so
    matching N inputs costs one listing, not N (10 000 images took minutes)."""
    index: dict[str, list[Path]] = {}
    for path in folder.iterdir():
        if is_image_path(path) and not path.name.startswith("."):
            index.setdefault(path.stem, []).append(path)
    return index


def frame_masks(video: Path, folder: Path) -> tuple[Path | None, dict[int, Path]]:
    """The masks in `folder` for a video: the one named after it (for every frame), and the
    numbered per-frame masks by number (`frame_000123.png`: 123)."""
    candidates = sorted(p for p in folder.iterdir()
                        if is_image_path(p) and p.is_file() and not p.name.startswith("."))
    own = next((path for path in candidates if path.stem == video.stem), None)
    numbered: dict[int, Path] = {}
    for path in candidates:
        if (match := _FRAME_NUMBER.search(path.stem)) is not None:
            numbered.setdefault(int(match.group(1)), path)
    return own, numbered


def masks_for(inputs: list[Path], mask_spec: Path, resize: bool = False) -> list[Path]:
    """The mask files the inputs will use, checked before any work: a mask file that is not an
    image, is damaged (truncated), marks no hole or (unless `resize`) has the size of no input
    (it would fail every input), or a mask folder that holds a mask for none of the inputs, is
    a usage error (a folder without masks for some of them: those images fail)."""
    if mask_spec.is_file():
        try:
            width, height = read_size(mask_spec)
            load_mask(mask_spec, (height, width))  # decoded once: every pixel must be there
        except ImageError as error:
            raise AdaCodeError(f"--mask {error}") from error
        if not resize:
            _refuse_if_no_input_fits(inputs, mask_spec, (width, height))
        return [mask_spec]
    found = []
    index = mask_index(mask_spec) if mask_spec.is_dir() else None
    for path in inputs:
        try:
            found.append(match_mask(path, mask_spec, index))
        except ImageError:
            if path.suffix.lower() in VIDEO_EXTENSIONS | ANIMATED_EXTENSIONS:
                found += frame_masks(path, mask_spec)[1].values()
    if not found:
        raise AdaCodeError(f"{mask_spec}: no mask named after any input (<input stem>.<ext>)")
    return sorted(set(found))


def _refuse_if_no_input_fits(inputs: list[Path], mask: Path, size: tuple[int, int]) -> None:
    """One mask whose size no input image has would fail every input: a usage error. Headers
    are read until one input fits; either orientation counts (only decoding settles a rare
    late EXIF), and a video or an unreadable input leaves the verdict to each image."""
    sizes: dict[Path, tuple[int, int]] = {}
    for path in inputs:
        if path.suffix.lower() in VIDEO_EXTENSIONS:
            return
        try:
            width, height = read_size(path)
        except ImageError:
            return
        if size in ((width, height), (height, width)):
            return
        sizes[path] = (width, height)
    if sizes:
        first, (width, height) = next(iter(sizes.items()))
        raise AdaCodeError(
            f"--mask {mask}: the mask is {size[0]}x{size[1]} but no input is (e.g. {first} is "
            f"{width}x{height}); pass --resize-mask to resize it, or supply a mask of the "
            "images' size"
        )
