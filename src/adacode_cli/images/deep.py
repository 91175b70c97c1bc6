"""Read 16-bit colour PNG and TIFF files bit-exactly with Pillow, which only offers 8-bit RGB(A).

Pillow decodes a 16-bit colour file with an "unpacker" that keeps one byte of each sample. The
decompression and PNG un-filtering are done on whole samples before that step, so decoding twice,
once keeping the high byte and once the low byte, and joining the halves gives the exact values.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFile

# Pillow raw modes of 16-bit colour data that its 8-bit RGB / RGBA modes truncate.
_WIDE_RAWMODES = frozenset(
    f"{layout};16{order}" for layout in ("RGB", "RGBA", "RGBX") for order in "BLN"
)
_GREY_ALPHA_16 = "LA;16B"  # 16-bit grey+alpha PNG: Pillow would return 8-bit RGBA


def is_wide(image: Image.Image) -> bool:
    """True when `image` (opened, not loaded) holds 16-bit colour or grey+alpha samples."""
    rawmodes = {_rawmode(tile) for tile in image.tile}
    return bool(rawmodes) and rawmodes <= (_WIDE_RAWMODES | {_GREY_ALPHA_16})


def load_wide(image: Image.Image) -> np.ndarray:
    """Decode an `is_wide` image to HxWxC uint16: C is 2 (grey, alpha), 3 or 4 (RGB(A))."""
    tiles = list(image.tile)
    if _rawmode(tiles[0]) == _GREY_ALPHA_16:
        # 16-bit grey+alpha has 4 bytes per pixel like 8-bit RGBA: read the bytes as they are.
        planes = _decode(image, tiles, lambda rawmode: "RGBA").astype(np.uint16)
        return planes[..., 0::2] << 8 | planes[..., 1::2]
    high = _decode(image, tiles, _high_byte)
    low = _decode(image, tiles, _low_byte)
    return high.astype(np.uint16) << 8 | low


def _decode(
    image: Image.Image, tiles: list[ImageFile._Tile], rawmode_of: Callable[[str], str]
) -> np.ndarray:
    """Decode `image` from its file again with each tile's raw mode replaced."""
    with Image.open(image.filename, formats=[image.format]) as copy:
        copy.tile = [_with_rawmode(tile, rawmode_of(_rawmode(tile))) for tile in tiles]
        copy.load()
        return np.asarray(copy)


def _high_byte(rawmode: str) -> str:
    return rawmode


def _low_byte(rawmode: str) -> str:
    order = rawmode[-1]
    if order == "N":
        order = "L" if sys.byteorder == "little" else "B"
    return rawmode[:-1] + ("B" if order == "L" else "L")


def _rawmode(tile: ImageFile._Tile) -> str:
    return tile.args if isinstance(tile.args, str) else tile.args[0]


def _with_rawmode(tile: ImageFile._Tile, rawmode: str) -> ImageFile._Tile:
    args = rawmode if isinstance(tile.args, str) else (rawmode, *tile.args[1:])
    return tile._replace(args=args)
