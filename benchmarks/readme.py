"""Every CPU figure of the README in one run, written to one Markdown file, run by hand.

    python benchmarks/readme.py --output benchmarks/results/cpu-readme.md

In order (each measured in fresh subprocesses, each table with its baseline from this run):
start-up (`startup.py`); the engine against the reference path, whole image and 2 x 2 tiles,
fp32 and bf16 (`cpu.py --quick`); tiles side by side with the official tiling at `--tile 240`
(`cpu.py --tile-compare`, also with the Swin steps per tile as in earlier releases);
PSNR(tiled, whole) on photos against the seam profile's prediction
(`seams.py`); exact statistics in RAM against spilled to disk (`cpu.py --spill-probe`); the
2000 x 2000 x4 memory probe under 3 GB, through its first 1200 tile batches (10-12 of its 24
spilled layered segments, as many as the tiles allow) (`cpu.py --memory-probe`). `--skip` leaves
parts out
(their names: startup, engine, tiles, seams, spill, memory). Weights are random (seed 0) on
the full-size official architecture; photos are scikit-image's samples.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cpu
import seams
import startup
from harness import Measurement, environment, table

PARTS = ("startup", "engine", "tiles", "seams", "spill", "memory")
ENGINE_SIZES = {"sr-x2": 320, "sr-x4": 176, "inpaint": 384}
TILE_CASES = (("sr-x2", 480), ("sr-x2", 640), ("sr-x4", 480), ("inpaint", 384))
SEAM_PHOTOS = "astronaut,hubble_deep_field,immunohistochemistry"
# (task, input side, overlaps at --tile 240: None is the default, photos, Swin steps over the
# whole latent (the default) or per tile (earlier releases))
SEAM_CASES = (("sr-x2", 480, [None, 32, 0], SEAM_PHOTOS, True),
              ("sr-x2", 480, [None, 64], SEAM_PHOTOS, False),
              ("sr-x2", 640, [None], "hubble_deep_field,retina", True),
              ("sr-x4", 480, [None], "astronaut,immunohistochemistry", True),
              ("inpaint", 384, [None], "astronaut,immunohistochemistry", True))


def measured(function: Callable[[Path], list[Measurement]]) -> str:
    """A table of subprocess measurements, with the notices the engine gave."""
    with tempfile.TemporaryDirectory() as workdir:
        measurements = function(Path(workdir))
    notes = [f"- {m.variant.task}, {m.variant.name}: {notice}"
             for m in measurements for notice in m.notices]
    return cpu.report(measurements) + ("\n\n" + "\n".join(notes) if notes else "")


def engine(workdir: Path) -> list[Measurement]:
    return [m for task, size in ENGINE_SIZES.items()
            for m in cpu.measure_variants(cpu.variants(task, size, 0, True), workdir, None)]


def tiles(workdir: Path) -> list[Measurement]:
    return [m for task, size in TILE_CASES
            for m in cpu.measure_variants(cpu.tile_variants(task, size, 0), workdir, None)]


def spill(workdir: Path) -> list[Measurement]:
    return cpu.measure_variants(cpu.spill_variants("sr-x4", 192, 0, 1.2), workdir, None)


def memory(workdir: Path) -> list[Measurement]:
    return cpu.measure_variants([cpu.memory_probe(0, batches=1200)], workdir, None)


def seam_tables() -> str:
    return "\n\n".join(
        table(seams.seam_table(task, size, [240], overlaps, photos.split(","), whole_latent))
        for task, size, overlaps, photos, whole_latent in SEAM_CASES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="benchmarks/results/cpu-readme.md")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out")
    args = parser.parse_args()
    skipped = set(filter(None, args.skip.split(",")))
    parts: dict[str, Callable[[], str]] = {
        "startup": lambda: table(startup.startup_rows(3)),
        "engine": lambda: measured(engine),
        "tiles": lambda: measured(tiles),
        "seams": seam_tables,
        "spill": lambda: measured(spill),
        "memory": lambda: measured(memory),
    }
    command = "python benchmarks/readme.py " + " ".join(sys.argv[1:])
    sections = [f"# CPU benchmarks for the README\n\nCommand: `{command.strip()}`\n\n"
                f"Environment: {environment()}\n"]
    for name in PARTS:
        if name in skipped:
            continue
        started = time.perf_counter()
        body = parts[name]()
        sections.append(f"## {name} ({time.perf_counter() - started:.0f} s)\n\n```\n{body}\n```\n")
        print(sections[-1], flush=True)
        Path(args.output).write_text("\n".join(sections), encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
