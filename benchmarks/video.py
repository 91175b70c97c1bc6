"""Frames per second of `adacode sr` on a video, against the engine alone on the same frames,
one frame per network call against `--batch` frames per call.

For each scale: the full-size official sr network with deterministic random weights (seed 0) is
saved to a temporary file, a test-pattern clip with a tone is made with ffmpeg, then
  - engine: the clip's frames, already decoded, restored by a freshly loaded engine in this
    process with `Restorer.restore_batch` in batches of 1 (per frame) and of `--batch` (the
    model alone: no decoding, encoding or muxing; the first call's warm-up included, as in the
    video run);
  - video: `adacode sr clip.mp4 out.mp4 --json --batch-size 1|N` in a subprocess; its JSON
    record's seconds cover probing, decoding, restoring, encoding and muxing (not start-up and
    model loading).
The ratios: batched/per-frame, and video/engine (the share of model speed that survives the
video pipeline).

    python benchmarks/video.py --size 64x48 --frames 4 --scales 2,4 --batch 4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from adacode_cli.engine.restorer import RestoreOptions, Restorer
from adacode_cli.model.checkpoint import save_safetensors
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import build_network
from adacode_cli.video.ffmpeg import ffmpeg_exe


def make_clip(path: Path, width: int, height: int, frames: int) -> None:
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi",
         "-i", f"testsrc2=size={width}x{height}:rate=24", "-f", "lavfi",
         "-i", f"sine=frequency=440:duration={frames / 24}", "-frames:v", str(frames),
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)],
        check=True,
    )


def decoded_frames(path: Path, width: int, height: int) -> np.ndarray:
    raw = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24",
         "-"], capture_output=True, check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def engine_fps(model: Path, frames: np.ndarray, device: str, batch: int) -> float:
    """Frames per second of a freshly loaded engine, `batch` frames per call, first (warm-up)
    call included: the video run starts cold too."""
    restorer = Restorer.from_file(model, RestoreOptions(device=device, batch_size=batch))
    started = time.perf_counter()
    restorer.restore_batch(list(frames))
    return len(frames) / (time.perf_counter() - started)


def video_fps(model: Path, clip: Path, out: Path, scale: int, device: str, batch: int) -> float:
    done = subprocess.run(
        [sys.executable, "-m", "adacode_cli", "sr", str(clip), str(out), "-w", str(model),
         "--scale", str(scale), "--device", device, "--batch-size", str(batch), "--json",
         "--overwrite"],
        capture_output=True, text=True, check=True,
    )
    record = json.loads(done.stdout.splitlines()[-1])
    return record["frames"] / record["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="64x48", help="input frame size, WxH")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--scales", default="2,4")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=4, help="frames per call, batched")
    args = parser.parse_args()
    width, height = (int(side) for side in args.size.split("x"))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mp4"
        make_clip(clip, width, height, args.frames)
        frames = decoded_frames(clip, width, height)
        for scale in (int(s) for s in args.scales.split(",")):
            torch.manual_seed(0)
            config = AdaCodeConfig.official("sr", scale)
            model = Path(folder) / f"sr{scale}.safetensors"
            save_safetensors(model, config, build_network(config).state_dict())
            row = [scale]
            for batch in (1, args.batch):
                row.append(engine_fps(model, frames, args.device, batch))
                row.append(video_fps(model, clip, Path(folder) / "out.mp4", scale, args.device,
                                     batch))
                print(f"  x{scale}, {batch} per call: engine {row[-2]:.3f} frames/s, "
                      f"video {row[-1]:.3f} frames/s", flush=True)
            rows.append(row)
    print(f"\n| scale | input | output | frames | engine, 1 per call | engine, {args.batch} per "
          f"call | ratio | video, 1 per call | video, {args.batch} per call | ratio | "
          "video/engine (batched) |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for scale, engine_one, video_one, engine_many, video_many in rows:
        print(f"| x{scale} | {width}x{height} | {width * scale}x{height * scale} | "
              f"{args.frames} | {engine_one:.3f} | {engine_many:.3f} | "
              f"{engine_many / engine_one:.2f} | {video_one:.3f} | {video_many:.3f} | "
              f"{video_many / video_one:.2f} | {video_many / engine_many:.2f} |")


if __name__ == "__main__":
    main()
