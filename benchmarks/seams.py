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
import json
import sys
import time
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


def restore(network: AdaCodeNet, image: np.ndarray, tile: int, tile_overlap: int | None
            ) -> RestoreResult:
    """The engine's result at fp32 (tile 0: the whole image), exact statistics, float32."""
    options = RestoreOptions(device="cpu", precision="fp32", tile=tile, tile_overlap=tile_overlap,
                             statistics="exact", channels_last=False)
    return Restorer(network, options).restore(image)


def measure_profile(network: AdaCodeNet, image: np.ndarray, tile: int) -> list[float]:
    """RMS output error against distance (input px) from a tile border.

    `image` is (tile - a) x (2 tile - a) for the model's alignment a, which the official rule
    pads to tile x 2 tile, cut into exactly two tiles that abut at column `tile`, without
    blending, so every output column comes from one tile and its error depends only on how far
    that tile's cut edge is. Both tiles get the whole image's exact statistics: the profile is
    the reach of the receptive field alone (with an overlap, the statistics come from tile
    cores away from the cut edges, where the tiles are already close to the whole image).
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
    [everything] = plan_tiles(height, width, width, 0, align, config.latent_factor, 0).tiles
    statistics = executor.run(TileRun(padded, [[everything]], len(executor.segments) - 1),
                              None, lambda fraction: None)
    grid = plan_tiles(height, width, tile, 0, align, config.latent_factor, 0)
    if len(grid) != 2:
        raise RuntimeError(f"the profile cut needs 2 tiles, the grid has {len(grid)}")
    outputs = TileOutputs(grid, config, image.shape[0], image.shape[1], image.dtype, False)
    executor.run(TileRun(padded, [[t] for t in grid.tiles], 0, known=statistics),
                 outputs.emit, lambda fraction: None)
    columns = ((outputs.canvas.image - whole).astype(np.float64) ** 2).mean(axis=(0, 2))
    per_input = columns.reshape(-1, config.scale).mean(axis=1)
    left, right = per_input[:tile][::-1], per_input[tile:]
    pooled = left.copy()
    pooled[: len(right)] = (left[: len(right)] + right) / 2
    return [float(v) for v in np.sqrt(pooled)]


def write_profiles(tasks: list[str], path: Path) -> None:
    """Measure the profile of every task on the astronaut photo and merge it into `path`."""
    data = json.loads(path.read_text()) if path.exists() else {}
    for task in tasks:
        tile = PROFILE_TILE[task]
        started = time.perf_counter()
        network = network_for(task)
        align = network.config.pad_multiple
        image = photo("astronaut", tile - align, 2 * tile - align)
        errors = measure_profile(network, image, tile)
        data[task] = {
            "photo": f"astronaut, centre {tile - align}x{2 * tile - align}",
            "weights": "random, seed 0, full-size official architecture",
            "rms_error": [float(f"{e:.3g}") for e in errors],
        }
        print(f"{task}: profile in {time.perf_counter() - started:.0f} s; error at "
              + ", ".join(f"{d} px {errors[d]:.2g}" for d in range(0, tile, tile // 8)),
              flush=True)
        path.write_text(json.dumps(data, indent=1) + "\n")


def seam_table(task: str, size: int, tiles: list[int], overlaps: list[int | None],
               photos: list[str]) -> list[list[str]]:
    """PSNR(tiled, whole) of every tile size x overlap (None: the default) on each photo,
    beside the PSNR `overlap.expected_psnr` predicts from the profile."""
    network = network_for(task)
    config = network.config
    rows = [["task", "photo", "px", "tile", "overlap", "PSNR tiled vs whole", "predicted"]]
    for name in photos:
        image = photo(name, size, size)
        whole = restore(network, image, 0, None).image
        padded = (padded_size(size, config.pad_multiple),) * 2
        for tile in tiles:
            for chosen in overlaps:
                used = overlap.image_overlap(config, padded, (size, size), tile) \
                    if chosen is None else chosen
                measured = psnr(restore(network, image, tile, used).image * 255, whole * 255)
                predicted = overlap.core_prediction(config, padded, (size, size), tile, used)[1]
                label = f"{used} (default)" if chosen is None else str(used)
                rows.append([task, name, str(size), str(tile), label, f"{measured:.1f} dB",
                             f"{predicted:.1f} dB"])
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
    args = parser.parse_args()
    if args.profile:
        write_profiles(args.profile.split(","), overlap.PROFILE_PATH)
        return
    rows = seam_table(args.task, args.size, [int(t) for t in args.tiles.split(",")],
                      [None if o == "default" else int(o) for o in args.overlaps.split(",")],
                      args.photos.split(","))
    print(table(rows))


if __name__ == "__main__":
    main()
