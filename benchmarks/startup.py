"""Whole-process start-up of `adacode sr`, against the floor of importing torch, run by hand.

The full-size official sr x4 network with deterministic random weights (seed 0) is saved to a
temporary `.safetensors` file; a 64 x 64 photo-like PNG is restored by
`python -m adacode_cli sr in.png out.png -w model.safetensors -q` in fresh processes:
  - first run: an empty ADACODE_HOME (official models: the memory profile shipped with the
    package; others: derived and cached);
  - later runs: the same ADACODE_HOME (profile from the cache), median of `--repeats`;
  - a usage error (`adacode sr nosuch.png`), which must answer before torch is imported;
  - the floor: `python -c "import torch"`, what any torch program pays.
Wall-clock seconds of each process, and each against the floor.

    python benchmarks/startup.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import network_for, photo_like, table


def timed(command: list[str], home: Path) -> float:
    """Seconds of one process (it may fail: a usage error is a measured case)."""
    environment = {**os.environ, "ADACODE_HOME": str(home)}
    started = time.perf_counter()
    subprocess.run(command, env=environment, capture_output=True, check=False)
    return time.perf_counter() - started


def timed_restore(command: list[str], home: Path, output: Path) -> float:
    """Seconds of one restoring process. Its output is removed first and must exist after: a
    run that skipped the image (its output exists) or failed would time no restoring at all."""
    output.unlink(missing_ok=True)
    seconds = timed(command, home)
    if not output.is_file():
        raise SystemExit(f"no output from {' '.join(command)}")
    return seconds


def startup_rows(repeats: int) -> list[list[str]]:
    """The start-up table: case, seconds, ratio to the torch import floor."""
    from PIL import Image

    from adacode_cli.model.checkpoint import save_safetensors

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        model = work / "srx4.safetensors"
        network = network_for("sr-x4")
        save_safetensors(model, network.config, network.state_dict())
        Image.fromarray(photo_like(64)).save(work / "in64.png")
        home = work / "home"
        output = work / "out.png"
        restore = [sys.executable, "-m", "adacode_cli", "sr", str(work / "in64.png"),
                   str(output), "-w", str(model), "-q"]
        floor = statistics.median(
            timed([sys.executable, "-c", "import torch"], home) for _ in range(repeats))
        first = timed_restore(restore, home, output)
        later = statistics.median(timed_restore(restore, home, output) for _ in range(repeats))
        usage = statistics.median(
            timed([sys.executable, "-m", "adacode_cli", "sr", str(work / "nosuch.png")], home)
            for _ in range(repeats))
    rows = [["case (64 px PNG at x4, full-size sr-x4)", "seconds", "vs import torch"]]
    for name, seconds in (("python -c 'import torch' (the floor)", floor),
                          ("adacode sr, first run (empty ADACODE_HOME)", first),
                          (f"adacode sr, later runs (median of {repeats})", later),
                          ("adacode sr nosuch.png (usage error)", usage)):
        rows.append([name, f"{seconds:.2f}", f"{seconds / floor:.2f}x"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    print(table(startup_rows(parser.parse_args().repeats)))


if __name__ == "__main__":
    main()
