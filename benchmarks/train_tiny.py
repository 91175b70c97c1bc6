"""The README quick start, measured: the `tiny` preset's three stages on the CPU (run by hand).

    python benchmarks/train_tiny.py [--iters 200] [--out benchmarks/results/train_tiny.json]

Makes a small deterministic image set (smooth gradients, hard-edged shapes and fine texture, so
there is something for both bicubic and the network to get wrong), then runs stage 1 (one
category), stage 2 and stage 3 (super-resolution x2, inputs synthesised with the BSRGAN
degradation) exactly as the README does, each as its own `adacode train` process, without the
VGG-based losses (their weights need a download). For each stage it prints the wall and CPU time
per iteration and the held-out PSNR-Y (4 px border) at the first and the best validation, beside
the baseline on the same images (identity for stages 1-2, bicubic for stage 3).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIDE, TRAIN, VAL = 160, 12, 4


def make_image(rng: np.random.Generator) -> np.ndarray:
    """One picture-like test image: a gradient, a few shapes with hard edges, fine noise."""
    y, x = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    base = np.stack([rng.uniform(0.2, 0.8) + rng.uniform(-0.3, 0.3) * (x * a + y * (1 - a))
                     for a in rng.uniform(0, 1, 3)], axis=-1)
    image = Image.fromarray((np.clip(base, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 9))):
        box = sorted(rng.integers(0, SIDE, 2)), sorted(rng.integers(0, SIDE, 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((box[0][0], box[1][0], box[0][1], box[1][1]), fill=colour)
    texture = rng.normal(0, 6, (SIDE, SIDE, 1))
    return np.clip(np.asarray(image, dtype=np.float64) + texture, 0, 255).astype(np.uint8)


def make_data(root: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    for folder, count in (("photos", TRAIN), ("photos-val", VAL)):
        (root / folder).mkdir(parents=True)
        for index in range(count):
            Image.fromarray(make_image(rng)).save(root / folder / f"{index:03d}.png")
    return root / "photos", root / "photos-val"


def run_stage(name: str, args: list[str], iters: int) -> dict:
    """Run one `adacode train` command; its wall time, CPU time and validation rows."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "adacode_cli", "train", *args, "--iters", str(iters)],
                   check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    output = Path(args[args.index("--output") + 1])
    rows = [json.loads(line) for line in (output / "validation.jsonl").read_text().splitlines()]
    best = max(rows, key=lambda row: row["psnr"])
    return {
        "stage": name, "iters": iters, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
        "wall_s_per_iter": round(wall / iters, 3), "cpu_s_per_iter": round(cpu / iters, 3),
        "first_val": {"iter": rows[0]["iter"], "psnr": round(rows[0]["psnr"], 2)},
        "best_val": {"iter": best["iter"], "psnr": round(best["psnr"], 2)},
        "baseline": rows[0]["baseline"],
        "baseline_psnr": None if rows[0]["baseline_psnr"] is None
        else round(rows[0]["baseline_psnr"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=200, help="iterations per stage")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/train_tiny.json"))
    options = parser.parse_args()
    common = ["--preset", "tiny", "--no-perceptual", "--offline", "--set", "val.every=50"]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        photos, val = make_data(root)
        runs = root / "runs"
        stages = [
            ("stage1", ["stage1", "--data", str(photos), "--val", str(val), "--no-semantic",
                        "--output", str(runs / "stage1"), *common]),
            ("stage2", ["stage2", "--data", str(photos), "--codebooks", str(runs / "stage1"),
                        "--val", str(val), "--output", str(runs / "stage2"), *common]),
            ("stage3 sr x2", ["stage3", "--task", "sr", "--scale", "2", "--data", str(photos),
                              "--init", str(runs / "stage2"), "--val", str(val),
                              "--output", str(runs / "sr-x2"), *common]),
        ]
        results = [run_stage(name, args, options.iters) for name, args in stages]
    print(f"{'stage':14} {'wall s/iter':>11} {'CPU s/iter':>10} {'first val':>16} "
          f"{'best val':>16} {'baseline':>18}")
    for r in results:
        baseline = "inf" if r["baseline_psnr"] is None else f"{r['baseline_psnr']:.2f}"
        print(f"{r['stage']:14} {r['wall_s_per_iter']:11.3f} {r['cpu_s_per_iter']:10.3f} "
              f"{r['first_val']['psnr']:7.2f} @ {r['first_val']['iter']:<5} "
              f"{r['best_val']['psnr']:7.2f} @ {r['best_val']['iter']:<5} "
              f"{r['baseline']:>9} {baseline:>8}")
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps({"command": " ".join(sys.argv), "results": results},
                                      indent=2) + "\n")


if __name__ == "__main__":
    main()
