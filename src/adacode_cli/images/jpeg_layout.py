"""A JPEG's frame and scans, read from its markers without decoding a pixel.

`images.truncation` uses it to tell a complete file from one cut short: libjpeg only warns about
missing data, and Pillow hides the warning.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

_FRAMES = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE,
                     0xCF})  # start-of-frame markers (not DHT 0xC4, JPG 0xC8, DAC 0xCC)
_LOSSLESS = frozenset({0xC3, 0xC7, 0xCB, 0xCF})  # frames without DCT coefficients
_SOS, _EOI, _DRI = 0xDA, 0xD9, 0xDD
_RESTARTS = range(0xD0, 0xD8)
_STANDALONE = frozenset({0x01, *_RESTARTS})  # TEM and RSTn: markers without a length


@dataclass(frozen=True)
class JpegScan:
    """One scan's header, and the restart markers found in its data."""

    components: tuple[int, ...]  # component ids, in the frame's numbering
    start: int  # first coefficient (Ss) ...
    stop: int  # ... and last (Se) the scan sends
    low_bit: int  # successive approximation: the lowest bit sent (Al); 0 = full precision
    interval: int  # MCUs per restart interval (DRI); 0 = no restarts
    restarts: int  # RSTn markers in the scan's data


@dataclass
class JpegLayout:
    """The first image of a JPEG file: its frame, its scans, and where the last scan ends."""

    size: int  # bytes in the file
    width: int = 0
    height: int = 0
    factors: dict[int, tuple[int, int]] = field(default_factory=dict)  # id -> sampling (h, v)
    lossless: bool = False  # no DCT coefficients (SOF3 and kin)
    scans: list[JpegScan] = field(default_factory=list)
    scan_end: int | None = None  # where the last scan's data ends; None: at the end of file

    def mcus(self, scan: JpegScan) -> int:
        """MCUs in `scan`: the frame's MCUs when it interleaves components, else the blocks
        of its one component."""
        h_max = max(h for h, _ in self.factors.values())
        v_max = max(v for _, v in self.factors.values())
        if len(scan.components) > 1:
            return -(-self.width // (8 * h_max)) * -(-self.height // (8 * v_max))
        h, v = self.factors.get(scan.components[0], (h_max, v_max))
        columns = -(-self.width * h // h_max)
        rows = -(-self.height * v // v_max)
        return -(-columns // 8) * -(-rows // 8)


def read_jpeg_layout(data: bytes) -> JpegLayout | None:
    """The layout of the first image in `data`, up to its EOI (trailing bytes and further MPO
    images are not read); None when it is not a JPEG or has no usable frame header."""
    if not data.startswith(b"\xff\xd8"):
        return None
    layout = JpegLayout(len(data))
    interval = 0
    position: int | None = 2
    while position is not None and (segment := _segment(data, position)) is not None:
        kind, body, position = segment
        if kind == _EOI:
            break
        if kind in _FRAMES:
            _read_frame(layout, body, lossless=kind in _LOSSLESS)
        elif kind == _DRI and len(body) >= 2:
            interval = struct.unpack(">H", body[:2])[0]
        elif kind == _SOS and layout.factors:
            header = _scan_header(body)
            if header is None:
                break
            end, restarts = _scan_data_end(data, position)
            layout.scans.append(JpegScan(*header, interval=interval, restarts=restarts))
            layout.scan_end = position = end
    return layout if layout.factors else None


def _segment(data: bytes, position: int) -> tuple[int, bytes, int] | None:
    """The marker at `position` (after any fill bytes), its segment's body and the position
    after it; None at the end of the data or where no marker is."""
    while data[position : position + 2] == b"\xff\xff":
        position += 1
    if len(data) < position + 2 or data[position] != 0xFF:
        return None
    kind = data[position + 1]
    if kind in _STANDALONE or kind == _EOI:
        return kind, b"", position + 2
    if len(data) < position + 4:
        return None
    length = struct.unpack(">H", data[position + 2 : position + 4])[0]
    end = position + 2 + length
    if length < 2 or end > len(data):
        return None
    return kind, data[position + 4 : end], end


def _scan_header(body: bytes) -> tuple[tuple[int, ...], int, int, int] | None:
    """(component ids, Ss, Se, Al) of a start-of-scan body; None when it is too short."""
    count = body[0] if body else 0
    if not count or len(body) < 4 + 2 * count:
        return None
    ids = tuple(body[1 + 2 * k] for k in range(count))
    start, stop, approximation = body[1 + 2 * count : 4 + 2 * count]
    return ids, start, stop, approximation & 15


def _scan_data_end(data: bytes, position: int) -> tuple[int | None, int]:
    """Where the entropy-coded data starting at `position` ends (the first marker other than
    stuffing FF 00 and restart markers; None when the data runs to the end of the file), and
    the restart markers in it."""
    restarts = 0
    while (position := data.find(b"\xff", position)) >= 0:
        after = position + 1
        while after < len(data) and data[after] == 0xFF:
            after += 1
        if after >= len(data):
            break
        if data[after] in _RESTARTS:
            restarts += 1
        elif data[after] != 0x00:
            return position, restarts
        position = after + 1
    return None, restarts


def _read_frame(layout: JpegLayout, body: bytes, *, lossless: bool) -> None:
    """Fill `layout`'s size and components from a start-of-frame body."""
    if len(body) < 6:
        return
    height, width, count = struct.unpack(">HHB", body[1:6])
    parts = [body[6 + 3 * k : 9 + 3 * k] for k in range(count) if len(body) >= 9 + 3 * k]
    factors = {part[0]: (part[1] >> 4 or 1, part[1] & 15 or 1) for part in parts}
    if factors:
        layout.width, layout.height, layout.factors = width, height, factors
        layout.lossless = lossless
