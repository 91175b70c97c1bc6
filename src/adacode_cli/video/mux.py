"""Join finished segments into the output file: the source's audio copied unchanged, its
rotation and container metadata kept, no video re-encoding."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from adacode_cli.atomic import atomic_path
from adacode_cli.video.codecs import VideoCodec
from adacode_cli.video.ffmpeg import VideoError, run_ffmpeg
from adacode_cli.video.probe import VideoInfo
from adacode_cli.video.segments import SegmentStore

#: Audio encoders used when the source's audio codec cannot be stored in the output container.
_AUDIO_FALLBACK = {".webm": ("libopus", "Opus"), ".mkv": ("libopus", "Opus")}
_MP4_FAMILY = frozenset({".mp4", ".m4v", ".mov"})


def mux(
    store: SegmentStore,
    source: Path,
    info: VideoInfo,
    codec: VideoCodec,
    target: Path,
    *,
    seconds: Fraction | None = None,
) -> list[str]:
    """Write `target` atomically from the segments of `store` and the audio of `source`; cut to
    `seconds` when given (a partial result). Returns warnings (audio that had to be re-encoded)."""
    listing = store.concat_list(info.rate)
    container = target.suffix.lower()
    rotation = ["-display_rotation:v:0", f"{info.rotation:g}"] if info.rotation else []
    video = ["-f", "concat", "-safe", "0", *rotation, "-i", str(listing)]
    extra = ["-movflags", "+faststart"] if container in _MP4_FAMILY else []
    if codec.mp4_tag and container in _MP4_FAMILY:
        extra += ["-tag:v", codec.mp4_tag]
    if seconds is not None:
        extra += ["-t", f"{float(seconds):.6f}"]
    maps = ["-map", "0:v:0", "-map", "1:a?", "-map_metadata", "1"]
    with atomic_path(target) as temp:
        arguments = ["-y", *video, "-i", str(source), *maps, "-c", "copy", *extra, str(temp)]
        try:
            run_ffmpeg(arguments, source, "writing the output")
            return []
        except VideoError:
            if info.audio_codec is None:
                raise
        encoder, label = _AUDIO_FALLBACK.get(container, ("aac", "AAC"))
        audio = ["-c:v", "copy", "-c:a", encoder, "-b:a", "192k"]
        run_ffmpeg(["-y", *video, "-i", str(source), *maps, *audio, *extra, str(temp)],
                   source, "writing the output")
    return [f"{source}: {info.audio_codec} audio cannot be stored in {container} files; "
            f"re-encoded as {label}"]
