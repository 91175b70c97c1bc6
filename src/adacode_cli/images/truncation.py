"""Is an image's pixel data complete? Pillow cannot always say.

When a file's compressed data ends properly but covers fewer rows than its header declares,
Pillow returns the image without an error and fills the rest (black for PNG, grey for JPEG).
Files cut short are caught by Pillow itself ("image file is truncated"); these checks catch the
data that ends cleanly but early:

- PNG, exactly: the bytes the IDAT stream inflates to (counted in bounded pieces, never holding
  the image) against what the header's size, bit depth, colour type and interlacing require.
- JPEG, by a bound: every 8x8 block of every scan line needs at least one bit of coded data
  (Huffman codes are at least one bit long), so a file smaller than one bit per MCU cannot hold
  the size it declares. This catches a tiny file declaring a huge image before decoding.
- JPEG, by its scans: every coefficient of every component must be sent to full precision, so a
  progressive file cut between two scans is caught from its scan headers.
- JPEG, by asking libjpeg: when the last scan's data ends (at an EOI marker) before its last
  block, libjpeg only warns and decodes zeros, which Pillow returns as grey. Decoding the file
  again with filler bytes between the scan data and the marker tells: a complete scan never
  reads them (the same pixels come back), a cut one decodes them (other pixels come back).
  A scan with restart intervals cut at an interval's end is caught by counting its markers.
- GIF: the first frame's chain of data sub-blocks must end, with its terminator, in the file
  (a cut one takes the bytes that follow, even a trailer, for pixel data).
- A file Pillow cannot identify, which starts with an image signature and ends before the size
  or offset its header gives, was cut in its header.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageChops

from adacode_cli.images.jpeg_layout import JpegLayout, read_jpeg_layout

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Format -> (does the file start like one?, does it end before its header says it should?)
_SIGNATURES: dict[str, tuple[Callable[[bytes], bool], Callable[[bytes], bool]]] = {
    "PNG": (lambda data: data.startswith(_SIGNATURE), lambda data: len(data) < 33),
    "JPEG": (lambda data: data.startswith(b"\xff\xd8\xff"),
             lambda data: read_jpeg_layout(data) is None),
    "GIF": (lambda data: data[:6] in (b"GIF87a", b"GIF89a"),
            lambda data: _gif_first_frame(io.BytesIO(data)) is False),
    "WebP": (lambda data: data[:4] == b"RIFF" and data[8:12] == b"WEBP",
             lambda data: _little(data, 4, 4) + 8 > len(data)),
    "TIFF": (lambda data: data[:4] in (b"II*\0", b"MM\0*"), lambda data: _tiff_cut(data)),
    "BMP": (lambda data: data[:2] == b"BM", lambda data: _little(data, 2, 4) > len(data)),
}
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
# Adam7 passes: (first row, first column, row step, column step).
_ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2),
          (1, 0, 2, 1))
_PIECE = 1 << 20  # inflate at most this many bytes at a time
# Filler put after the last scan's data: no 0xFF (no marker, no stuffing), no long runs of one
# bit, so libjpeg decodes it as ordinary coefficients if it reads it; it starts with a 1 bit,
# where libjpeg's own filling of missing data decodes zero bits.
_FILLER = bytes((index * 151 + 201) % 255 for index in range(4096))


def unidentified(path: Path) -> str:
    """Why Pillow could not identify `path`, in words: not an image of ours; an image cut short
    (a TIFF written directory-last, a JPEG cut before its frame header); or one of our formats
    in a variant Pillow does not read (float RGB TIFF, a rare BMP compression)."""
    data = _contents(path)
    kind = _signature(data)
    if kind is None:
        return "not an image, or not PNG/JPEG/WebP/TIFF/BMP/GIF"
    if _SIGNATURES[kind][1](data):
        return f"truncated image: the file ends before what its {kind} header describes"
    return f"a {kind} file of a variant that cannot be read (sample type or compression)"


def is_cut(path: Path) -> bool:
    """Whether `path` starts like one of our formats and ends before what its header describes
    (a size, an offset): a decoding failure of such a file is a truncated image."""
    data = _contents(path)
    kind = _signature(data)
    return kind is not None and _SIGNATURES[kind][1](data)


def _contents(path: Path) -> bytes:
    """The file's bytes, or none when it cannot be read (the caller is explaining an error)."""
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _signature(data: bytes) -> str | None:
    return next((kind for kind, (matches, _) in _SIGNATURES.items() if matches(data)), None)


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
    frame header declares, or its scans do not send the whole image; None otherwise (or when
    it is not a JPEG this check understands)."""
    layout = read_jpeg_layout(stream.read())
    if layout is None:
        return None
    h_max = max(h for h, _ in layout.factors.values())
    v_max = max(v for _, v in layout.factors.values())
    if layout.size * 8 < (layout.width // (8 * h_max)) * (layout.height // (8 * v_max)):
        return (f"{layout.size} bytes cannot hold the {layout.width}x{layout.height} pixels "
                "the header declares")
    if not layout.scans:
        return "the file ends before its first scan of pixel data"
    if layout.scan_end is None:
        return None  # cut inside a scan: libjpeg asks for the missing bytes, Pillow refuses
    return _missing_restarts(layout) or _unsent_coefficients(layout)


def jpeg_scan_cut(path: Path, decoded: Image.Image) -> str | None:
    """What is missing, in words, when the last scan of the JPEG at `path` ends before its last
    block, so that libjpeg filled the rest of `decoded` (Pillow's image of it) with zeros."""
    data = path.read_bytes()
    layout = read_jpeg_layout(data)
    if layout is None or layout.scan_end is None:
        return None
    end = layout.scan_end
    cut = "the data of its last scan ends before the image's last block"
    with Image.open(io.BytesIO(data[:end] + _FILLER + data[end:]), formats=["JPEG"]) as again:
        try:
            again.load()
        except OSError:  # libjpeg read the filler, and found it does not fit
            return cut
        same_kind = again.mode == decoded.mode and again.size == decoded.size
        if same_kind and ImageChops.difference(again, decoded).getbbox() is None:
            return None
    return cut


def gif_shortfall(stream: BinaryIO) -> str | None:
    """What is missing, in words, when the first frame's image data in the GIF in `stream`
    runs past the end of the file (Pillow decodes whatever bytes are there, even a trailer it
    took for pixel data); None when the frame is complete or this is not a GIF."""
    if _gif_first_frame(stream) is False:
        return "the first frame's image data runs past the end of the file"
    return None


def _gif_first_frame(stream: BinaryIO) -> bool | None:
    """Whether the GIF in `stream` holds its first frame whole (False: the file ends first);
    None when it is not a GIF, or has no frame before its trailer or an unknown block."""
    header = stream.read(13)
    if len(header) < 13 or header[:3] != b"GIF":
        return False if header.startswith(b"GIF") else None
    _skip_colour_table(stream, header[10])
    while (introducer := stream.read(1)) not in (b"", b";"):
        if introducer == b"!":
            stream.read(1)  # the extension's label
            if not _skip_sub_blocks(stream):
                return False
        elif introducer == b",":
            descriptor = stream.read(9)
            _skip_colour_table(stream, descriptor[8] if len(descriptor) == 9 else 0)
            stream.read(1)  # LZW minimum code size
            return _skip_sub_blocks(stream)
        else:
            return None
    return False if introducer == b"" else None


_TIFF_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8}
_TIFF_DATA = ((273, 279), (324, 325))  # (StripOffsets, StripByteCounts), (TileOffsets, ...)


