"""Read an image file into RGB numpy arrays plus everything needed to write it back faithfully."""

from __future__ import annotations

import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from adacode_cli.errors import ImageError
from adacode_cli.images.deep import is_wide, load_wide
from adacode_cli.images.formats import PILLOW_READ_FORMATS
from adacode_cli.images.orientation import make_upright, orientation_of, reset_orientation
from adacode_cli.images.samples import is_single_channel_wide, narrowing, refusal, wide_grey
from adacode_cli.images.truncation import (
    gif_shortfall,
    is_cut,
    jpeg_scan_cut,
    jpeg_shortfall,
    png_shortfall,
    unidentified,
)

# Pillow modes -> the mode converted to before reading the pixels (8-bit unless noted).
_CONVERT = {
    "1": "L",
    "L": "L",
    "LA": "LA",
    "La": "LA",
    "P": "RGB",  # RGBA when the palette has a transparent entry
    "PA": "RGBA",
    "RGB": "RGB",
    "RGBX": "RGB",
    "YCbCr": "RGB",
    "HSV": "RGB",
    "CMYK": "RGB",
    "RGBA": "RGBA",
    "RGBa": "RGBA",
}
# Failures a damaged or hostile file can make Pillow raise while identifying or decoding it.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error,
                  zlib.error)
# Pixel data that ends cleanly but early, which Pillow fills in silently (see images.truncation).
_SHORTFALL_CHECKS = {"PNG": png_shortfall, "JPEG": jpeg_shortfall, "MPO": jpeg_shortfall,
                     "GIF": gif_shortfall}
# EXIF orientations that swap width and height (a quarter turn, with or without a flip).
_TRANSPOSING = frozenset({5, 6, 7, 8})


@dataclass
class LoadedImage:
    """Pixels of an image (upright) and the metadata `write_image` needs to reproduce the file."""

    rgb: np.ndarray  # HxWx3 uint8, uint16 or float32 in [0, 1]; grey repeated into 3 channels
    alpha: np.ndarray | None  # HxW, same dtype as rgb
    is_grayscale: bool  # the source had one colour channel: write it back as grey
    bit_depth: int  # 8, 16 or depth.FLOAT_DEPTH (32-bit float samples)
    icc_profile: bytes | None
    exif: bytes | None  # orientation reset to 1 once applied to the pixels
    format: str  # Pillow's format name, e.g. "PNG"
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MemoryBudget:
    """Bytes of memory free for one image, and the side of its result per input pixel side
    (the scale): the decoded image and its result must fit before decoding starts."""

    available: int
    output_scale: float = 1.0

    def needed(self, image: Image.Image) -> int:
        """Bytes of Pillow's decoded image, our RGB array and the result array."""
        wide = image.mode.startswith("I;") or is_wide(image)
        sample = 4 if image.mode == "F" else 2 if wide else 1
        bands = len(image.getbands())
        per_pixel = bands * sample + 3 * sample * (1 + self.output_scale**2)
        return int(image.size[0] * image.size[1] * per_pixel)


def read_image(
    path: str | PathLike[str],
    *,
    max_pixels: int | None = None,
    budget: MemoryBudget | None = None,
    read_before: bool = False,
) -> LoadedImage:
    """Read `path`; any problem with the file raises `ImageError` naming it.

    `max_pixels` (default: Pillow's `Image.MAX_IMAGE_PIXELS`) refuses images larger than that
    before decoding, so a small hostile file cannot expand into gigabytes of memory; `budget`
    refuses, also before decoding, an image whose arrays would not fit in the memory free.
    Pixel data that stops short of the declared size is an error, never black rows.
    `read_before`: this process read the file whole already (a training set, checked at the
    start and read again for every sample), so the one costly check, a second decode of a
    JPEG for a cut inside its last scan, is not repeated.
    """
    path = Path(path)
    with _opened(path, max_pixels) as image:
        if (reason := refusal(image)) is not None:
            raise ImageError(f"{path}: {reason}")
        if budget is not None:
            _check_memory(image, path, budget)
        _check_complete(image, path)
        return _load(image, path, read_before)


def read_size(path: str | PathLike[str]) -> tuple[int, int]:
    """(width, height) of the image `read_image` returns, from the file's header alone: cheap
    enough to check a whole data set before training."""
    path = Path(path)
    with _opened(path, None) as image:
        width, height = image.size  # Pillow already reports a TIFF's upright size
        if image.format != "TIFF" and _header_orientation(image) in _TRANSPOSING:
            return height, width
        return width, height


def _header_orientation(image: Image.Image) -> int:
    """The EXIF orientation, without decoding pixels: a PNG whose EXIF follows its pixel data
    counts as upright, since finding that EXIF means decoding the image."""
    if image.format == "PNG" and "exif" not in image.info:
        return 1
    return orientation_of(image)


