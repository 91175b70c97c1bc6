"""Seams of the tiled engine on real photos: how far a tile border reaches into the output, and
PSNR(tiled, whole) against tile size and overlap. Run from `benchmarks/cpu.py --seams`, or

    python benchmarks/seams.py --profile sr-x2,sr-x4,inpaint,recon   # rewrite the profile data

The photos are scikit-image's bundled samples (astronaut, chelsea, coffee: `pip install
scikit-image`, for the benchmark only). Weights are random (seed 0) on the full-size official
architecture, like every benchmark here; fp32 throughout, so the only difference between tiled
and whole is the context a tile border cuts off (image-wide statistics are exact).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import network_for, psnr, table

from adacode_cli.engine import overlap
from adacode_cli.engine.canvas import TileOutputs
from adacode_cli.engine.executor import TileExecutor, TileRun
from adacode_cli.engine.precision import resolve_precision
from adacode_cli.engine.restorer import RestoreOptions, Restorer, RestoreResult
from adacode_cli.engine.tiling import plan_tiles
from adacode_cli.model.networks import AdaCodeNet
from adacode_cli.model.padding import flip_pad, padded_size
from adacode_cli.model.swin import SwinLayers

PHOTOS = ("astronaut", "chelsea", "coffee")
# the profile cut: one seam between two tiles of this side (input px), beyond the reach
PROFILE_TILE = {"sr-x2": 192, "sr-x4": 128, "inpaint": 256, "recon": 256}


def photo(name: str, height: int, width: int) -> np.ndarray:
    """A centre crop of one of scikit-image's bundled photos, float32 in [0, 1]."""
    from skimage import data

    array = getattr(data, name)()
    if array.shape[0] < height or array.shape[1] < width:
        raise ValueError(f"{name} is {array.shape[:2]}, smaller than {height}x{width}")
    top, left = (array.shape[0] - height) // 2, (array.shape[1] - width) // 2
    crop = array[top : top + height, left : left + width, :3]
    return np.ascontiguousarray(crop, dtype=np.float32) / 255.0


def restore(network: AdaCodeNet, image: np.ndarray, tile: int, tile_overlap: int | None,
            whole_latent: bool = True) -> RestoreResult:
    """The engine's result at fp32 (tile 0: the whole image), exact statistics, float32."""
    return Restorer(network, _options(tile, tile_overlap, whole_latent)).restore(image)


def _options(tile: int, tile_overlap: int | None, whole_latent: bool) -> RestoreOptions:
    return RestoreOptions(device="cpu", precision="fp32", tile=tile, tile_overlap=tile_overlap,
                          statistics="exact", channels_last=False, whole_latent=whole_latent)


def measure_profile(network: AdaCodeNet, image: np.ndarray, tile: int,
                    whole_latent: bool = False) -> list[float]:
    """RMS output error against distance (input px) from a tile border.

    `image` is (tile - a) x (2 tile - a) for the model's alignment a, which the official rule
    pads to tile x 2 tile, cut into exactly two tiles that abut at column `tile`, without
    blending, so every output column comes from one tile and its error depends only on how far
    that tile's cut edge is. Both tiles get the whole image's exact statistics: the profile is
    the reach of the receptive field alone (with an overlap, the statistics come from tile
    cores away from the cut edges, where the tiles are already close to the whole image).
    With `whole_latent`, both tiles also get the whole image's Swin outputs (as the executor
    gives them, gathered from cores far enough from any cut edge): the reach of the
    convolutions alone.
    Returns the error at distance 0, 1, ... tile - 1 (both sides pooled where both exist).
    """
    config = network.config
    align = config.pad_multiple
    if image.shape[:2] != (tile - align, 2 * tile - align):
        raise ValueError("the profile image must be (tile - align) x (2 tile - align)")
    whole = restore(network, image, 0, None).image
    x = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0)
    padded = flip_pad(x, align)
    height, width = padded.shape[-2:]
    cpu = torch.device("cpu")
    executor = TileExecutor(network, cpu, resolve_precision("fp32", cpu)[0])
    grid = plan_tiles(height, width, tile, 0, align, config.latent_factor, 0)
    if len(grid) != 2:
        raise RuntimeError(f"the profile cut needs 2 tiles, the grid has {len(grid)}")
    swin = _SwinWindows(network, width, [(t.left, t.width) for t in grid.tiles])
    [everything] = plan_tiles(height, width, width, 0, align, config.latent_factor, 0).tiles
    with swin.recording():
        statistics = executor.run(TileRun(padded, [[everything]], len(executor.segments) - 1),
                                  None, lambda fraction: None)
    outputs = TileOutputs(grid, config, image.shape[0], image.shape[1], image.dtype, False)
    with swin.replaying() if whole_latent else contextlib.nullcontext():
        executor.run(TileRun(padded, [[t] for t in grid.tiles], 0, known=statistics),
                     outputs.emit, lambda fraction: None)
    columns = ((outputs.canvas.image - whole).astype(np.float64) ** 2).mean(axis=(0, 2))
    per_input = columns.reshape(-1, config.scale).mean(axis=1)
    left, right = per_input[:tile][::-1], per_input[tile:]
    pooled = left.copy()
    pooled[: len(right)] = (left[: len(right)] + right) / 2
    return [float(v) for v in np.sqrt(pooled)]


