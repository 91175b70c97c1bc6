"""Frames in and out of ffmpeg processes through pipes, each pipe served by its own thread.

`FrameReader` decodes ahead of the model: a thread keeps up to `depth` decoded frames waiting.
`FrameWriter` encodes behind it: the model hands a result over and goes on while a thread feeds
the encoder. Both hold a bounded number of frames, so memory does not grow with the video.
"""

from __future__ import annotations

import contextlib
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import numpy as np

from adacode_cli.video.ffmpeg import SESSION, VideoError, base_command, first_error

_END = object()


class _Process:
    """An ffmpeg subprocess whose stderr is collected by a thread (so it can never fill up)."""

    def __init__(self, arguments: list[str], *, reads: bool) -> None:
        self.process = subprocess.Popen(
            [*base_command(), *arguments],
            stdin=subprocess.PIPE if not reads else subprocess.DEVNULL,
            stdout=subprocess.PIPE if reads else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            **SESSION,
        )
        self._errors: list[bytes] = []
        self._stderr = threading.Thread(target=self._collect, daemon=True)
        self._stderr.start()

    def _collect(self) -> None:
        assert self.process.stderr is not None
        self._errors.extend(self.process.stderr)

    def errors(self) -> str:
        self._stderr.join()
        return b"".join(self._errors).decode(errors="replace")

    def kill(self) -> None:
        """Stop at once (an interrupted or failed run); waits so no zombie is left."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


class FrameReader:
    """Iterate over HxWx3 uint8 RGB frames that ffmpeg decodes with `filters`, in stored
    orientation; a decoding error (truncated or damaged file) raises `VideoError` at the end."""

    def __init__(
        self, source: Path, stream: int, size: tuple[int, int], filters: str, depth: int = 2
    ) -> None:
        self.source = source
        self.width, self.height = size
        self._frames: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._process = _Process(
            ["-noautorotate", "-i", str(source), "-map", f"0:{stream}", "-an", "-sn",
             *(["-vf", filters] if filters else []), "-fps_mode", "passthrough",
             "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
            reads=True,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._decode, daemon=True, name="adacode-decode")
        self._thread.start()

    def _decode(self) -> None:
        assert self._process.process.stdout is not None
        frame_bytes = self.width * self.height * 3
        pipe = self._process.process.stdout
        try:
            while not self._stop.is_set():
                data = pipe.read(frame_bytes)
                if len(data) < frame_bytes:
                    break
                frame = np.frombuffer(data, np.uint8).reshape(self.height, self.width, 3)
                while not self._stop.is_set():
                    with contextlib.suppress(queue.Full):
                        self._frames.put(frame, timeout=0.1)
                        break
        except (OSError, ValueError):  # `kill` closed the pipe under a read: the run is ending
            pass
        finally:
            self._frames.put(_END)

    def __iter__(self) -> Iterator[np.ndarray]:
        while (item := self._frames.get()) is not _END:
            yield item  # type: ignore[misc]
        self._thread.join()
        code = self._process.process.wait()
        errors = self._process.errors()
        if code != 0 or errors.strip():
            raise VideoError(f"{self.source}: truncated or damaged video ({first_error(errors)})")

    # Reader and writer are context managers of the same shape: each owns one ffmpeg process.
    def __enter__(self) -> FrameReader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._frames.get_nowait()
        self._process.kill()
        self._thread.join()


class FrameWriter:
    """Encode HxWx3 uint8 frames with ffmpeg `output_arguments` into `target`; `close()` waits
    for the file to be complete. Leaving the block with an exception before `close()` kills the
    encoder and removes the incomplete file."""

    def __init__(
        self, target: Path, size: tuple[int, int], rate: str, output_arguments: list[str],
        depth: int = 2,
    ) -> None:
        self.target = target
        self.frames = 0
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        width, height = size
        self._process = _Process(
            ["-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
             "-framerate", rate, "-i", "-", *output_arguments, str(target)],
            reads=False,
        )
        self._failure: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._encode, daemon=True, name="adacode-encode")
        self._thread.start()

    def _encode(self) -> None:
        assert self._process.process.stdin is not None
        pipe = self._process.process.stdin
        while (item := self._queue.get()) is not _END:
            if self._failure is None:
                try:
                    pipe.write(item)  # type: ignore[arg-type]
                except (OSError, ValueError) as error:  # the encoder died (its stderr says
                    self._failure = error  # why), or `kill` closed the pipe under a write
        with contextlib.suppress(OSError):
            pipe.close()

    def write(self, frame: np.ndarray) -> None:
        """Queue one frame; blocks only while `depth` frames already wait for the encoder."""
        if self._failure is not None:
            self._raise()
        self._queue.put(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and wait until `target` is complete."""
        self._queue.put(_END)
        self._thread.join()
        code = self._process.process.wait()
        if code != 0 or self._failure is not None:
            self._raise()
        self._closed = True

    def _raise(self) -> None:
        self._process.kill()
        reason = first_error(self._process.errors())
        raise VideoError(f"{self.target.name}: encoding failed ({reason})")

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is not None and not self._closed:
            self._process.kill()  # the feeding thread's writes now fail at once, so it drains
            if self._thread.is_alive():
                self._queue.put(_END)
            self._thread.join()
            self.target.unlink(missing_ok=True)  # incomplete