def _tiff_cut(data: bytes) -> bool:
    """Whether the first directory of a TIFF, a value it points to, or its pixel data lies
    (partly) past the end of `data`."""
    order = "<" if data[:2] == b"II" else ">"
    offset = struct.unpack(order + "I", data[4:8])[0]
    if offset + 2 > len(data):
        return True
    count = struct.unpack(order + "H", data[offset : offset + 2])[0]
    if offset + 2 + 12 * count > len(data):
        return True
    values: dict[int, tuple[int, ...]] = {}
    for index in range(count):
        entry = data[offset + 2 + 12 * index : offset + 14 + 12 * index]
        tag, kind, number = struct.unpack(order + "HHI", entry[:8])
        size = _TIFF_SIZES.get(kind, 1) * number
        start = struct.unpack(order + "I", entry[8:])[0] if size > 4 else offset + 10 + 12 * index
        if start + size > len(data):
            return True
        if kind in (3, 4) and any(tag in pair for pair in _TIFF_DATA):
            code = order + str(number) + ("H" if kind == 3 else "I")
            values[tag] = struct.unpack(code, data[start : start + size])
    return any(start + length > len(data)
               for offsets, lengths in _TIFF_DATA
               for start, length in zip(values.get(offsets, ()), values.get(lengths, ()),
                                        strict=False))


def _little(data: bytes, start: int, size: int) -> int:
    return int.from_bytes(data[start : start + size], "little")


def _skip_colour_table(stream: BinaryIO, flags: int) -> None:
    if flags & 0x80:
        stream.read(3 << ((flags & 7) + 1))


def _skip_sub_blocks(stream: BinaryIO) -> bool:
    """Skip a chain of GIF data sub-blocks; False when the file ends before its terminator."""
    while size := stream.read(1):
        if size == b"\0":
            return True
        if len(stream.read(size[0])) < size[0]:
            return False
    return False


def _missing_restarts(layout: JpegLayout) -> str | None:
    """A scan with restart intervals holds one RSTn marker between each two: fewer means its
    data was cut at an interval's end, which decoding alone cannot tell."""
    for number, scan in enumerate(layout.scans, start=1):
        if scan.interval:
            expected = -(-layout.mcus(scan) // scan.interval) - 1
            if scan.restarts < expected:
                return (f"scan {number} holds {scan.restarts + 1} of its {expected + 1} "
                        "restart intervals")
    return None


def _unsent_coefficients(layout: JpegLayout) -> str | None:
    """Which component's coefficients no scan sends to full precision (progressive scans
    refine bit by bit); None when the scans cover the whole image."""
    if layout.lossless or not layout.scans:
        return None
    lowest: dict[int, list[int | None]] = {c: [None] * 64 for c in layout.factors}
    for scan in layout.scans:
        for component in scan.components:
            bits = lowest.get(component)
            for k in range(scan.start, min(scan.stop, 63) + 1) if bits is not None else ():
                bits[k] = scan.low_bit if bits[k] is None else min(bits[k], scan.low_bit)
    for number, bits in enumerate(lowest.values(), start=1):
        if any(bit is None or bit > 0 for bit in bits):
            return (f"its scans stop before component {number} of {len(lowest)} is complete "
                    "(a progressive JPEG cut between scans?)")
    return None


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
