"""A TIFF writer for what Pillow cannot save: 16-bit RGB(A), and 32-bit float samples."""

from __future__ import annotations

import struct
import zlib

import numpy as np

NO_COMPRESSION = 1
DEFLATE = 8  # "Adobe deflate", readable by libtiff and every mainstream reader
_STRIP_BYTES = 1 << 18
_SHORT, _LONG, _UNDEFINED = 3, 4, 7
_SAMPLE_FORMATS = {np.dtype(np.uint16): 1, np.dtype(np.float32): 3}  # unsigned int, IEEE float


def encode_tiff(
    pixels: np.ndarray, *, icc_profile: bytes | None = None, compression: int = DEFLATE
) -> bytes:
    """Bytes of a little-endian TIFF of an HxWxC uint16 or float32 array (C = 1 grey, 3 RGB,
    4 RGBA).

    Grey+alpha is not offered: Pillow, and so `read_image`, cannot open such a file. Of the
    float files, Pillow (and so `read_image`) opens only the grey ones.
    """
    height, width, channels = pixels.shape
    sample_format = _SAMPLE_FORMATS[pixels.dtype]
    bits = 8 * pixels.dtype.itemsize
    little_endian = pixels.dtype.newbyteorder("<")
    data = np.ascontiguousarray(pixels, dtype=little_endian).view(np.uint8).reshape(height, -1)
    rows_per_strip = max(1, _STRIP_BYTES // data.shape[1])
    strips = [data[y : y + rows_per_strip].tobytes() for y in range(0, height, rows_per_strip)]
    if compression == DEFLATE:
        strips = [zlib.compress(strip, 6) for strip in strips]

    blobs: list[bytes] = []  # everything after the 8-byte header, before the IFD
    offset = 8

    def place(blob: bytes) -> int:
        nonlocal offset
        start = offset
        blobs.append(blob + b"\0" * (len(blob) % 2))  # keep every offset word-aligned
        offset += len(blobs[-1])
        return start

    strip_offsets = [place(strip) for strip in strips]
    tags: list[tuple[int, int, list[int] | bytes]] = [
        (256, _LONG, [width]),
        (257, _LONG, [height]),
        (258, _SHORT, [bits] * channels),
        (259, _SHORT, [compression]),
        (262, _SHORT, [2 if channels >= 3 else 1]),
        (273, _LONG, strip_offsets),
        (277, _SHORT, [channels]),
        (278, _LONG, [rows_per_strip]),
        (279, _LONG, [len(strip) for strip in strips]),
        (284, _SHORT, [1]),
        (339, _SHORT, [sample_format] * channels),
    ]
    if channels == 4:
        tags.append((338, _SHORT, [2]))  # extra sample: unassociated alpha
    if icc_profile:
        tags.append((34675, _UNDEFINED, icc_profile))

    entries = []
    for tag, kind, values in sorted(tags, key=lambda entry: entry[0]):  # TIFF wants tag order
        payload = values if isinstance(values, bytes) else _pack(kind, values)
        value = payload.ljust(4, b"\0") if len(payload) <= 4 else struct.pack("<I", place(payload))
        entries.append(struct.pack("<HHI", tag, kind, len(payload) // _size(kind)) + value)
    ifd = struct.pack("<H", len(entries)) + b"".join(entries) + struct.pack("<I", 0)
    return b"II*\0" + struct.pack("<I", offset) + b"".join(blobs) + ifd


def _size(kind: int) -> int:
    return {_SHORT: 2, _LONG: 4, _UNDEFINED: 1}[kind]


def _pack(kind: int, values: list[int]) -> bytes:
    return struct.pack(f"<{len(values)}{'H' if kind == _SHORT else 'I'}", *values)
