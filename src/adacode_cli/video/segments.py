"""A video being written, as a folder of finished segments that a later run can continue.

Frames are encoded into short segment files; each one is recorded in a manifest only once it is
complete, together with what produced it (source file, model and settings). The folder sits
beside the output under our hidden temporary prefix, so the output name never holds a partial
file; a rerun with the same identity continues after the last complete segment, and the
concat demuxer joins the segments without re-encoding.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from adacode_cli.atomic import TEMP_PREFIX, atomic_write_text

MANIFEST = "manifest.json"
SEGMENT_SUFFIX = ".nut"  # ffmpeg's own container: exact timestamps for every codec we write


@dataclass(frozen=True)
class Segment:
    name: str
    frames: int
    size: int


def work_folder(target: Path) -> Path:
    """Where the segments of `target` live while it is being made."""
    return target.with_name(f"{TEMP_PREFIX}{target.name}.parts")


class SegmentStore:
    """The complete segments of one output and what made them."""

    def __init__(self, folder: Path, identity: dict[str, Any], segments: list[Segment]) -> None:
        self.folder = folder
        self.identity = identity
        self.segments = segments

    @classmethod
    def open(cls, target: Path, identity: dict[str, Any], *, resume: bool) -> SegmentStore:
        """The store for `target`: earlier segments are kept when `resume` and they were made
        from the same `identity` and are intact; otherwise the folder starts empty."""
        folder = work_folder(target)
        kept = _intact_segments(folder, identity) if resume else []
        if not kept and folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        store = cls(folder, identity, kept)
        store._save()
        return store

    @property
    def frames_done(self) -> int:
        return sum(segment.frames for segment in self.segments)

    def next_path(self) -> Path:
        """The file the next segment is encoded into."""
        return self.folder / f"segment-{len(self.segments):05d}{SEGMENT_SUFFIX}"

    def add(self, path: Path, frames: int) -> None:
        """Record the complete segment `path` of `frames` frames (an empty one is dropped)."""
        if frames == 0:
            path.unlink(missing_ok=True)
            return
        self.segments.append(Segment(path.name, frames, path.stat().st_size))
        self._save()

    def concat_list(self, rate: Fraction) -> Path:
        """A concat-demuxer list of the segments, each with its exact duration (ffmpeg would
        otherwise guess a segment's end and leave a gap or an overlap at each joint)."""
        lines = []
        for segment in self.segments:
            lines += [f"file '{segment.name}'", f"duration {float(segment.frames / rate):.9f}"]
        listing = self.folder / "segments.txt"
        atomic_write_text(listing, "\n".join(lines) + "\n")
        return listing

    def discard(self) -> None:
        """Remove the folder (the output is complete, or the run failed)."""
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.folder)

    def _save(self) -> None:
        record = {"identity": self.identity,
                  "segments": [segment.__dict__ for segment in self.segments]}
        atomic_write_text(self.folder / MANIFEST, json.dumps(record, indent=1))


def _intact_segments(folder: Path, identity: dict[str, Any]) -> list[Segment]:
    """The recorded segments, when the manifest matches `identity` and every file is intact."""
    try:
        record = json.loads((folder / MANIFEST).read_text())
        if record["identity"] != identity:
            return []
        segments = [Segment(**entry) for entry in record["segments"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    for segment in segments:
        path = folder / segment.name
        if not path.is_file() or path.stat().st_size != segment.size:
            return []
    return segments
