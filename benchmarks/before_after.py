"""Whole-image CPU speed of two source trees side by side, for a change's before/after figures.

    python benchmarks/before_after.py --before /path/to/old/checkout/src --rounds 2
    python benchmarks/before_after.py --before OLD/src --tasks sr-x2:480 --variants fp32 --tile 240

Each variant (the reference path: the official operations in fp32, NCHW; the engine's whole
image at fp32 and bf16 with its default layout) runs in its own process on one torch thread,
alternating the trees, and reports the CPU seconds of the timed run (after a small warm-up
image) as well as wall seconds: on a machine shared with other jobs wall-clock times swing
2-3x, while one thread's CPU time moves a few percent. It prints medians, the speed ratio
against each tree's own reference and against the "before" reference, and the after/before
ratio. `--tile N` runs the engine's variants in tiles owning N px (exact statistics, the
defaults) instead of the whole image; `--variants` picks the variants (ratios against a
reference left out are "-"). The child uses only API both trees have (it must not import this
tree's harness). Weights are random (seed 0) on the full-size official architecture.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import TASKS, photo_like, table

CHILD = r"""
import json, sys, time
import numpy as np, torch
torch.set_num_threads(1)
from adacode_cli.engine.restorer import RestoreOptions, Restorer
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import build_network
from adacode_cli.model.padding import restore_whole
from adacode_cli.model.swin import SwinLayers
kind, scale, variant, image = sys.argv[1], int(sys.argv[2]), sys.argv[3], np.load(sys.argv[4])
tile = int(sys.argv[5])
torch.manual_seed(0)
network = build_network(AdaCodeConfig.official(kind, scale)).eval()
if variant == "reference":
    for module in network.modules():
        if isinstance(module, SwinLayers):
            module.set_attention("math")
        if hasattr(module, "subpixel"):
            module.subpixel = False
    def run(pixels):
        x = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0).float().div(255)
        with torch.inference_mode():
            restore_whole(network, x)
else:
    run = Restorer(network, RestoreOptions(device="cpu", precision=variant, tile=tile)).restore
run(image[:32, :32].copy())
wall, cpu = time.perf_counter(), time.process_time()
run(image)
print("RESULT " + json.dumps([time.perf_counter() - wall, time.process_time() - cpu]))
"""

VARIANTS = ("reference", "fp32", "bf16")


def measure(src: str, task: str, variant: str, image: Path, tile: int) -> tuple[float, float]:
    """(wall, CPU) seconds of one timed run of `variant` with `src` on the import path."""
    kind, scale = TASKS[task]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(scale), variant, str(image), str(tile)],
        env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
        check=False,
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"{task} {variant} with {src} failed:\n{done.stderr[-3000:]}")
    wall, cpu = json.loads(line[len("RESULT ") :])
    return wall, cpu


def report(times: dict[tuple[str, str, str], list[tuple[float, float]]]) -> str:
    rows = [["task", "variant", "tree", "CPU s", "wall s", "vs own ref", "vs before ref",
             "after/before"]]
    cpu = {key: statistics.median(c for _, c in runs) for key, runs in times.items()}
    for (task, variant, tree), runs in times.items():
        seconds = cpu[(task, variant, tree)]
        own, first = cpu.get((task, "reference", tree)), cpu.get((task, "reference", "before"))
        change = cpu[(task, variant, "before")] / seconds
        rows.append([task, variant, tree, f"{seconds:.1f}",
                     f"{statistics.median(w for w, _ in runs):.1f}",
                     f"{own / seconds:.2f}x" if own else "-",
                     f"{first / seconds:.2f}x" if first else "-",
                     f"{change:.2f}x" if tree == "after" else "-"])
    return table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="src folder of the old tree")
    parser.add_argument("--after", default=str(Path(__file__).resolve().parents[1] / "src"))
    parser.add_argument("--tasks", default="sr-x4:176,sr-x2:320", help="task:size,...")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--tile", type=int, default=0, help="engine tiles (0: whole image)")
    args = parser.parse_args()
    trees = {"before": args.before, "after": args.after}
    times: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            for spec in args.tasks.split(","):
                task, size = spec.split(":")
                image = Path(folder) / f"{size}.npy"
                np.save(image, photo_like(int(size)))
                for variant in args.variants.split(","):
                    order = ("before", "after") if round_ % 2 == 0 else ("after", "before")
                    for tree in order:
                        result = measure(trees[tree], task, variant, image, args.tile)
                        times.setdefault((task, variant, tree), []).append(result)
                        print(f"  round {round_ + 1} {task} {variant} {tree}: "
                              f"CPU {result[1]:.1f} s, wall {result[0]:.1f} s", flush=True)
    print()
    print(report(dict(sorted(times.items()))))


if __name__ == "__main__":
    main()