def measure_latent_reach(network: AdaCodeNet, image: np.ndarray) -> int:
    """How far (input px) every core edge must lie inside its tile for the latent gathered from
    the cores to be the whole image's: the least d, in latent-grid steps, at which two tiles
    sharing 2 d px (seam in the middle, no blending), run as the engine runs them (exact
    statistics, Swin steps over the whole latent), keep every output column at
    `overlap.LATENT_REACH_DB` (RMS error 10^(-LATENT_REACH_DB / 20)). Nearer, a core holds latent
    pixels its tile computed without their context, and the Swin steps spread the error over
    whole windows. `image` is (4 a - a) x (8 a - a) for the model's alignment a."""
    config = network.config
    align, unit = config.pad_multiple, config.latent_factor
    if image.shape[:2] != (3 * align, 7 * align):
        raise ValueError("the latent-reach image must be 3 align x 7 align")
    whole = restore(network, image, 0, None).image
    padded = flip_pad(torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0), align)
    height, width = padded.shape[-2:]
    cpu = torch.device("cpu")
    executor = TileExecutor(network, cpu, resolve_precision("fp32", cpu)[0])
    limit = 10 ** (-overlap.LATENT_REACH_DB / 20)
    for reach in range(unit, align + 1, unit):
        grid = plan_tiles(height, width, width // 2 + reach, 2 * reach, unit, unit, 0)
        if len(grid) != 2 or grid.cols.seams != (width // 2,):
            raise RuntimeError(f"the latent-reach cut at {reach} px is not two tiles")
        outputs = TileOutputs(grid, config, image.shape[0], image.shape[1], image.dtype, False)
        executor.run(TileRun(padded, [[t] for t in grid.tiles], len(executor.segments) - 1,
                             whole_latent=True), outputs.emit, lambda fraction: None)
        columns = ((outputs.canvas.image - whole).astype(np.float64) ** 2).mean(axis=(0, 2))
        if np.sqrt(columns.max()) <= limit:
            return reach
    return align


class _SwinWindows:
    """Records every Swin stack's output on the whole image, then hands each tile its window of
    it in place of its own (tiles run one by one, in order)."""

    def __init__(self, network: AdaCodeNet, width: int, tiles: list[tuple[int, int]]) -> None:
        self.stacks = [m for m in network.modules() if isinstance(m, SwinLayers)]
        self.width, self.tiles = width, tiles
        self.outputs: dict[int, torch.Tensor] = {}
        self.calls = 0

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        def record(module: torch.nn.Module, args: object, output: torch.Tensor) -> None:
            self.outputs[id(module)] = output.clone()

        with self._hooked(record):
            yield

    @contextlib.contextmanager
    def replaying(self) -> Iterator[None]:
        def replay(module: torch.nn.Module, args: object, output: torch.Tensor) -> torch.Tensor:
            left, width = self.tiles[self.calls // len(self.stacks)]
            self.calls += 1
            whole = self.outputs[id(module)]
            ratio = whole.shape[-1] / self.width
            return whole[..., round(left * ratio) : round((left + width) * ratio)].clone()

        self.calls = 0
        with self._hooked(replay):
            yield
        if self.calls != len(self.stacks) * len(self.tiles):
            raise RuntimeError(f"{self.calls} Swin calls for {len(self.tiles)} tiles")

    @contextlib.contextmanager
    def _hooked(self, hook: Callable[..., torch.Tensor | None]) -> Iterator[None]:
        handles = [stack.register_forward_hook(hook) for stack in self.stacks]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()


def write_profiles(tasks: list[str], path: Path) -> None:
    """Measure both profiles of every task on the astronaut photo and merge them into `path`:
    tiles that run their Swin steps themselves, and tiles given the whole latent's."""
    data = json.loads(path.read_text()) if path.exists() else {}
    for task in filter(None, tasks):
        network = network_for(task)
        align = network.config.pad_multiple
        entry: dict[str, object] = {"weights": "random, seed 0, full-size official architecture"}
        for key, tile, whole_latent in (("rms_error", PROFILE_TILE[task], False),
                                        (overlap.WHOLE_LATENT_KEY, 4 * align, True)):
            started = time.perf_counter()
            image = photo("astronaut", tile - align, 2 * tile - align)
            errors = measure_profile(network, image, tile, whole_latent)
            entry[key] = [float(f"{e:.3g}") for e in errors]
            entry[f"photo ({key})"] = f"astronaut, centre {tile - align}x{2 * tile - align}"
            print(f"{task} ({key}): profile in {time.perf_counter() - started:.0f} s; error at "
                  + ", ".join(f"{d} px {errors[d]:.2g}" for d in range(0, tile, tile // 8)),
                  flush=True)
        data[task] = entry
        path.write_text(json.dumps(data, indent=1) + "\n")
    write_latent_reaches(tasks, path)


def write_latent_reaches(tasks: list[str], path: Path) -> None:
    """Measure the latent reach of every task (`measure_latent_reach`) into `path`."""
    data = json.loads(path.read_text())
    for task in filter(None, tasks):
        started = time.perf_counter()
        network = network_for(task)
        align = network.config.pad_multiple
        reach = measure_latent_reach(network, photo("astronaut", 3 * align, 7 * align))
        data[task][overlap.LATENT_REACH_KEY] = reach
        print(f"{task}: latent reach {reach} px in {time.perf_counter() - started:.0f} s",
              flush=True)
        path.write_text(json.dumps(data, indent=1) + "\n")


def seam_table(task: str, size: int, tiles: list[int], overlaps: list[int | None],
               photos: list[str], whole_latent: bool = True) -> list[list[str]]:
    """PSNR(tiled, whole) of every tile size x overlap (None: the default) on each photo,
    beside the PSNR `overlap.core_prediction` predicts from the profile of the plan's kind
    (Swin steps over the whole latent, or per tile)."""
    network = network_for(task)
    config = network.config
    rows = [["task", "photo", "px", "tile", "overlap", "Swin steps", "PSNR tiled vs whole",
             "predicted"]]
    for name in photos:
        image = photo(name, size, size)
        whole = restore(network, image, 0, None).image
        padded = (padded_size(size, config.pad_multiple),) * 2
        for tile in tiles:
            for chosen in overlaps:
                restorer = Restorer(network, _options(tile, chosen, whole_latent))
                plan = restorer.plan(size, size)
                measured = psnr(restorer.restore(image).image * 255, whole * 255)
                predicted = overlap.core_prediction(config, padded, (size, size), tile,
                                                    plan.overlap, plan.whole_latent)[1]
                label = f"{plan.overlap} (default)" if chosen is None else str(plan.overlap)
                kind = "whole latent" if plan.whole_latent else "per tile"
                rows.append([task, name, str(size), str(tile), label, kind,
                             f"{measured:.1f} dB", f"{predicted:.1f} dB"])
                print("  " + "  ".join(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="", help="tasks whose profile to measure")
    parser.add_argument("--task", default="sr-x2")
    parser.add_argument("--size", type=int, default=480)
    parser.add_argument("--tiles", default="192,240,256")
    parser.add_argument("--overlaps", default="0,32,default")
    parser.add_argument("--photos", default="astronaut")
    parser.add_argument("--latent-reach", default="",
                        help="tasks whose latent reach alone to measure again")
    parser.add_argument("--per-tile-swin", action="store_true",
                        help="tiles run their Swin steps themselves (as earlier releases)")
    args = parser.parse_args()
    if args.profile or args.latent_reach:
        write_profiles(args.profile.split(","), overlap.PROFILE_PATH)
        write_latent_reaches(args.latent_reach.split(","), overlap.PROFILE_PATH)
        return
    rows = seam_table(args.task, args.size, [int(t) for t in args.tiles.split(",")],
                      [None if o == "default" else int(o) for o in args.overlaps.split(",")],
                      args.photos.split(","), not args.per_tile_swin)
    print(table(rows))


if __name__ == "__main__":
    main()
