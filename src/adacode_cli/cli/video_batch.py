"""The per-video loop: probe, decode frames ahead, restore each one, encode segments, mux.

Videos share the batch's model, task, reporter and stop request with images. Each video is
written as resumable segments (`video.segments`) and only muxed to its output name once every
frame is done, so the output name never holds a partial file. Frames go to the engine in
batches of `Restorer.frames_per_batch`. A stop request (Ctrl-C) ends the video between batches,
or within one at the end of the network's current step: the frames written stay as complete
segments, and a playable `partial` file of them is left in the work folder; a rerun continues
from there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adacode_cli.cli.batch import one_line, skipped_as_existing
from adacode_cli.cli.options import SharedOptions
from adacode_cli.cli.report import DONE, FAILED, INTERRUPTED, ImageOutcome, Reporter
from adacode_cli.cli.tasks import Inpainting, Task
from adacode_cli.engine.restorer import RestoreInterrupted, Restorer
from adacode_cli.errors import AdaCodeError
from adacode_cli.images.decode import LoadedImage
from adacode_cli.images.masks import frame_masks
from adacode_cli.images.outputs import PlannedImage
from adacode_cli.interrupt import StopRequest
from adacode_cli.video.codecs import VideoCodec, choose_codec

#: A segment is closed after this much video or this much wall time, whichever comes first: the
#: most work a crash (not a Ctrl-C, which closes the segment cleanly) can lose.
SEGMENT_VIDEO_SECONDS = 2.0
SEGMENT_WALL_SECONDS = 60.0

if TYPE_CHECKING:
    from adacode_cli.video.probe import VideoInfo
    from adacode_cli.video.segments import SegmentStore

@dataclass(frozen=True)
class VideoSettings:
    """How videos are written (`--video-codec`, `--crf`, `--resume`, `--overwrite`)."""

    codec: str
    crf: int
    resume: bool
    overwrite: bool


def video_settings(shared: SharedOptions) -> VideoSettings:
    return VideoSettings(shared.video_codec.value, shared.crf, shared.resume, shared.overwrite)


def model_identity(restorer: Restorer) -> str:
    """A digest of the network's weights and precision: segments made by another model are
    never joined to this one's."""
    import torch

    digest = hashlib.sha256(repr(restorer.config).encode() + restorer.precision.encode())
    for tensor in restorer.network.state_dict().values():
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def run_videos(
    plan: list[PlannedImage],
    *,
    task: Task,
    restorer: Restorer,
    shared: SharedOptions,
    reporter: Reporter,
    stop: StopRequest,
) -> list[ImageOutcome]:
    """Restore every planned video (`images.outputs.plan_run` decided and checked its result
    and work folder), one after the other; a failed video is reported and the batch goes on,
    a stop request ends it after the current video's batch."""
    settings = video_settings(shared)
    outcomes: list[ImageOutcome] = []
    model = model_identity(restorer) if plan else ""
    for planned in plan:
        if stop():
            break
        outcome, failure = skipped_as_existing(planned, settings.overwrite), None
        if outcome is None:
            job = _VideoJob(planned.source, planned.result, task, restorer, settings, reporter,
                            stop)
            outcome, failure = job.run(model)
        reporter.finish_image(outcome, failure)
        outcomes.append(outcome)
        if outcome.status == INTERRUPTED:
            break
    return outcomes


