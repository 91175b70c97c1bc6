"""What a video file holds: frame size, count and rate, rotation, audio; found before decoding.

Two cheap ffmpeg runs: the container header (streams, rotation) and a stream copy of the video
packets (`framecrc`, no decoding) whose timestamps give the exact frame count and show whether the
frame rate is constant.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from adacode_cli.video.ffmpeg import VideoError, first_error, run_ffmpeg, run_process

#: Frame intervals may differ by this fraction of the mean (plus one timestamp tick, the
#: container's rounding) and the rate still counts as constant.
RATE_TOLERANCE = 0.05

#: Codecs whose packets are not one frame each: their frames are counted by decoding (animated
#: images, small by nature).
DECODE_TO_COUNT = frozenset({"webp_anim", "webp", "apng"})

_STREAM = re.compile(r"^\s*Stream #0:(\d+)\S*: (Video|Audio): ([\w-]+)")
_SIZE = re.compile(r", (\d+)x(\d+)[ ,\[]")
_FPS = re.compile(r"([\d.]+)(k?) (?:fps|tbr)")
_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_ASPECT = re.compile(r"SAR (\d+):(\d+)")
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees")


@dataclass(frozen=True)
class VideoInfo:
    """One video stream as ffmpeg stores it (pixels in stored orientation, before rotation)."""

    stream: int  # absolute stream index in the file
    codec: str
    width: int
    height: int
    frames: int
    rate: Fraction  # frames per second; the average one when `variable_rate`
    rotation: float  # degrees of the display matrix, 0 when none
    audio_codec: str | None  # the first audio stream's codec, None without audio
    variable_rate: tuple[float, float] | None = None  # (slowest, fastest) fps when not constant
    pixel_aspect: Fraction = Fraction(1)  # width:height of one pixel (anamorphic video)

    @property
    def duration(self) -> float:
        return float(self.frames / self.rate)


def probe_video(path: Path) -> VideoInfo:
    """Read `path`'s header and packet timestamps; `VideoError` when it is no readable video."""
    header = _header(path)
    stream, codec, size, rotation, header_rate, aspect = _video_stream(path, header)
    if codec not in decoders():
        raise VideoError(f"{path}: the {codec} video codec is not supported (no decoder in "
                         "the ffmpeg of the video extra)")
    audio = next(
        (match.group(3) for line in header if (match := _STREAM.match(line))
         and match.group(2) == "Audio"),
        None,
    )
    timestamps = _frame_times(path, stream, decode=codec in DECODE_TO_COUNT)
    if not timestamps:
        raise VideoError(f"{path}: the video stream holds no frames")
    rate, variable = _frame_rate(timestamps, header_rate)
    if variable is not None:
        frames = max(1, round(float((timestamps[-1][0] - timestamps[0][0]) * rate)) + 1)
    else:
        frames = len(timestamps)
    return VideoInfo(stream, codec, size[0], size[1], frames, rate, rotation, audio, variable,
                     aspect)


def header_pixels(path: Path) -> int:
    """The pixels a video holds (frame size x duration x frame rate), from the container header
    alone: one ffmpeg run that reads no packets, cheap enough to weigh every video of a job
    before it is shared out. One frame's worth where the header gives no duration or rate."""
    header = _header(path)
    _, _, (width, height), _, rate, _ = _video_stream(path, header)
    seconds = next((int(found.group(1)) * 3600 + int(found.group(2)) * 60 + float(found.group(3))
                    for line in header if (found := _DURATION.search(line))), None)
    frames = 1 if seconds is None or rate is None else max(1, round(seconds * rate))
    return width * height * frames


@functools.cache
def decoders() -> frozenset[str]:
    """The video codecs the ffmpeg binary can decode (asked once per process)."""
    listing = run_process(["-decoders"]).stdout
    return frozenset(
        fields[1] for line in listing.splitlines()
        if len(fields := line.split()) > 1 and fields[0].startswith("V")
    ) | frozenset(_codec_names(listing))


def _codec_names(listing: str) -> list[str]:
    """Codec names in parentheses: a decoder such as libdav1d decodes `(codec av1)`."""
    return re.findall(r"\(codec (\w+)\)", listing)


