"""Decode + re-encode speed of the two video backends we considered: the ffmpeg binary of
`imageio-ffmpeg` (raw RGB through pipes) and PyAV's in-process libraries.

Both decode an H.264 clip to RGB arrays and encode them again as H.264 (CRF 18, yuv420p), the
work `adacode sr` does around the model for every frame. Prints frames per second and the ratio
to the ffmpeg-pipe baseline measured in the same run.

    python benchmarks/video_backends.py --size 640x360 --seconds 4
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def make_clip(path: Path, size: str, seconds: float) -> None:
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi",
         "-i", f"testsrc2=size={size}:rate=30:duration={seconds}",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )


def with_pipes(source: Path, target: Path, width: int, height: int) -> int:
    exe = ffmpeg_exe()
    reader = subprocess.Popen(
        [exe, "-v", "error", "-i", str(source), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        stdout=subprocess.PIPE,
    )
    writer = subprocess.Popen(
        [exe, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
         "-s", f"{width}x{height}", "-r", "30", "-i", "-", "-c:v", "libx264", "-crf", "18",
         "-pix_fmt", "yuv420p", str(target)],
        stdin=subprocess.PIPE,
    )
    assert reader.stdout is not None and writer.stdin is not None
    size, frames = width * height * 3, 0
    while chunk := reader.stdout.read(size):
        writer.stdin.write(chunk)
        frames += 1
    writer.stdin.close()
    writer.wait()
    reader.wait()
    return frames


def with_pyav(source: Path, target: Path, width: int, height: int) -> int:
    import av

    frames = 0
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=30, options={"crf": "18"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in inp.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
            frames += 1
        out.mux(stream.encode())
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mp4"
        make_clip(clip, args.size, args.seconds)
        baseline = None
        for name, run in (("ffmpeg pipes (imageio-ffmpeg)", with_pipes), ("PyAV", with_pyav)):
            started = time.perf_counter()
            frames = run(clip, Path(folder) / f"{name[:3]}.mp4", width, height)
            rate = frames / (time.perf_counter() - started)
            baseline = baseline or rate
            print(f"{name:32s} {frames} frames  {rate:7.1f} frames/s  x{rate / baseline:.2f}")


if __name__ == "__main__":
    main()
