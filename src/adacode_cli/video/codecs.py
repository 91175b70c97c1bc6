"""Which encoder and container settings a `--video-codec` / `--crf` / `--ext` choice means."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from adacode_cli.errors import AdaCodeError

#: Extensions read as videos; animated GIF/WebP join them only when asked (`--animated`).
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mkv", ".mov", ".webm", ".avi"})
ANIMATED_EXTENSIONS = frozenset({".gif", ".webp"})

#: Containers we write, and the codecs each can hold.
CONTAINERS = {
    ".mp4": ("h264", "h265", "av1", "vp9"),
    ".m4v": ("h264", "h265"),
    ".mov": ("h264", "h265"),
    ".mkv": ("h264", "h265", "av1", "vp9", "ffv1"),
    ".webm": ("vp9", "av1"),
}
DEFAULT_CONTAINER = ".mp4"
CODEC_CHOICES = ("auto", "h264", "h265", "vp9", "av1", "ffv1")
MAX_X26X_CRF = 51


def is_video_input(path: Path, animated: bool) -> bool:
    """Whether `path` is restored as a video: a video extension, or with `animated` a GIF/WebP
    of more than one frame (Pillow reads only the header)."""
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return True
    if not (animated and suffix in ANIMATED_EXTENSIONS):
        return False
    from PIL import Image

    from adacode_cli.images.decode import DECODE_ERRORS

    try:
        with Image.open(path) as image:
            return getattr(image, "n_frames", 1) > 1
    except DECODE_ERRORS:  # a damaged or cut animation: read as an image, which says why
        return False


@dataclass(frozen=True)
class VideoCodec:
    """ffmpeg output arguments for one codec; `subsampled` codecs need even frame sizes."""

    name: str
    arguments: tuple[str, ...]
    subsampled: bool = True
    mp4_tag: str | None = None  # the sample entry players of MP4/MOV files expect


def choose_codec(choice: str, container: str, crf: int) -> VideoCodec:
    """The codec `choice` (auto: H.264, or VP9 for WebM) at quality `crf`, checked against the
    container; a usage error names what the container holds."""
    allowed = CONTAINERS.get(container.lower())
    if allowed is None:
        raise AdaCodeError(
            f"cannot write {container} videos (use {', '.join(sorted(CONTAINERS))})"
        )
    name = allowed[0] if choice == "auto" else choice
    if name not in allowed:
        raise AdaCodeError(
            f"{container} cannot hold {name} video (it holds {', '.join(allowed)})"
        )
    if name in ("h264", "h265") and crf > MAX_X26X_CRF:
        raise AdaCodeError(f"--crf {crf}: {name} takes 0-{MAX_X26X_CRF}")
    quality = str(crf)
    yuv420 = ("-pix_fmt", "yuv420p")
    table = {
        "h264": VideoCodec("h264", ("-c:v", "libx264", "-crf", quality, "-preset", "medium",
                                    *yuv420)),
        "h265": VideoCodec("h265", ("-c:v", "libx265", "-crf", quality,
                                    "-x265-params", "log-level=error", *yuv420), mp4_tag="hvc1"),
        "vp9": VideoCodec("vp9", ("-c:v", "libvpx-vp9", "-crf", quality, "-b:v", "0",
                                  "-row-mt", "1", *yuv420)),
        "av1": VideoCodec("av1", ("-c:v", "libsvtav1", "-crf", quality, *yuv420)),
        # Lossless RGB: every pixel comes back exactly, whatever --crf says.
        "ffv1": VideoCodec("ffv1", ("-c:v", "ffv1", "-pix_fmt", "gbrp"), subsampled=False),
    }
    return table[name]
