"""Scaling of folder restoration over processes (torchrun) on this machine, run by hand.

    python benchmarks/scaleout.py                 # official sr-x2 architecture; a few minutes
    python benchmarks/scaleout.py --quick         # tiny network, seconds
    python benchmarks/scaleout.py --device cuda --processes 8   # one process per GPU

It writes a folder of photo-like images of mixed sizes (most small, a few large: the case
pixel-balanced shares are for) and restores it with the real CLI, each run from scratch into an
empty folder: one process with one thread (the baseline), N processes under torchrun with one
thread each, and (on the CPU) one process with N threads, which is what a user gets without
torchrun. It prints images per second and output megapixels per second over the wall time of
the whole command (start-up and model loading included) and over the batch alone (the
summary's time), with the ratio to the baseline. From the baseline's per-image seconds it also
compares the longest share (the job's makespan) of two ways to split: by file count in sorted
order (splitting the folder by hand) and the pixel-balanced shares adacode uses.
Weights are random (seed 0), so outputs are not meaningful pictures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import photo_like, table

from adacode_cli.cli.scaleout import PER_IMAGE_COST, balanced_shares, pixel_cost
from adacode_cli.images.encode import write_image
from adacode_cli.model.checkpoint import save_safetensors
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import build_network

SUMMARY = re.compile(r"summary: (\d+) done.* in ([\d.]+) s")


@dataclass
class Run:
    """One command: its wall seconds, the batch's seconds (its summary) and per-image records."""

    name: str
    wall: float
    batch: float
    records: list[dict[str, Any]]


def make_folder(folder: Path, sizes: list[int]) -> None:
    for index, size in enumerate(sizes):
        write_image(folder / f"{index:03}.png", photo_like(size, seed=index))


def make_model(path: Path, quick: bool) -> None:
    import torch

    torch.manual_seed(0)
    config = (AdaCodeConfig.tiny if quick else AdaCodeConfig.official)("sr", 2)
    save_safetensors(path, config, build_network(config).state_dict())


def restore(work: Path, name: str, processes: int, threads: int, device: str,
            torchrun: bool) -> Run:
    """Run the CLI once into an empty folder; wall and batch seconds, per-image records."""
    args = ["-m", "adacode_cli", "sr", "in", "out-" + "-".join(name.split()), "--scale", "2",
            "-w", "model.safetensors", "--device", device, "--json"]
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                str(processes)] if torchrun else []
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    ran = subprocess.run([sys.executable, *launcher, *args], cwd=work, env=env, text=True,
                         capture_output=True, check=False)
    wall = time.perf_counter() - started
    summary = SUMMARY.search(ran.stderr)
    if ran.returncode != 0 or summary is None:
        raise SystemExit(f"{name} failed ({ran.returncode}):\n{ran.stderr[-3000:]}")
    records = [json.loads(line) for line in ran.stdout.splitlines()]
    return Run(name, wall, float(summary.group(2)), records)


def warm_seconds(records: list[dict[str, Any]], work: Path) -> list[float]:
    """Each image's seconds, the first one's (which pays the one-time warm-up of a process,
    in every share alike) replaced by the mean of the other images of its size."""
    seconds = [float(r["seconds"]) for r in records]
    costs = [pixel_cost(work / str(r["input"])) for r in records]
    twins = [s for s, cost in zip(seconds[1:], costs[1:], strict=True) if cost == costs[0]]
    if twins:
        seconds[0] = sum(twins) / len(twins)
    return seconds


def per_size(records: list[dict[str, Any]], work: Path) -> str:
    """Mean seconds per image of each size (warm), to check the cost model."""
    seconds = warm_seconds(sorted(records, key=lambda r: str(r["input"])), work)
    by_cost: dict[int, list[float]] = {}
    for record, spent in zip(sorted(records, key=lambda r: str(r["input"])), seconds,
                             strict=True):
        by_cost.setdefault(pixel_cost(work / str(record["input"])) - PER_IMAGE_COST,
                           []).append(spent)
    return ", ".join(f"{int(pixels ** 0.5)} px {sum(v) / len(v):.3f} s"
                     for pixels, v in sorted(by_cost.items()))


def makespans(baseline: list[dict[str, Any]], work: Path, parts: int) -> tuple[float, ...]:
    """Longest share in seconds (from the baseline's per-image times) for a split by file
    count, for the pixel-balanced split, and a perfect split (total / parts)."""
    records = sorted(baseline, key=lambda r: str(r["input"]))
    seconds = warm_seconds(records, work)
    per_share = -(-len(seconds) // parts)
    by_count = max(sum(seconds[i:i + per_share]) for i in range(0, len(seconds), per_share))
    costs = [pixel_cost(work / str(r["input"])) for r in records]
    by_pixels = max(sum(seconds[i] for i in share) for share in balanced_shares(costs, parts))
    return by_count, by_pixels, sum(seconds) / parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny network")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    arguments = parser.parse_args()
    count = arguments.processes
    sizes = [48] * 12 + [96] * 4 + [256] * 2 if arguments.quick else [32] * 12 + [64] * 4 + [128]
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        make_folder(work / "in", sizes)
        make_model(work / "model.safetensors", arguments.quick)
        runs = [restore(work, "1 process x 1 thread", 1, 1, arguments.device, False),
                restore(work, f"{count} processes x 1 thread (torchrun)", count, 1,
                        arguments.device, True)]
        if arguments.device == "cpu":
            runs.append(restore(work, f"1 process x {count} threads", 1, count, "cpu", False))
        spans = makespans(runs[0].records, work, count)
        sizes_line = per_size(runs[0].records, work)
    images, megapixels = len(sizes), sum(4 * size * size for size in sizes) / 1e6
    base = runs[0]
    rows = [["run", "wall s", "images/s", "ratio", "batch s", "MP/s (batch)", "ratio"]]
    for run in runs:
        rows.append([run.name, f"{run.wall:.1f}", f"{images / run.wall:.2f}",
                     f"{base.wall / run.wall:.2f}", f"{run.batch:.1f}",
                     f"{megapixels / run.batch:.3f}", f"{base.batch / run.batch:.2f}"])
    mix = ", ".join(f"{sizes.count(size)} x {size} px" for size in sorted(set(sizes)))
    network = "tiny" if arguments.quick else "official"
    print(f"{images} images ({mix}), sr x2, {network} network, device {arguments.device}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    print(table(rows))
    by_count, by_pixels, perfect = spans
    print(f"baseline seconds per image (warm): {sizes_line}")
    print(f"longest of {count} shares, from the baseline's per-image seconds: by file count "
          f"{by_count:.2f} s, pixel-balanced {by_pixels:.2f} s, perfect {perfect:.2f} s")


if __name__ == "__main__":
    main()
