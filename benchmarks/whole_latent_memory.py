"""What the `whole` steps (Swin stacks run once over an image's latent) cost in memory, and what
the planner decides from it, for the source tree on the import path (run it with each tree's
`src` on PYTHONPATH for a before/after):

    python benchmarks/whole_latent_memory.py --rss sr-x2:1600 --step "codebook weights"
    python benchmarks/whole_latent_memory.py --plans [--tile 240]

`--rss` runs one `whole` step of the official model (random weights, fp32, 2 threads) for real
on the CPU over the latent of a square image of that many input px, in this process, and prints
the growth of the peak RSS (reset after a small warm-up run) beside the tree's count (without
and with its slack); `--step` names the step (default: the last `whole` step). `--plans` prints,
per official model at fp32 under a 3 GB and an 8 GB `memory_limit` on the CPU, the largest
square input whose tiles get the whole latent with registers parked in memory ("device") and on
disk, from `Restorer.plan` alone (no image runs; the resident process is taken as 500 MB).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import TASKS

from adacode_cli.engine import memory
from adacode_cli.engine.graph import network_steps, run_steps
from adacode_cli.engine.restorer import RestoreOptions, Restorer
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import build_network

LIMITS_GB = (3, 8)
PLAN_TASKS = ("sr-x2", "sr-x4", "inpaint")


def _status(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def rss(task: str, side: int, name: str | None) -> dict:
    """Peak RSS growth of one `whole` step over the latent of a `side` px image."""
    torch.set_num_threads(2)
    config = AdaCodeConfig.official(*TASKS[task])
    torch.manual_seed(0)
    network = build_network(config).eval()
    step = [s for s in network_steps(network) if s.whole and name in (None, s.name)][-1]
    channels, latent = config.channels[0], side // config.latent_factor
    with torch.inference_mode():  # warm-up: kernels and caches
        run_steps([step], {n: torch.rand(1, channels, 16, 16) for n in step.reads})
    gc.collect()
    with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
        refs.write("5")  # resets the peak RSS
    base, started = _status("VmRSS:"), time.perf_counter()
    with torch.inference_mode():
        run_steps([step], {n: torch.rand(1, channels, latent, latent) for n in step.reads})
    seconds, peak = time.perf_counter() - started, _status("VmHWM:")
    costs = memory.profile(config, torch.float32)
    fixed = getattr(costs, "whole_fixed", 0)  # trees before profile format 3 have none
    return {"task": task, "side": side, "step": step.name, "latent": latent,
            "seconds": round(seconds, 1), "rss_growth_mb": round((peak - base) / 2**20),
            "counted_mb": round((costs.whole * side * side + fixed) / 2**20),
            "with_slack_mb": round(costs.whole_bytes(side * side) / 2**20)}


def largest_whole_latent(restorer: Restorer, align: int, tile: int | None) -> dict[str, int]:
    """The largest square input (px) whose plan runs tiles with the whole latent, per parking
    place: a scan in steps of 128 px up to 16384, refined in steps of the alignment."""
    best = {"device": 0, "disk": 0}

    def check(side: int) -> None:
        plan = restorer.plan(side, side, tile)
        if plan.tile is not None and plan.whole_latent and plan.parking in best:
            best[plan.parking] = max(best[plan.parking], side)

    for side in range(align, 16385, 128):
        check(side)
    for kind in ("device", "disk"):
        for side in range(best[kind] + align, best[kind] + 128, align):
            check(side)
    return best


def plans(tile: int | None) -> dict[str, dict[str, int]]:
    memory.process_resident = lambda: 500 * 2**20  # the same resident process for every tree
    rows = {}
    for task in PLAN_TASKS:
        config = AdaCodeConfig.official(*TASKS[task])
        network = build_network(config).eval()
        for limit in LIMITS_GB:
            restorer = Restorer(network, RestoreOptions(device="cpu", precision="fp32",
                                                        memory_limit=limit * 10**9))
            rows[f"{task} {limit} GB"] = largest_whole_latent(restorer, config.pad_multiple,
                                                              tile)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rss", default=None, help="task:side, e.g. sr-x2:1600")
    parser.add_argument("--step", default=None, help="the `whole` step to run (--rss)")
    parser.add_argument("--plans", action="store_true")
    parser.add_argument("--tile", type=int, default=None, help="--plans: tiles owning N px")
    args = parser.parse_args()
    if args.rss:
        task, side = args.rss.split(":")
        print(json.dumps(rss(task, int(side), args.step)))
    if args.plans:
        print(json.dumps(plans(args.tile)))


if __name__ == "__main__":
    main()