@dataclass
class _VideoJob:
    """One video on its way from source to output."""

    source: Path
    target: Path
    task: Task
    restorer: Restorer
    settings: VideoSettings
    reporter: Reporter
    should_stop: StopRequest
    warnings: list[str] = dataclasses.field(default_factory=list)
    output_pixels: int = 0  # written by this run (a resumed video's earlier frames not counted)

    def run(self, model: str) -> tuple[ImageOutcome, BaseException | None]:
        """Make the output; the outcome to report and the error behind a failure."""
        from adacode_cli.video.probe import probe_video
        from adacode_cli.video.segments import SegmentStore

        started = time.perf_counter()
        store: SegmentStore | None = None
        try:
            info = probe_video(self.source)
            codec = choose_codec(self.settings.codec, self.target.suffix, self.settings.crf)
            frame_task = _frame_tasks(self.task, self.source, info.frames)
            store = SegmentStore.open(
                self.target, self._identity(model, codec), resume=self.settings.resume
            )
            self._note_rate(info)
            self._encode(_Video(info, codec, store, frame_task))
            return self._outcome(DONE, started, store.frames_done), None
        except RestoreInterrupted:
            assert store is not None
            self._leave_partial(_Video(info, codec, store, frame_task))
            return self._outcome(INTERRUPTED, started, store.frames_done), None
        except KeyboardInterrupt:  # a second Ctrl-C, or a frame past the grace: stop now
            if store is None:
                return self._outcome(INTERRUPTED, started, 0), None
            self._leave_partial(_Video(info, codec, store, frame_task))  # complete segments
            return self._outcome(INTERRUPTED, started, store.frames_done), None
        except Exception as error:  # one bad video never stops the batch
            if store is not None:
                store.discard()
            outcome = self._outcome(FAILED, started, None)
            outcome.error = one_line(self.source, error)
            return outcome, error

    def _identity(self, model: str, codec: VideoCodec) -> dict[str, Any]:
        """What the segments of this output are made from; a rerun reuses them only if equal."""
        stat = self.source.stat()
        return {"source": str(self.source.resolve()), "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns, "model": model, "task": repr(self.task),
                "codec": list(codec.arguments)}

    def _note_rate(self, info: VideoInfo) -> None:
        if info.variable_rate is not None:
            slow, fast = info.variable_rate
            self.warnings.append(
                f"{self.source}: variable frame rate ({slow:g} to {fast:g} fps): frames "
                f"repeated or dropped to a constant {float(info.rate):.3f} fps, keeping the "
                "timing and the audio in sync")

    def _encode(self, video: _Video) -> None:
        """Restore frames from the first one not yet in a segment to the end, segment by
        segment, then mux the output; a stop request closes the current segment and raises."""
        from adacode_cli.video.mux import mux
        from adacode_cli.video.streams import FrameReader

        info, store = video.info, video.store
        start = store.frames_done
        self.reporter.start_frames(self.source, info.frames, start)
        filters = _decode_filters(info.rate if info.variable_rate else None, start)
        size = self.restorer.frames_per_batch(info.height, info.width)
        with FrameReader(self.source, info.stream, (info.width, info.height), filters,
                         depth=max(2, size)) as reader:
            results = self._restored(enumerate(reader, start), video, size)
            while self._encode_segment(results, video):
                pass
        if store.frames_done != info.frames and info.variable_rate is None:
            self.warnings.append(f"{self.source}: {store.frames_done} frames decoded, the "
                                 f"container lists {info.frames}")
        self.warnings += mux(store, self.source, info, video.codec, self.target)
        store.discard()

    def _encode_segment(self, results: Iterator[tuple[int, np.ndarray]], video: _Video) -> bool:
        """Encode the next segment (2 s of video or a minute of work); False when no frames
        were left."""
        from adacode_cli.video.streams import FrameWriter

        info, store = video.info, video.store
        limit = max(1, round(float(info.rate) * SEGMENT_VIDEO_SECONDS))
        opened = time.perf_counter()
        done = next(results, None)
        if done is None:
            return False
        path = store.next_path()
        aspect = ["-vf", f"setsar={info.pixel_aspect.numerator}/{info.pixel_aspect.denominator}"]
        size = (done[1].shape[1], done[1].shape[0])
        with FrameWriter(path, size, str(info.rate),
                         [*video.codec.arguments, *aspect, "-f", "nut"]) as writer:
            try:
                while done is not None:
                    writer.write(done[1])
                    self.reporter.frames(done[0] + 1, info.frames)
                    if (writer.frames >= limit
                            or time.perf_counter() - opened > SEGMENT_WALL_SECONDS):
                        break
                    done = next(results, None)
            except RestoreInterrupted:  # the frames written so far make a complete segment
                writer.close()
                store.add(path, writer.frames)
                raise
            writer.close()
        store.add(path, writer.frames)
        return True

    def _restored(self, frames: Iterator[tuple[int, np.ndarray]], video: _Video, size: int
                  ) -> Iterator[tuple[int, np.ndarray]]:
        """(index, restored frame) in order: `size` frames at a time through the engine's
        `restore_batch`; a stop request is honoured between batches (and within one, between
        the network's steps)."""
        while True:
            if self._stopping():
                raise RestoreInterrupted("stopped between frames")
            batch = list(itertools.islice(frames, size))
            if not batch:
                return
            yield from zip([index for index, _ in batch], self._restore(batch, video), strict=True)

    def _restore(self, batch: list[tuple[int, np.ndarray]], video: _Video) -> list[np.ndarray]:
        """Frames through their tasks and the engine, as the image path does for a picture."""
        prepared = []
        for index, frame in batch:
            image = LoadedImage(frame, None, False, 8, None, None, "VIDEO")
            prepared.append(video.frame_task(index).prepare(self.source, image))
        results = self.restorer.restore_batch([p.network_input for p in prepared],
                                              should_stop=self._stopping)
        finals = []
        for ready, result in zip(prepared, results, strict=True):
            for notice in result.notices:
                if notice not in self.warnings:
                    self.warnings.append(notice)
            finals.append(self._even_sides(ready.finish(result.image), video.codec))
        return finals

    def _even_sides(self, final: np.ndarray, codec: VideoCodec) -> np.ndarray:
        """A finished frame, padded to even sides where the codec subsamples colour."""
        self.output_pixels += final.shape[0] * final.shape[1]
        if codec.subsampled and (final.shape[0] % 2 or final.shape[1] % 2):
            note = (f"{self.source}: {final.shape[1]}x{final.shape[0]} frames padded to even "
                    f"sides by repeating the last row/column ({codec.name} stores colour at "
                    "half resolution)")
            if note not in self.warnings:
                self.warnings.append(note)
            final = np.pad(final, ((0, final.shape[0] % 2), (0, final.shape[1] % 2), (0, 0)),
                           mode="edge")
        return final

    def _stopping(self) -> bool:
        """The stop request, acknowledged once seen: closing the segment and muxing the partial
        file may take longer than the grace that bounds steps with no stop check."""
        if not self.should_stop():
            return False
        self.should_stop.acknowledge()
        return True

    def _leave_partial(self, video: _Video) -> None:
        """After a stop: a playable file of the frames done, next to the segments."""
        from adacode_cli.video.mux import mux

        done = video.store.frames_done
        if done == 0:
            self.warnings.append(f"{self.source}: stopped before the first frame was done")
            return
        partial = video.store.folder / f"partial{self.target.suffix}"
        try:
            mux(video.store, self.source, video.info, video.codec, partial,
                seconds=Fraction(done) / video.info.rate)
        except AdaCodeError as error:
            self.warnings.append(f"no playable partial file ({error})")
        self.warnings.append(
            f"{self.source}: stopped after {done} of {video.info.frames} frames; they are "
            f"playable in {partial}; run the same command again to continue")

    def _outcome(self, status: str, started: float, frames: int | None) -> ImageOutcome:
        return ImageOutcome(self.source, self.target, status,
                            seconds=time.perf_counter() - started, warnings=self.warnings,
                            frames=frames, output_pixels=self.output_pixels)