def _header(path: Path) -> list[str]:
    """ffmpeg's description of the input (it exits 1 for want of an output, as expected)."""
    done = run_process(["-i", str(path)])
    if "Error opening input" in done.stderr or "Input #0" not in done.stderr:
        lines = done.stderr.splitlines()
        own = [line for line in lines if "Error opening input" not in line]
        reasons = [line.split("Error opening input: ", 1)[-1] for line in lines]
        reason = first_error("\n".join(own or reasons))
        raise VideoError(f"{path}: not a readable video ({reason})")
    return done.stderr.splitlines()


def _video_stream(
    path: Path, header: list[str]
) -> tuple[int, str, tuple[int, int], float, float | None, Fraction]:
    """(index, codec, (width, height), rotation, header fps, pixel aspect) of the first real
    video stream (cover pictures stored as video streams are passed over)."""
    for number, line in enumerate(header):
        match = _STREAM.match(line)
        if match is None or match.group(2) != "Video" or "attached pic" in line:
            continue
        size = _SIZE.search(line)
        if size is None:
            raise VideoError(f"{path}: the video stream has no frame size ({match.group(3)})")
        rotation = 0.0
        for following in header[number + 1:]:
            if _STREAM.match(following):
                break
            if found := _ROTATION.search(following):
                rotation = float(found.group(1))
        fps = _FPS.search(line)
        header_rate = None
        if fps is not None:
            header_rate = float(fps.group(1)) * (1000 if fps.group(2) else 1)
        sar = _ASPECT.search(line)
        aspect = Fraction(1)
        if sar is not None and int(sar.group(1)) > 0 and int(sar.group(2)) > 0:
            aspect = Fraction(int(sar.group(1)), int(sar.group(2)))
        return (int(match.group(1)), match.group(3), (int(size.group(1)), int(size.group(2))),
                rotation, header_rate, aspect)
    raise VideoError(f"{path}: no video stream (only {_stream_kinds(header)})")


def _stream_kinds(header: list[str]) -> str:
    kinds = [match.group(2).lower() for line in header if (match := _STREAM.match(line))]
    return ", ".join(kinds) if kinds else "no streams"


def _frame_times(path: Path, stream: int, *, decode: bool) -> list[tuple[Fraction, Fraction]]:
    """(time, time base) of every packet of the stream (or decoded frame), in display order."""
    copy = [] if decode else ["-c", "copy"]
    text = run_ffmpeg(
        ["-i", str(path), "-map", f"0:{stream}", *copy, "-f", "framecrc", "-"],
        path, "reading the video packets",
    )
    base = Fraction(1, 1)
    times = []
    for line in text.splitlines():
        if line.startswith("#tb"):
            base = Fraction(line.split(":", 1)[1].strip())
        elif line and not line.startswith("#"):
            fields = [field.strip() for field in line.split(",")]
            stamp = fields[2] if fields[2].lstrip("-").isdigit() else fields[1]
            if stamp.lstrip("-").isdigit():
                times.append(int(stamp))
    times.sort()
    return [(stamp * base, base) for stamp in times]


def _frame_rate(
    times: list[tuple[Fraction, Fraction]], header_rate: float | None
) -> tuple[Fraction, tuple[float, float] | None]:
    """The stream's frame rate, and (slowest, fastest) fps when it is not constant."""
    if len(times) < 2:
        return snap_rate(header_rate or 25.0), None
    tick = times[0][1]
    mean = (times[-1][0] - times[0][0]) / (len(times) - 1)
    if mean <= 0:
        return snap_rate(header_rate or 25.0), None
    intervals = [later[0] - earlier[0] for earlier, later in itertools.pairwise(times)]
    tolerance = max(tick, mean * Fraction(RATE_TOLERANCE))
    rate = snap_rate(float(1 / mean))
    if all(abs(interval - mean) <= tolerance for interval in intervals):
        return rate, None
    longest, shortest = max(intervals), max(min(intervals), tick)
    return rate, (round(float(1 / longest), 3), round(float(1 / shortest), 3))


def snap_rate(fps: float) -> Fraction:
    """`fps` as the exact rate it approximates: the nearer of a whole number and an NTSC
    n*1000/1001 rate (23.976, 29.97, 59.94) when within 0.3% (timestamps rounded to milliseconds
    blur the two apart), else the nearest fraction with a small denominator."""
    candidates = (Fraction(round(fps)), Fraction(round(fps * 1.001) * 1000, 1001))
    best = min(candidates, key=lambda candidate: abs(float(candidate) - fps))
    if best > 0 and abs(float(best) - fps) <= fps * 0.003:
        return best
    return Fraction(fps).limit_denominator(1001)
