"""Is an image's pixel data complete? Pillow cannot always say.

When a file's compressed data ends properly but covers fewer rows than its header declares,
Pillow returns the image without an error and fills the rest (black for PNG, grey for JPEG).
Files cut short are caught by Pillow itself ("image file is truncated"); these checks catch the
data that ends cleanly but early:

- PNG, exactly: the bytes the IDAT stream inflates to (counted in bounded pieces, never holding
  the image) against what the header's size, bit depth, colour type and interlacing require.
- JPEG, by a bound: every 8x8 block of every scan line needs at least one bit of coded data
  (Huffman codes are at least one bit long), so a file smaller than one bit per MCU cannot hold
  the size it declares. This catches a tiny file declaring a huge image, not every early end.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
# Adam7 passes: (first row, first column, row step, column step).
_ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2),
          (1, 0, 2, 1))
_PIECE = 1 << 20  # inflate at most this many bytes at a time
_JPEG_FRAMES = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE,
                          0xCF})  # start-of-frame markers (not DHT 0xC4, JPG 0xC8, DAC 0xCC)


def png_shortfall(stream: BinaryIO) -> str | None:
    """What is missing, in words, when the PNG in `stream` holds fewer pixel bytes than its
    header declares; None when it is complete or not a PNG this check understands."""
    if stream.read(8) != _SIGNATURE:
        return None
    header = _next_chunk(stream)
    if header is None or header[0] != b"IHDR" or len(header[1]) < 13:
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header[1][:13])
    if colour not in _CHANNELS:
        return None
    bits = depth * _CHANNELS[colour]
    needed = _raw_size(width, height, bits, interlace == 1)
    inflated = _inflated_size(stream, needed)
    if inflated >= needed:
        return None
    if interlace == 1:
        return f"the interlaced pixel data stops at {inflated} of {needed} bytes"
    return f"the pixel data holds {inflated // (1 + (width * bits + 7) // 8)} of {height} rows"


def jpeg_shortfall(stream: BinaryIO) -> str | None:
    """What is missing, in words, when the JPEG in `stream` is too small to hold the size its
    frame header declares; None otherwise (or when it is not a JPEG this check understands)."""
    if stream.read(2) != b"\xff\xd8":
        return None
    while (marker := _next_jpeg_segment(stream)) is not None:
        kind, data = marker
        if kind in _JPEG_FRAMES and len(data) >= 6:
            height, width, count = struct.unpack(">HHB", data[1:6])
            factors = [data[7 + 3 * k] for k in range(count) if len(data) >= 9 + 3 * k]
            if not factors:
                return None
            h_max = max(f >> 4 for f in factors) or 1
            v_max = max(f & 15 for f in factors) or 1
            units = (width // (8 * h_max)) * (height // (8 * v_max))
            size = stream.seek(0, 2)
            if size * 8 < units:
                return (f"{size} bytes cannot hold the {width}x{height} pixels the header "
                        "declares")
            return None
    return None


def _next_jpeg_segment(stream: BinaryIO) -> tuple[int, bytes] | None:
    """The next marker segment's (marker, data) before the first scan; None at a scan or EOF."""
    head = stream.read(4)
    if len(head) < 4 or head[0] != 0xFF or head[1] in (0xDA, 0xD9):
        return None
    length = struct.unpack(">H", head[2:])[0]
    return head[1], stream.read(max(0, length - 2))


def _raw_size(width: int, height: int, bits: int, interlaced: bool) -> int:
    """Bytes of filtered scanlines (one filter byte per row) the image's pixels need."""
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    total = 0
    for row, column, row_step, column_step in passes:
        rows = (height - row + row_step - 1) // row_step if height > row else 0
        columns = (width - column + column_step - 1) // column_step if width > column else 0
        if rows and columns:
            total += rows * (1 + (columns * bits + 7) // 8)
    return total


def _inflated_size(stream: BinaryIO, needed: int) -> int:
    """How many bytes the IDAT chunks inflate to, stopping once `needed` is reached."""
    inflater = zlib.decompressobj()
    total = 0
    seen_data = False
    while (chunk := _next_chunk(stream)) is not None:
        kind, data = chunk
        if kind != b"IDAT":
            if seen_data or kind == b"IEND":
                break
            continue
        seen_data = True
        try:
            while data and total < needed:
                total += len(inflater.decompress(data, _PIECE))
                data = inflater.unconsumed_tail
        except zlib.error:
            return total
        if total >= needed or inflater.eof:
            break
    return total


def _next_chunk(stream: BinaryIO) -> tuple[bytes, bytes] | None:
    """The next chunk's (type, data), skipping its CRC; None at the end of the file."""
    head = stream.read(8)
    if len(head) < 8:
        return None
    length, kind = struct.unpack(">I4s", head)
    data = stream.read(length)
    stream.read(4)
    return kind, data