@dataclass(frozen=True)
class _Video:
    """What one video's frames need once it is probed: its stream, the codec writing it, the
    segments done, and the task for each frame."""

    info: VideoInfo
    codec: VideoCodec
    store: SegmentStore
    frame_task: Callable[[int], Task]


def _decode_filters(constant_rate: Fraction | None, start: int) -> str:
    """ffmpeg filters: resample to `constant_rate` (variable-rate sources), then skip the
    `start` frames already done."""
    filters = [f"fps={constant_rate}"] if constant_rate is not None else []
    if start:
        filters.append(f"trim=start_frame={start}")
    return ",".join(filters)


def _frame_tasks(task: Task, source: Path, frames: int) -> Callable[[int], Task]:
    """The task for frame k: `task` itself, or for inpainting with a folder of numbered masks
    (`frame_000123.png`) the mask whose number is k plus the smallest number in the folder.
    A mask named after the video is used for every frame. Missing frames fail up front."""
    if not isinstance(task, Inpainting) or not task.mask_spec.is_dir():
        return lambda index: task
    folder = task.mask_spec
    own, numbered = frame_masks(source, folder)
    if own is not None:
        whole = dataclasses.replace(task, mask_spec=own)
        return lambda index: whole
    if not numbered:
        raise AdaCodeError(f"{source}: no mask named {source.stem}.* and no numbered frame "
                           f"masks (frame_000001.png, ...) in {folder}")
    first = min(numbered)
    missing = [index for index in range(frames) if first + index not in numbered]
    if missing:
        raise AdaCodeError(f"{source}: {len(missing)} of {frames} frames have no mask in "
                           f"{folder} (the first: frame {missing[0]}, number "
                           f"{first + missing[0]})")
    return lambda index: dataclasses.replace(task, mask_spec=numbered[first + index])
