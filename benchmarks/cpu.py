"""CPU benchmark of the restoration engine against the plain reference path, run by hand.

    python benchmarks/cpu.py                      # sr-x2, sr-x4, inpaint; a few minutes
    python benchmarks/cpu.py --tasks sr-x4 --memory-probe --json results.json
    python benchmarks/cpu.py --tasks sr-x2 --size 480 --tile-compare   # tiles side by side
    python benchmarks/cpu.py --tasks sr-x4 --size 256 --spill-probe      # exact statistics on disk

For every task it measures, each in a fresh subprocess (so peak RSS is the variant's own):
the reference path (our modules run like the official code: explicit attention, fp32, whole
image, and the official 240 px per-tile tiling one tile at a time), and the engine whole and
tiled at fp32 and bf16, with and without channels-last. It prints seconds per output megapixel,
the speed ratio against the reference of the same kind (whole vs whole, tiled vs tiled), peak
RSS, and the PSNR of every output against the fp32 reference whole-image output.
`--tile-compare` measures only tiled runs side by side on the same image at the same `--tile
240`: the official per-tile tiling (tiles owning 240 px, with 16 px of context, each padded by
the official rule), and the engine, whose tiles own the same pixels and add its default
overlap, with exact image-wide statistics and with per-tile statistics (the same tiles
without the statistics passes).
`--spill-probe` runs the same exact-statistics tiles (128 px) twice: with no memory limit
(activations parked in RAM) and under `--spill-limit-gb` (default 2), where they spill to disk;
the PSNR of the second against the first shows the spilled output is the in-memory one.
`--seams` measures PSNR(tiled, whole) against tile size and overlap on real photos instead
(benchmarks/seams.py), `--compile` compiled against eager on the whole image, with compile
time on first and cached runs (benchmarks/compiled.py).
`--memory-probe` adds a 2000 x 2000 input at x4 under a 3 GB memory limit with automatic
tiling, stopped after two tile batches (its peak is reached by then); `--probe-batches 0` runs
it to the end (about 60 GB of spill files in TMPDIR, an hour or more on 2 cores).
Weights are random (seed 0) on the full-size official architecture.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import compiled
import seams
from harness import (
    OFFICIAL_TILE,
    Measurement,
    Variant,
    child_main,
    environment,
    measure_in_subprocess,
    psnr,
    table,
)

DEFAULT_SIZES = {"sr-x2": 320, "sr-x4": 176, "inpaint": 384}


def variants(task: str, size: int, threads: int, quick: bool) -> list[Variant]:
    tile = -(-size // 2)  # --tile owning half the image: 2 x 2 tiles
    result = [Variant(task, "reference whole fp32", size, "reference", "whole", threads=threads)]
    if size > OFFICIAL_TILE:
        result.append(
            Variant(task, "reference tiled fp32", size, "reference", "tiled", threads=threads)
        )
    for mode in ("whole", "tiled"):
        for precision in ("fp32", "bf16"):
            for channels_last in (False,) if quick else (False, True):
                suffix = " NHWC" if channels_last else ""
                result.append(Variant(
                    task, f"engine {mode} {precision}{suffix}", size, "engine", mode,
                    precision=precision, channels_last=channels_last, threads=threads,
                    tile=tile if mode == "tiled" else 0,
                ))
    return result


def tile_variants(task: str, size: int, threads: int) -> list[Variant]:
    """Tiled runs only, side by side at the same `--tile`: the official per-tile tiling
    against the engine's tiles, which own the same pixels (ceil(size / 240) tiles per axis)
    and add the default overlap: exact statistics with the Swin steps over the whole latent
    (the default), exact statistics with the Swin steps per tile (earlier releases, and the
    larger overlap their reach needs), and per-tile statistics."""
    return [
        Variant(task, "reference tiled fp32", size, "reference", "tiled", threads=threads),
        Variant(task, f"engine exact fp32, --tile {OFFICIAL_TILE}", size, "engine", "tiled",
                tile=OFFICIAL_TILE, threads=threads),
        Variant(task, f"engine exact fp32, Swin per tile, --tile {OFFICIAL_TILE}", size,
                "engine", "tiled", tile=OFFICIAL_TILE, whole_latent=False, threads=threads),
        Variant(task, f"engine per-tile fp32, --tile {OFFICIAL_TILE}", size, "engine", "tiled",
                tile=OFFICIAL_TILE, statistics="tile", threads=threads),
    ]


def spill_variants(task: str, size: int, threads: int, limit_gb: float) -> list[Variant]:
    """Exact statistics parked in RAM, then under a limit that spills them to disk."""
    return [
        Variant(task, "engine exact fp32, tile 128, in memory", size, "engine", "tiled",
                tile=128, threads=threads),
        Variant(task, f"engine exact fp32, tile 128, {limit_gb:g} GB limit (spilled)", size,
                "engine", "tiled", tile=128, threads=threads,
                memory_limit=int(limit_gb * 2**30)),
    ]


def memory_probe(threads: int, batches: int | None = 2) -> Variant:
    """2000 x 2000 at x4 under 3 GB, stopped after `batches` tile batches (with exact
    statistics spilled to disk, 100 tiles per layered segment), or run to the end (None)."""
    extent = "whole image" if batches is None else f"{batches} batches"
    return Variant("sr-x4", f"engine auto fp32, 2000 px, 3 GB limit, {extent}", 2000,
                   "engine", "auto", memory_limit=3 * 2**30, stop_after_batches=batches,
                   threads=threads)


def measure_variants(chosen: list[Variant], workdir: Path, image_path: str | None
                     ) -> list[Measurement]:
    """Every variant in its own subprocess, with the PSNR of its output against the first's."""
    measurements: list[Measurement] = []
    reference = None
    for variant in chosen:
        measurement, image = measure_in_subprocess(__file__, variant, workdir, image_path)
        if reference is None:
            reference = image
        else:
            measurement.psnr_db = psnr(image, reference)
        measurements.append(measurement)
        print(f"  {variant.task}: {variant.name}: {measurement.seconds:.1f} s", flush=True)
    return measurements