@contextmanager
def _opened(path: Path, max_pixels: int | None) -> Iterator[Image.Image]:
    """The image open for reading; a problem with the file, opening or decoding it in the
    `with` block, becomes an `ImageError` naming `path`."""
    try:
        if path.is_file() and path.stat().st_size == 0:
            raise ImageError(f"{path}: empty file")
        with warnings.catch_warnings():
            # The size check below decides; Pillow's warning would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=PILLOW_READ_FORMATS) as image:
                _check_size(image, path, max_pixels)
                yield image
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: refused, possible decompression bomb ({exc})") from exc
    except FileNotFoundError as exc:
        raise ImageError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise ImageError(f"{path}: is a folder, not an image") from exc
    except PermissionError as exc:
        raise ImageError(f"{path}: permission denied") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{path}: {unidentified(path)}") from exc
    except DECODE_ERRORS as exc:
        if "truncated" in str(exc).lower() or is_cut(path):  # Pillow ran out of bytes
            raise ImageError(f"{path}: truncated image ({_one_line(exc)})") from exc
        raise ImageError(f"{path}: cannot decode image ({_one_line(exc)})") from exc


def _check_size(image: Image.Image, path: Path, max_pixels: int | None) -> None:
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    width, height = image.size
    if limit is not None and width * height > limit:
        raise ImageError(
            f"{path}: {width}x{height} pixels is over the limit of {limit} pixels "
            "(a guard against decompression bombs)"
        )


def _check_complete(image: Image.Image, path: Path) -> None:
    """Refuse, before decoding, pixel data that ends cleanly but short of the declared size."""
    check = _SHORTFALL_CHECKS.get(image.format or "")
    if check is None:
        return
    with open(path, "rb") as stream:
        shortfall = check(stream)
    if shortfall is not None:
        raise ImageError(f"{path}: truncated image: {shortfall}")


def _check_memory(image: Image.Image, path: Path, budget: MemoryBudget) -> None:
    needed = budget.needed(image)
    if needed > budget.available:
        width, height = image.size
        raise ImageError(
            f"{path}: {width}x{height} pixels needs about {needed / 2**30:.1f} GiB for the image "
            f"and its result, more than the {budget.available / 2**30:.1f} GiB of memory "
            "available; refused"
        )


def _load(image: Image.Image, path: Path, read_before: bool = False) -> LoadedImage:
    # Pixels first: reading metadata (getexif) may load the image and drop the tiles that
    # the 16-bit decoder needs.
    narrowed = narrowing(image)
    if is_wide(image):
        pixels, bit_depth = load_wide(image), 16
    else:
        pixels, bit_depth = _pixels(image, path)
    if image.format in ("JPEG", "MPO") and not read_before \
            and (cut := jpeg_scan_cut(path, image)) is not None:
        raise ImageError(f"{path}: truncated image: {cut}")
    notes = [] if narrowed is None else [f"{path}: {narrowed}"]
    try:
        frames = getattr(image, "n_frames", 1)
    except DECODE_ERRORS:  # counting reads every frame: a file cut after the first one
        notes.append(f"{path}: the frames after the first are damaged (a truncated file?); "
                     "only the first is used")
        frames = 1
    if frames > 1 and image.format != "MPO":  # MPO extra frames are camera previews
        notes.append(f"{path}: {frames} frames; only the first is used")
    icc_profile = image.info.get("icc_profile") or None
    if image.mode == "CMYK" and icc_profile:
        icc_profile = None  # a CMYK profile does not describe the converted RGB pixels
        notes.append(f"{path}: CMYK converted to RGB without colour management")
    orientation = orientation_of(image)
    exif = image.info.get("exif") or None
    if exif and orientation != 1:
        exif = reset_orientation(exif)
    pixels = make_upright(pixels, orientation)

    is_grayscale = pixels.shape[2] <= 2
    colour = np.repeat(pixels[..., :1], 3, axis=2) if is_grayscale else pixels[..., :3]
    has_alpha = pixels.shape[2] in (2, 4)
    return LoadedImage(
        rgb=np.ascontiguousarray(colour),
        alpha=np.ascontiguousarray(pixels[..., -1]) if has_alpha else None,
        is_grayscale=is_grayscale,
        bit_depth=bit_depth,
        icc_profile=icc_profile,
        exif=exif,
        format=image.format or "",
        warnings=notes,
    )


def _pixels(image: Image.Image, path: Path) -> tuple[np.ndarray, int]:
    """Decode a Pillow-supported mode to HxWxC (C = 1, 2, 3 or 4) and its bit depth."""
    if is_single_channel_wide(image):
        grey, bit_depth, problem = wide_grey(image)
        if problem is not None:
            raise ImageError(f"{path}: {problem}")
        return grey, bit_depth
    image.load()
    target = _CONVERT.get(image.mode)
    if target is None:
        raise ImageError(f"{path}: unsupported pixel mode {image.mode}")
    if image.mode == "P" and "transparency" in image.info:
        target = "RGBA"
    pixels = np.asarray(image if image.mode == target else image.convert(target))
    return (pixels[..., None] if pixels.ndim == 2 else pixels), 8


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
