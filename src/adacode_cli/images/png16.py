"""A 16-bit PNG writer: Pillow has no 16-bit RGB, RGBA or grey+alpha mode to save from."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type
_IDAT_SIZE = 1 << 20
_FILTER_BLOCK_BYTES = 1 << 22  # rows are filtered in blocks of about this many bytes


def encode_png16(
    pixels: np.ndarray, *, icc_profile: bytes | None = None, exif: bytes | None = None
) -> Iterator[bytes]:
    """Yield the bytes of a 16-bit PNG of an HxWxC uint16 array (C = 1 grey, 2 grey+alpha, 3, 4)."""
    height, width, channels = pixels.shape
    yield _SIGNATURE
    header = struct.pack(">IIBBBBB", width, height, 16, _COLOUR_TYPES[channels], 0, 0, 0)
    yield _chunk(b"IHDR", header)
    if icc_profile:
        yield _chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc_profile))
    if exif:
        yield _chunk(b"eXIf", exif.removeprefix(b"Exif\0\0"))
    rows = np.ascontiguousarray(pixels, dtype=">u2").view(np.uint8).reshape(height, -1)
    compressor = zlib.compressobj(6)
    pending = b""
    for filtered in _filter_rows(rows, bpp=2 * channels):
        pending += compressor.compress(filtered)
        while len(pending) >= _IDAT_SIZE:
            yield _chunk(b"IDAT", pending[:_IDAT_SIZE])
            pending = pending[_IDAT_SIZE:]
    yield _chunk(b"IDAT", pending + compressor.flush())
    yield _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _filter_rows(rows: np.ndarray, bpp: int) -> Iterator[bytes]:
    """Filter each row with whichever PNG filter gives the smallest sum of |bytes| (as libpng)."""
    block = max(1, _FILTER_BLOCK_BYTES // max(1, rows.shape[1]))
    above = np.zeros(rows.shape[1], dtype=np.uint8)
    for start in range(0, rows.shape[0], block):
        raw = rows[start : start + block]
        prior = np.vstack([above[None], raw[:-1]])
        candidates = _candidates(raw, prior, bpp)
        cost = np.abs(candidates.view(np.int8).astype(np.int32)).sum(axis=2)
        best = cost.argmin(axis=0)
        chosen = candidates[best, np.arange(raw.shape[0])]
        out = np.hstack([best.astype(np.uint8)[:, None], chosen])
        yield out.tobytes()
        above = raw[-1]


def _candidates(raw: np.ndarray, prior: np.ndarray, bpp: int) -> np.ndarray:
    """The five filtered versions (None, Sub, Up, Average, Paeth) of a block of rows, stacked."""
    left = np.zeros_like(raw)
    left[:, bpp:] = raw[:, :-bpp]
    upper_left = np.zeros_like(prior)
    upper_left[:, bpp:] = prior[:, :-bpp]
    a, b, c = (x.astype(np.int16) for x in (left, prior, upper_left))
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c)).astype(np.uint8)
    average = ((a + b) // 2).astype(np.uint8)
    return np.stack([raw, raw - left, raw - prior, raw - average, raw - paeth])
