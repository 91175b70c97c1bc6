"""Which of Pillow's single-channel sample types we read exactly, and which we refuse.

Pillow opens TIFFs of 12-bit, 16-bit signed, 32-bit integer and 32-bit float samples, and
CIE L*a*b* ones, in modes (`I;16`, `I`, `F`, `LAB`) whose values are not what a picture's
pixels mean at face value: 12-bit values are read as the low end of a 16-bit range, and Pillow's
`LAB` to RGB conversion copies the channels as they are. Each is either mapped exactly here or
refused with one line, before anything is decoded.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from adacode_cli.images.depth import FLOAT_DEPTH

_GREY_16 = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_TWELVE_BIT = "I;12"  # Pillow's raw mode of 12-bit grey TIFF samples, read into mode I;16
_SUGGESTION = "save it with 8- or 16-bit unsigned samples, or 32-bit float ones in [0, 1]"


def refusal(image: Image.Image) -> str | None:
    """Why `image` (opened, not loaded) cannot be read faithfully; None when it can."""
    if image.mode == "I":
        kind = "signed 16-bit" if "16" in _rawmodes(image) else "32-bit integer"
        return f"{kind} samples have no agreed brightness scale; {_SUGGESTION}"
    if image.mode == "LAB":
        return "CIE L*a*b* images are not read (convert them to RGB first)"
    return None


def narrowing(image: Image.Image) -> str | None:
    """A warning when Pillow decodes `image` (opened, not loaded) to fewer bits than it holds:
    16-bit CMYK and premultiplied-alpha TIFFs come out as 8-bit samples (the right values,
    rounded), which the wide readers in `images.deep` cannot split exactly."""
    rawmode = _rawmodes(image)
    if ";16" in rawmode and image.mode in ("CMYK", "RGBA"):
        return f"16-bit {rawmode.split(';')[0]} samples read as 8-bit ones"
    return None


def is_single_channel_wide(image: Image.Image) -> bool:
    """True for the grey modes `wide_grey` reads: 12/16-bit integer and 32-bit float."""
    return image.mode in _GREY_16 or image.mode == "F"


def wide_grey(image: Image.Image) -> tuple[np.ndarray, int, str | None]:
    """Decode a grey `is_single_channel_wide` image: HxWx1 samples, their bit depth (16, or
    FLOAT_DEPTH for float32), and why they cannot be used (None when they can)."""
    twelve_bit = _rawmodes(image) == _TWELVE_BIT
    image.load()
    if image.mode == "F":
        samples = np.asarray(image, dtype=np.float32)
        return samples[..., None], FLOAT_DEPTH, _outside_unit_range(samples)
    grey = np.asarray(image).astype(np.uint16)
    if twelve_bit:  # 0..4095 onto 0..65535 exactly, as 8-bit values are widened (x * 257)
        grey = grey << 4 | grey >> 8
    return grey[..., None], 16, None


def _outside_unit_range(samples: np.ndarray) -> str | None:
    """Float samples are brightness in [0, 1]: others (HDR, depth, NaN) have no agreed scale."""
    if samples.size == 0:
        return None
    if not np.isfinite(samples).all():
        return f"float samples include NaN or infinity; {_SUGGESTION}"
    low, high = float(samples.min()), float(samples.max())
    if low < 0.0 or high > 1.0:
        return f"float samples span {low:g} to {high:g}, outside [0, 1]; {_SUGGESTION}"
    return None


def _rawmodes(image: Image.Image) -> str:
    """The raw mode of `image`'s first tile, e.g. "I;16S" ('' once loaded)."""
    if not image.tile:
        return ""
    args = image.tile[0].args
    return args if isinstance(args, str) else str(args[0])
