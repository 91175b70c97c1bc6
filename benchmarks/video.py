"""Frames per second of `adacode sr` on a video, against the engine alone on the same frames.

For each scale: the full-size official sr network with deterministic random weights (seed 0) is
saved to a temporary file, a test-pattern clip with a tone is made with ffmpeg, then
  - baseline: the clip's frames, already decoded, restored one by one with `Restorer.restore`
    in this process by a freshly loaded engine (the model alone: no decoding, encoding or
    muxing; the first frame's warm-up included, as in the video run);
  - video: `adacode sr clip.mp4 out.mp4 --json` in a subprocess; its JSON record's seconds
    cover probing, decoding, restoring, encoding and muxing (not start-up and model loading).
The ratio video/baseline is the share of model speed that survives the video pipeline.

    python benchmarks/video.py --size 64x48 --frames 4 --scales 2,4
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


def engine_fps(model: Path, frames: np.ndarray, device: str) -> float:
    """Frames per second of a freshly loaded engine, first (warm-up) frame included: the video
    run starts cold too."""
    restorer = Restorer.from_file(model, RestoreOptions(device=device))
    started = time.perf_counter()
    for frame in frames:
        restorer.restore(frame)
    return len(frames) / (time.perf_counter() - started)


def video_fps(model: Path, clip: Path, out: Path, scale: int, device: str) -> float:
    done = subprocess.run(
        [sys.executable, "-m", "adacode_cli", "sr", str(clip), str(out), "-w", str(model),
         "--scale", str(scale), "--device", device, "--json", "--overwrite"],
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
            baseline = engine_fps(model, frames, args.device)
            video = video_fps(model, clip, Path(folder) / "out.mp4", scale, args.device)
            rows.append((scale, baseline, video))
            print(f"  x{scale}: engine {baseline:.3f} frames/s, video {video:.3f} frames/s",
                  flush=True)
    print("\n| scale | input | output | frames | engine alone (frames/s) | adacode sr on the "
          "video (frames/s) | ratio |\n|---|---|---|---|---|---|---|")
    for scale, baseline, video in rows:
        print(f"| x{scale} | {width}x{height} | {width * scale}x{height * scale} | "
              f"{args.frames} | {baseline:.3f} | {video:.3f} | {video / baseline:.2f} |")


if __name__ == "__main__":
    main()
