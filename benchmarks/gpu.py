"""CUDA benchmark of the restoration engine against the plain reference path, run by hand.

    python benchmarks/gpu.py                         # sr-x2, sr-x4, inpaint on cuda:0
    python benchmarks/gpu.py --tasks sr-x4 --size 768 --peak-tflops 989

For every task, each variant in a fresh subprocess, median of three timed runs after warm-up:
the reference path (our modules run like the official code: explicit attention, fp32, whole
image, and the official 240 px per-tile tiling one tile at a time) and the engine whole at
fp32/fp16/bf16 and tiled at fp16/bf16 with tile batches of 1 and 4 (NCHW and channels-last).
It reports seconds per output megapixel, the speed ratio against the reference of the same kind,
peak allocated GPU memory, PSNR against the fp32 reference whole-image output, and the FLOP/s
reached: the FLOPs of the whole-image network (counted with torch's FlopCounterMode) divided by
the time, as a fraction of the device's dense peak for the precision (a table of known GPUs or
--peak-tflops) and of a measured large matrix product in the same dtype.
Weights are random (seed 0) on the full-size official architecture.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
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
    child_main,
    environment,
    measure_in_subprocess,
    psnr,
    table,
)

from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.padding import padded_size

DEFAULT_SIZES = {"sr-x2": 1024, "sr-x4": 512, "inpaint": 1024}
# dense (non-sparse) tensor-core peaks in TFLOP/s: fp16/bf16 with fp32 accumulate, and tf32 as
# "fp32" (what PyTorch uses for fp32 convolutions by default on these GPUs)
KNOWN_PEAKS = {
    "H200": {"fp16": 989.0, "bf16": 989.0, "fp32": 494.0},
    "H100 SXM": {"fp16": 989.0, "bf16": 989.0, "fp32": 494.0},
    "H100 PCIe": {"fp16": 756.0, "bf16": 756.0, "fp32": 378.0},
    "H100": {"fp16": 989.0, "bf16": 989.0, "fp32": 494.0},
    "A100": {"fp16": 312.0, "bf16": 312.0, "fp32": 156.0},
    "L40S": {"fp16": 362.0, "bf16": 362.0, "fp32": 183.0},
    "L4": {"fp16": 121.0, "bf16": 121.0, "fp32": 60.0},
    "RTX 4090": {"fp16": 165.0, "bf16": 165.0, "fp32": 82.6},
    "RTX 3090": {"fp16": 71.0, "bf16": 71.0, "fp32": 35.6},
    "T4": {"fp16": 65.0, "bf16": 0.0, "fp32": 8.1},
    "V100": {"fp16": 125.0, "bf16": 0.0, "fp32": 15.7},
}


def spec_peak(name: str, precision: str) -> float | None:
    for key, peaks in KNOWN_PEAKS.items():
        if key in name:
            return peaks.get(precision) or None
    return None


def measured_matmul_peak(dtype: torch.dtype, size: int = 8192) -> float:
    """TFLOP/s of a large square matrix product in `dtype`, with PyTorch's default settings
    (fp32 products without TF32, while cuDNN convolutions may use TF32)."""
    a = torch.randn(size, size, device="cuda", dtype=dtype)
    b = torch.randn(size, size, device="cuda", dtype=dtype)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    runs = 10
    started = time.perf_counter()
    for _ in range(runs):
        a @ b
    torch.cuda.synchronize()
    return 2 * size**3 * runs / (time.perf_counter() - started) / 1e12


def tile_for(task: str, size: int, tiles_per_side: int) -> int:
    kind, scale = TASKS[task]
    config = AdaCodeConfig.official(kind, scale)  # type: ignore[arg-type]
    align = config.pad_multiple
    padded = padded_size(size, align)
    overlap = 2 * align
    side = (padded + (tiles_per_side - 1) * overlap) / tiles_per_side
    return math.ceil(side / align) * align


def variants(task: str, size: int, device: str) -> list[Variant]:
    common = {"device": device, "repeats": 3}
    result = [Variant(task, "reference whole fp32", size, "reference", "whole", **common)]
    if size > OFFICIAL_TILE:
        result.append(Variant(task, "reference tiled fp32", size, "reference", "tiled",
                              **common))
    for precision in ("fp32", "fp16", "bf16"):
        result.append(Variant(task, f"engine whole {precision}", size, "engine", "whole",
                              precision=precision, **common))
    result.append(Variant(task, "engine whole fp16 NHWC", size, "engine", "whole",
                          precision="fp16", channels_last=True, **common))
    tile = tile_for(task, size, 4)
    for precision in ("fp16", "bf16"):
        for batch in (1, 4):
            for channels_last in (False, True):
                suffix = " NHWC" if channels_last else ""
                result.append(Variant(
                    task, f"engine tiled {precision} batch {batch}{suffix}", size, "engine",
                    "tiled", precision=precision, tile=tile, batch=batch,
                    channels_last=channels_last, **common,
                ))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="sr-x2,sr-x4,inpaint")
    parser.add_argument("--size", type=int, default=None, help="input side (default per task)")
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--image", default=None, help="crop this image instead of the "
                        "procedural one (measurement only)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="dense peak of the device for every precision (else known table)")
    parser.add_argument("--json", default="benchmark-gpu.json")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--output", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--count-flops", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child, args.output, args.image, args.count_flops)
        return
    if not torch.cuda.is_available():
        sys.exit("benchmarks/gpu.py needs a CUDA device; use benchmarks/cpu.py on this machine")
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device)
    matmul = {p: measured_matmul_peak(d) for p, d in
              (("fp32", torch.float32), ("fp16", torch.float16), ("bf16", torch.bfloat16))}
    measurements: list[Measurement] = []
    useful_flops: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as workdir:
        for task in args.tasks.split(","):
            size = args.size or DEFAULT_SIZES[task]
            reference = None
            for variant in variants(task, size, args.device):
                count = reference is None
                measurement, image = measure_in_subprocess(__file__, variant, Path(workdir),
                                                           args.image, count_flops=count)
                if reference is None:
                    reference = image
                    useful_flops[task] = measurement.flops or float("nan")
                else:
                    measurement.psnr_db = psnr(image, reference)
                measurements.append(measurement)
                print(f"  {task}: {variant.name}: {measurement.seconds:.3f} s", flush=True)
    rows = [["task", "variant", "px", "tiles", "s/MP out", "vs ref", "peak MB", "PSNR",
             "TFLOP/s", "of spec peak", "of matmul"]]
    references = {(m.variant.task, m.variant.mode): m for m in measurements
                  if m.variant.path == "reference"}
    for m in measurements:
        v = m.variant
        base = references.get((v.task, v.mode)) or references[(v.task, "whole")]
        achieved = useful_flops[v.task] / m.seconds / 1e12
        peak = args.peak_tflops or spec_peak(name, v.precision)
        rows.append([
            v.task, v.name, str(v.size), str(m.tiles), f"{m.seconds_per_megapixel:.3f}",
            f"{base.seconds_per_megapixel / m.seconds_per_megapixel:.2f}x",
            f"{m.peak_rss_mb:.0f}", "ref" if m.psnr_db is None else f"{m.psnr_db:.1f}",
            f"{achieved:.1f}", "?" if not peak else f"{achieved / peak:.0%}",
            f"{achieved / matmul[v.precision]:.0%}",
        ])
    print(f"\n{name}; matmul TFLOP/s: " +
          ", ".join(f"{p} {v:.0f}" for p, v in matmul.items()))
    print(table(rows))
    print("\nweights: random (seed 0) on the full-size official architecture; FLOPs are those of "
          "the whole-image network, so tiled rows count overlap work as overhead")
    Path(args.json).write_text(json.dumps({
        "environment": {**environment(), "device": name, "matmul_tflops": matmul},
        "useful_flops": useful_flops,
        "results": [{**asdict(m), "seconds_per_megapixel": m.seconds_per_megapixel}
                    for m in measurements],
    }, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
