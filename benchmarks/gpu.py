"""CUDA benchmark of the restoration engine against the plain reference path, run by hand.

    python benchmarks/gpu.py                         # sr-x2, sr-x4, inpaint on cuda:0
    python benchmarks/gpu.py --tasks sr-x4 --size 768 --peak-tflops 989
    python benchmarks/gpu.py --tasks sr-x4 --size 1024 --memory-limit-gib 8 --only "engine auto"
    python benchmarks/gpu.py --device cpu --size 64 --tasks sr-x4   # smoke run of the script

For every task, in one process (the CUDA allocator's peak is reset per variant, so each peak is
the variant's own), each variant on a fresh copy of the network, median of three timed runs
after warm-up: the reference path (our modules run like the official code: explicit attention,
fp32 with PyTorch's default TF32 convolutions, whole image, and the official 240 px per-tile
tiling one tile at a time) and the engine whole at fp32 (true fp32: TF32 off) / fp16 / bf16,
tiled at fp16/bf16 with tile batches of 1 and 4 (NCHW and channels-last), and automatic tiling.
It reports seconds per output megapixel, the speed ratio against the reference of the same kind,
peak allocated GPU memory, PSNR against the fp32 reference whole-image output, and the FLOP/s
reached: the FLOPs of the whole-image network (counted with torch's FlopCounterMode) divided by
the time, as a fraction of the device's dense peak for the precision (a table of known GPUs or
--peak-tflops) and of a measured large matrix product in the same dtype.
Weights are random (seed 0) on the full-size official architecture. Results are written to the
JSON file after every variant, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from harness import (
    OFFICIAL_TILE,
    TASKS,
    Measurement,
    Variant,
    environment,
    load_image,
    network_for,
    psnr,
    run_variant,
    table,
)

from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.padding import padded_size

DEFAULT_SIZES = {"sr-x2": 1024, "sr-x4": 512, "inpaint": 1024}
# dense peaks in TFLOP/s: fp16/bf16 tensor cores with fp32 accumulate, TF32 tensor cores, and
# plain (non-tensor) fp32, since the engine's fp32 is true fp32 (TF32 off)
KNOWN_PEAKS = {
    "H200": {"fp16": 989.0, "bf16": 989.0, "fp32": 67.0, "tf32": 494.0},
    "H100 SXM": {"fp16": 989.0, "bf16": 989.0, "fp32": 67.0, "tf32": 494.0},
    "H100 PCIe": {"fp16": 756.0, "bf16": 756.0, "fp32": 51.0, "tf32": 378.0},
    "H100": {"fp16": 989.0, "bf16": 989.0, "fp32": 67.0, "tf32": 494.0},
    "A100": {"fp16": 312.0, "bf16": 312.0, "fp32": 19.5, "tf32": 156.0},
    "L40S": {"fp16": 362.0, "bf16": 362.0, "fp32": 91.6, "tf32": 183.0},
    "L4": {"fp16": 121.0, "bf16": 121.0, "fp32": 30.3, "tf32": 60.0},
    "RTX 4090": {"fp16": 165.0, "bf16": 165.0, "fp32": 82.6, "tf32": 82.6},
    "RTX 3090": {"fp16": 71.0, "bf16": 71.0, "fp32": 35.6, "tf32": 35.6},
    "T4": {"fp16": 65.0, "bf16": 0.0, "fp32": 8.1, "tf32": 0.0},
    "V100": {"fp16": 125.0, "bf16": 0.0, "fp32": 15.7, "tf32": 0.0},
}


def spec_peak(name: str, precision: str) -> float | None:
    for key, peaks in KNOWN_PEAKS.items():
        if key in name:
            return peaks.get(precision) or None
    return None


def measured_matmul_peak(device: torch.device, precision: str, size: int = 8192) -> float:
    """TFLOP/s of a large square matrix product at `precision` (fp32 without TF32)."""
    dtype = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16,
             "bf16": torch.bfloat16}[precision]
    if device.type != "cuda":
        size = 1024
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    try:
        for _ in range(3):
            a @ b
        synchronize(device)
        runs = 10
        started = time.perf_counter()
        for _ in range(runs):
            a @ b
        synchronize(device)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved
    return 2 * size**3 * runs / (time.perf_counter() - started) / 1e12


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def tile_for(task: str, size: int, tiles_per_side: int) -> int:
    kind, scale = TASKS[task]
    config = AdaCodeConfig.official(kind, scale)  # type: ignore[arg-type]
    align = config.pad_multiple
    padded = padded_size(size, align)
    overlap = 2 * align
    side = (padded + (tiles_per_side - 1) * overlap) / tiles_per_side
    return math.ceil(side / align) * align


def variants(task: str, size: int, device: str, limits_gib: list[float]) -> list[Variant]:
    common = {"device": device, "repeats": 3}
    # the reference runs fp32 with PyTorch's defaults, as the official code does: TF32 cuDNN
    # convolutions (most of its FLOPs), so its peak is the TF32 one
    official = {**common, "precision": "tf32"}
    result = [Variant(task, "reference whole fp32", size, "reference", "whole", **official)]
    if size > OFFICIAL_TILE:
        result.append(Variant(task, "reference tiled fp32", size, "reference", "tiled",
                              **official))
    for precision in ("fp32", "tf32", "fp16", "bf16"):
        result.append(Variant(task, f"engine whole {precision}", size, "engine", "whole",
                              precision=precision, **common))
    result.append(Variant(task, "engine whole fp16 NHWC", size, "engine", "whole",
                          precision="fp16", channels_last=True, **common))
    tile = tile_for(task, size, 4)
    for precision, batch, channels_last in (("fp16", 1, False), ("fp16", 4, False),
                                            ("fp16", 4, True), ("bf16", 4, False)):
        suffix = " NHWC" if channels_last else ""
        result.append(Variant(
            task, f"engine tiled {precision} batch {batch}{suffix}", size, "engine", "tiled",
            precision=precision, tile=tile, batch=batch, channels_last=channels_last, **common,
        ))
    result.append(Variant(task, "engine auto fp16", size, "engine", "auto", precision="fp16",
                          **common))
    for limit in limits_gib:
        result.append(Variant(task, f"engine auto fp16 under {limit:g} GiB", size, "engine",
                              "auto", precision="fp16", memory_limit=int(limit * 2**30),
                              **common))
    return result


def row(m: Measurement, reference: dict[tuple[str, str], Measurement], flops: float,
        name: str, matmul: dict[str, float], peak_tflops: float | None) -> list[str]:
    v = m.variant
    base = reference.get((v.task, v.mode)) or reference[(v.task, "whole")]
    achieved = flops / m.seconds / 1e12
    peak = peak_tflops or spec_peak(name, v.precision)
    return [
        v.task, v.name, str(v.size), str(m.tiles), f"{m.seconds_per_megapixel:.3f}",
        f"{base.seconds_per_megapixel / m.seconds_per_megapixel:.2f}x",
        f"{m.peak_rss_mb:.0f}", "ref" if m.psnr_db is None else f"{m.psnr_db:.1f}",
        f"{achieved:.1f}", "?" if not peak else f"{achieved / peak:.0%}",
        f"{achieved / matmul[v.precision]:.0%}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="sr-x2,sr-x4,inpaint")
    parser.add_argument("--size", type=int, default=None, help="input side (default per task)")
    parser.add_argument("--device", default="cuda:0", help="cuda:N, or cpu for a smoke run")
    parser.add_argument("--image", default=None, help="crop this image instead of the "
                        "procedural one (measurement only)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="dense peak of the device for every precision (else known table)")
    parser.add_argument("--memory-limit-gib", type=float, action="append", default=[],
                        help="add an automatic-tiling variant under this memory limit "
                        "(repeatable), e.g. 8 for an 8 GB card")
    parser.add_argument("--only", default=None, help="comma-separated variant name prefixes "
                        "to run (the first, the PSNR reference, always runs)")
    parser.add_argument("--json", default="benchmark-gpu.json")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("benchmarks/gpu.py needs a CUDA device; use benchmarks/cpu.py on this machine")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    matmul = {p: measured_matmul_peak(device, p) for p in ("fp32", "tf32", "fp16", "bf16")}
    print(f"{name}; matmul TFLOP/s: " + ", ".join(f"{p} {v:.0f}" for p, v in matmul.items()),
          flush=True)
    measurements: list[Measurement] = []
    useful_flops: dict[str, float] = {}
    reference: dict[tuple[str, str], Measurement] = {}
    rows = [["task", "variant", "px", "tiles", "s/MP out", "vs ref", "peak MB", "PSNR",
             "TFLOP/s", "of spec peak", "of matmul"]]
    for task in args.tasks.split(","):
        size = args.size or DEFAULT_SIZES[task]
        image = load_image(args.image, size)
        base = network_for(task)
        reference_image = None
        chosen = variants(task, size, args.device, args.memory_limit_gib)
        if args.only:
            prefixes = tuple(args.only.split(","))
            chosen = chosen[:1] + [v for v in chosen[1:] if v.name.startswith(prefixes)]
        for variant in chosen:
            first = reference_image is None
            measurement, output = run_variant(variant, image, count_flops=first,
                                              network=copy.deepcopy(base))
            if first:
                reference_image = output
                useful_flops[task] = measurement.flops or float("nan")
            else:
                measurement.psnr_db = psnr(output, reference_image)
            if variant.path == "reference":
                reference[(task, variant.mode)] = measurement
            measurements.append(measurement)
            rows.append(row(measurement, reference, useful_flops[task], name, matmul,
                            args.peak_tflops))
            print("  ".join(rows[-1]), flush=True)
            write(args.json, name, matmul, useful_flops, measurements)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    print()
    print(table(rows))
    print("\nweights: random (seed 0) on the full-size official architecture; FLOPs are those of "
          "the whole-image network, so tiled rows count overlap work as overhead")
    print(f"wrote {args.json}")


def write(path: str, name: str, matmul: dict[str, float], useful_flops: dict[str, float],
          measurements: list[Measurement]) -> None:
    Path(path).write_text(json.dumps({
        "environment": {**environment(), "device": name, "matmul_tflops": matmul},
        "useful_flops": useful_flops,
        "results": [{**asdict(m), "seconds_per_megapixel": m.seconds_per_megapixel}
                    for m in measurements],
    }, indent=2))


if __name__ == "__main__":
    main()
