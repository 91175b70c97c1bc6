"""Pieces shared by benchmarks/cpu.py and benchmarks/gpu.py (run by hand, never by CI).

Every variant runs in its own subprocess so that its peak RSS is its own. The network is the
full-size official architecture with deterministic random weights (seed 0): no real weights are
needed, so numbers are comparable across machines, but restored images are not meaningful
pictures; PSNR between variants still measures how far each variant is from the reference.
"""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adacode_cli.engine.restorer import RestoreInterrupted, RestoreOptions, Restorer
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.layers import NearestUpConv
from adacode_cli.model.networks import AdaCodeNet, build_network
from adacode_cli.model.padding import restore_whole
from adacode_cli.model.swin import SwinLayers

TASKS = {"sr-x2": ("sr", 2), "sr-x4": ("sr", 4), "inpaint": ("inpaint", 1),
         "recon": ("recon", 1)}
OFFICIAL_TILE, OFFICIAL_PAD = 240, 16


@dataclass
class Variant:
    """One measured configuration."""

    task: str
    name: str
    size: int  # input side in pixels
    path: str  # "reference" (official path, our modules) or "engine"
    mode: str  # "whole" or "tiled"
    device: str = "cpu"
    precision: str = "fp32"
    tile: int = 0
    tile_overlap: int | None = None  # None: the engine's default
    statistics: str = "auto"
    batch: int = 1
    channels_last: bool = False
    threads: int = 0
    memory_limit: int | None = None
    stop_after_batches: int | None = None  # memory probes: stop once the peak is reached
    repeats: int = 1  # > 1: warm up on the image itself, report the median
    whole_latent: bool = True  # False: tiles run their Swin steps themselves (earlier releases)


@dataclass
class Measurement:
    variant: Variant
    seconds: float
    output_megapixels: float
    peak_rss_mb: float
    tiles: int
    flops: float | None = None
    notices: list[str] = field(default_factory=list)
    psnr_db: float | None = None

    @property
    def seconds_per_megapixel(self) -> float:
        return self.seconds / self.output_megapixels


def photo_like(size: int, seed: int = 0) -> np.ndarray:
    """A procedural stand-in for a photo: gradients, flat objects with edges, texture, noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    image = np.stack([0.5 + 0.4 * np.sin(2.1 * x + 1.3 * y + phase) for phase in (0, 2, 4)], -1)
    for _ in range(40):
        cy, cx, radius = rng.random(3) * [1, 1, 0.15] + [0, 0, 0.02]
        inside = (y - cy) ** 2 + (x - cx) ** 2 < radius**2
        image[inside] = image[inside] * 0.3 + rng.random(3) * 0.7
    texture = np.sin(90 * x + 13 * y) * np.cos(70 * y) * (x > 0.5)
    image += 0.08 * texture[..., None] + rng.normal(0, 0.02, image.shape)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def load_image(path: str | None, size: int) -> np.ndarray:
    """A centre crop of `path` (measurement only), or the procedural image."""
    if path is None:
        return photo_like(size)
    from PIL import Image

    with Image.open(path) as opened:
        array = np.asarray(opened.convert("RGB"))
    top, left = max(0, (array.shape[0] - size) // 2), max(0, (array.shape[1] - size) // 2)
    return np.ascontiguousarray(array[top : top + size, left : left + size])


def network_for(task: str) -> AdaCodeNet:
    kind, scale = TASKS[task]
    torch.manual_seed(0)
    return build_network(AdaCodeConfig.official(kind, scale)).eval()  # type: ignore[arg-type]


def use_official_formulation(network: AdaCodeNet) -> None:
    """Explicit attention, `F.linear`, upsample then conv: the official code's operations."""
    for module in network.modules():
        if isinstance(module, SwinLayers):
            module.set_attention("math")
        if isinstance(module, NearestUpConv):
            module.subpixel = False


def official_tiled(network: AdaCodeNet, x: torch.Tensor) -> torch.Tensor:
    """The official `test_tile`: 240 px tiles with 16 px context, each padded and normalised on
    its own, pasted without blending, one tile at a time."""
    scale = network.config.scale
    _, _, height, width = x.shape
    output = torch.zeros(1, 3, height * scale, width * scale)
    for top in range(0, height, OFFICIAL_TILE):
        for left in range(0, width, OFFICIAL_TILE):
            bottom, right = min(top + OFFICIAL_TILE, height), min(left + OFFICIAL_TILE, width)
            y0, x0 = max(top - OFFICIAL_PAD, 0), max(left - OFFICIAL_PAD, 0)
            y1, x1 = min(bottom + OFFICIAL_PAD, height), min(right + OFFICIAL_PAD, width)
            tile, _ = restore_whole(network, x[:, :, y0:y1, x0:x1])
            oy, ox = (top - y0) * scale, (left - x0) * scale
            output[:, :, top * scale : bottom * scale, left * scale : right * scale] = tile[
                :, :, oy : oy + (bottom - top) * scale, ox : ox + (right - left) * scale
            ].float().cpu()
    return output


def official_tile_count(size: int) -> int:
    return math.ceil(size / OFFICIAL_TILE) ** 2


