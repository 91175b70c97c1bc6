"""Compiled (`torch.compile`, inductor) against eager on the whole-image path, in one run.

Each variant runs in its own process, as a user's `adacode sr --compile on` would: eager, then
compiled with an empty inductor cache (the first run pays the compilation), then compiled again
with that cache (what every later run pays). Each process restores the image twice: the first
call includes compiling, the second is the steady speed. Called by `benchmarks/cpu.py --compile`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from harness import load_image, network_for, psnr

# in this order: the warm run finds the artefacts the cold run left in the same cache root
VARIANTS = (("eager", "off"), ("compiled, cold cache", "on"), ("compiled, warm cache", "on"))


def child(task: str, size: int, precision: str, mode: str, output: str) -> None:
    """One process: build the network, restore twice, print timings and cache counters."""
    started = time.perf_counter()
    import torch
    from torch._dynamo.utils import counters

    from adacode_cli.engine.restorer import RestoreOptions, Restorer

    restorer = Restorer(network_for(task), RestoreOptions(device="cpu", precision=precision,
                                                          tile=0, compile=mode))
    image = load_image(None, size)
    first = time.perf_counter()
    restorer.restore(image)
    second = time.perf_counter()
    result = restorer.restore(image)
    done = time.perf_counter()
    np.save(output, result.image)
    print("RESULT " + json.dumps({
        "first": second - first, "steady": done - second, "process": done - started,
        "cache_hits": counters["inductor"]["fxgraph_cache_hit"],
        "cache_misses": counters["inductor"]["fxgraph_cache_miss"],
        "threads": torch.get_num_threads(),
    }))


def compile_rows(script: str, task: str, size: int, precision: str) -> list[list[str]]:
    """Table rows (with a header) for eager and compiled on `task` at `size` px."""
    rows = [["task", "precision", "variant", "first call s", "steady s", "process s",
             "speed vs eager", "cache hits/misses", "PSNR vs eager"]]
    with tempfile.TemporaryDirectory() as home:
        eager: tuple[dict[str, float], np.ndarray] | None = None
        for name, mode in VARIANTS:
            output = str(Path(home) / f"{mode}.npy")
            environment = {**os.environ, "ADACODE_HOME": home}
            environment.pop("TORCHINDUCTOR_CACHE_DIR", None)
            completed = subprocess.run(
                [sys.executable, script, "--compile-child",
                 json.dumps([task, size, precision, mode, output])],
                capture_output=True, text=True, env=environment, check=False)
            line = next((ln for ln in completed.stdout.splitlines()
                         if ln.startswith("RESULT ")), None)
            if completed.returncode or line is None:
                raise RuntimeError(f"{name} failed:\n{completed.stderr[-3000:]}")
            timing = json.loads(line[len("RESULT "):])
            image = np.load(output)
            eager = eager or (timing, image)
            rows.append([
                task, precision, name, f"{timing['first']:.1f}", f"{timing['steady']:.2f}",
                f"{timing['process']:.1f}", f"{eager[0]['steady'] / timing['steady']:.2f}x",
                f"{timing['cache_hits']}/{timing['cache_misses']}",
                "ref" if mode == "off" else f"{psnr(image, eager[1]):.1f} dB",
            ])
            print("  " + "  ".join(rows[-1]), flush=True)
    return rows