def report(measurements: list[Measurement]) -> str:
    rows = [["task", "variant", "px", "tiles", "s/MP out", "speed vs ref", "peak RSS MB",
             "PSNR vs first row"]]
    references = {(m.variant.task, m.variant.mode, m.variant.size): m for m in measurements
                  if m.variant.path == "reference"}
    for m in measurements:
        v = m.variant
        base = references.get((v.task, v.mode, v.size)) or references.get(
            (v.task, "whole", v.size))
        ratio = base.seconds_per_megapixel / m.seconds_per_megapixel if base else float("nan")
        timed = v.stop_after_batches is None and not (v.path == "reference" and v.mode == "whole")
        rows.append([
            v.task, v.name, str(v.size), str(m.tiles),
            f"{m.seconds_per_megapixel:.1f}" if v.stop_after_batches is None else "-",
            f"{ratio:.2f}x" if timed and base else "-",
            f"{m.peak_rss_mb:.0f}",
            "ref" if m.psnr_db is None else f"{m.psnr_db:.1f} dB",
        ])
    return table(rows)


def extra_reports(args: argparse.Namespace) -> None:
    """The seam table (`--seams`) and the compile table (`--compile`)."""
    if args.compile_child:
        compiled.child(*json.loads(args.compile_child))
        return
    for task in args.tasks.split(","):
        size = args.size or DEFAULT_SIZES[task]
        if args.seams:
            print(table(seams.seam_table(
                task, size, [int(t) for t in args.tiles.split(",")],
                [None if o == "default" else int(o) for o in args.overlaps.split(",")],
                args.photos.split(","))))
        for precision in args.precisions.split(",") if args.compile else ():
            print(table(compiled.compile_rows(__file__, task, size, precision)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="sr-x2,sr-x4,inpaint")
    parser.add_argument("--size", type=int, default=None, help="input side (default per task)")
    parser.add_argument("--image", default=None, help="crop this image instead of the "
                        "procedural one (measurement only)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--quick", action="store_true", help="skip the channels-last variants")
    parser.add_argument("--memory-probe", action="store_true")
    parser.add_argument("--probe-batches", type=int, default=2,
                        help="tile batches the memory probe runs (0: the whole image)")
    parser.add_argument("--only", default=None,
                        help="run only the variants whose names contain one of these "
                             "comma-separated words")
    parser.add_argument("--spill-probe", action="store_true",
                        help="exact statistics in RAM vs spilled to disk under a limit")
    parser.add_argument("--spill-limit-gb", type=float, default=2.0)
    parser.add_argument("--tile-compare", action="store_true",
                        help="only tiled runs: official per-tile tiling vs engine tiles")
    parser.add_argument("--json", default="benchmark-cpu.json")
    parser.add_argument("--seams", action="store_true", help="PSNR(tiled, whole) per tile "
                        "size and overlap (--tasks, --size, --tiles, --overlaps, --photos)")
    parser.add_argument("--tiles", default="192,240,256")
    parser.add_argument("--overlaps", default="0,32,default")
    parser.add_argument("--photos", default="astronaut,chelsea,coffee")
    parser.add_argument("--compile", action="store_true", help="compiled vs eager, whole "
                        "image (--tasks, --size, --precisions)")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--compile-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--output", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--count-flops", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child, args.output, args.image, args.count_flops)
        return
    if args.compile_child or args.seams or args.compile:
        extra_reports(args)
        return
    measurements: list[Measurement] = []
    with tempfile.TemporaryDirectory() as workdir:
        for task in filter(None, args.tasks.split(",")):  # --tasks "": the probes alone
            size = args.size or DEFAULT_SIZES[task]
            if args.spill_probe:
                chosen = spill_variants(task, size, args.threads, args.spill_limit_gb)
            elif args.tile_compare:
                chosen = tile_variants(task, size, args.threads)
            else:
                chosen = variants(task, size, args.threads, args.quick)
            if args.only:
                words = args.only.split(",")
                chosen = [v for v in chosen if any(word in v.name for word in words)]
            measurements += measure_variants(chosen, Path(workdir), args.image)
        if args.memory_probe:
            probe, _ = measure_in_subprocess(__file__, memory_probe(
                args.threads, args.probe_batches or None), Path(workdir),
                                             None)
            measurements.append(probe)
    print()
    print(report(measurements))
    for m in measurements:
        for notice in m.notices:
            print(f"note ({m.variant.task}, {m.variant.name}): {notice}")
    print("\nweights: random (seed 0) on the full-size official architecture")
    Path(args.json).write_text(json.dumps(
        {"environment": environment(), "results": [
            {**asdict(m), "seconds_per_megapixel": m.seconds_per_megapixel} for m in measurements
        ]}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