def run_variant(
    variant: Variant, image: np.ndarray, count_flops: bool = False,
    network: AdaCodeNet | None = None,
) -> tuple[Measurement, np.ndarray]:
    """Measure one variant in this process (on `network`, a fresh copy the variant may change,
    else a new one); returns the measurement and the output image."""
    if variant.threads:
        torch.set_num_threads(variant.threads)
    network = network or network_for(variant.task)
    device = torch.device(variant.device)
    warm = photo_like(2 * network.config.pad_multiple, seed=1)
    if variant.path == "reference":
        run = _reference_runner(network, variant, device)
    else:
        run = _engine_runner(network, variant)
    run(warm)
    if variant.repeats > 1:
        run(image)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    timings = []
    for _ in range(variant.repeats):
        _synchronize(device)
        started = time.perf_counter()
        pixels, tiles, notices = run(image)
        _synchronize(device)
        timings.append(time.perf_counter() - started)
    peak = _peak_rss_mb()
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    flops = _count(lambda: run(image)) if count_flops else None
    megapixels = (variant.size * network.config.scale) ** 2 / 1e6
    seconds = float(np.median(timings))
    return Measurement(variant, seconds, megapixels, peak, tiles, flops, notices), pixels


Runner = Any  # Callable[[np.ndarray], tuple[np.ndarray, int, list[str]]]


def _peak_rss_mb() -> float:
    """This process's own peak RSS. Linux keeps `ru_maxrss` across exec, so a variant started
    from a large parent would report the parent's peak; `VmHWM` belongs to this process's
    memory map alone."""
    try:
        with open("/proc/self/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reference_runner(network: AdaCodeNet, variant: Variant, device: torch.device) -> Runner:
    """The official code path on our modules: explicit attention, fp32, whole or 240 px tiles."""
    network = network.to(device)
    use_official_formulation(network)

    def run(image: np.ndarray) -> tuple[np.ndarray, int, list[str]]:
        x = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float().div(255).to(device)
        with torch.inference_mode():
            if variant.mode == "whole" or max(image.shape[:2]) <= OFFICIAL_TILE:
                output, tiles = restore_whole(network, x)[0].float().cpu(), 1
            else:
                output, tiles = official_tiled(network, x), official_tile_count(image.shape[0])
        pixels = output[0].clamp(0, 1).permute(1, 2, 0).mul(255).round().byte().numpy()
        return pixels, tiles, []

    return run


def _engine_runner(network: AdaCodeNet, variant: Variant) -> Runner:
    options = RestoreOptions(
        device=variant.device, precision=variant.precision,
        tile=None if variant.mode == "auto" else variant.tile,
        tile_overlap=variant.tile_overlap, statistics=variant.statistics,
        batch_size=variant.batch, channels_last=variant.channels_last,
        memory_limit=variant.memory_limit, whole_latent=variant.whole_latent,
    )
    restorer = Restorer(network, options)

    def run(image: np.ndarray) -> tuple[np.ndarray, int, list[str]]:
        batches = [0]

        def stop() -> bool:
            batches[0] += 1
            limit = variant.stop_after_batches
            return limit is not None and batches[0] > limit

        plan = restorer.plan(image.shape[0], image.shape[1])
        parked = [] if plan.parking == "device" or plan.tile is None else [
            f"exact statistics parked on {plan.parking}"]
        if plan.tile is not None:
            where = "over the whole latent" if plan.whole_latent else "per tile"
            parked.append(f"{plan.tile} px tiles, overlap {plan.overlap}, Swin steps {where}")
        try:
            result = restorer.restore(image, should_stop=stop)
        except RestoreInterrupted:
            note = f"stopped after {variant.stop_after_batches} batches (memory probe)"
            return np.zeros((1, 1, 3), np.uint8), 0, [note, *parked]
        return result.image, result.tiles, [*result.notices, *parked]

    return run


def _count(run: Any) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        run()
    return float(counter.get_total_flops())


def child_main(spec: str, output: str, image_path: str | None, count_flops: bool) -> None:
    """Entry point of a variant subprocess: measure, save the image, print JSON."""
    variant = Variant(**json.loads(spec))
    image = load_image(image_path, variant.size)
    measurement, pixels = run_variant(variant, image, count_flops)
    np.save(output, pixels)
    payload = asdict(measurement)
    print("RESULT " + json.dumps(payload))


def measure_in_subprocess(
    script: str, variant: Variant, workdir: Path, image_path: str | None, count_flops: bool = False
) -> tuple[Measurement, np.ndarray]:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in variant.name)
    output = workdir / f"{variant.task}-{safe}.npy"
    command = [sys.executable, script, "--child", json.dumps(asdict(variant)), "--output",
               str(output)]
    if image_path:
        command += ["--image", image_path]
    if count_flops:
        command.append("--count-flops")
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(f"variant {variant.name} failed:\n{completed.stderr[-3000:]}")
    payload = json.loads(line[len("RESULT ") :])
    payload["variant"] = Variant(**payload["variant"])
    return Measurement(**payload), np.load(output)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("nan")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def environment() -> dict[str, Any]:
    import platform

    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or _cpu_model(),
        "threads": torch.get_num_threads(),
        "weights": "random, seed 0 (full-size official architecture; no real weights needed)",
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in
                       enumerate(zip(row, widths, strict=True))) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
