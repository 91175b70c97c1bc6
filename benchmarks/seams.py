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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import network_for, psnr, table

from adacode_cli.engine import overlap
from adacode_cli.engine.restorer import RestoreOptions, Restorer
from adacode_cli.model.networks import AdaCodeNet

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
            ) -> np.ndarray:
    """The engine's output at fp32 (tile 0: the whole image), exact statistics, float32."""
    options = RestoreOptions(device="cpu", precision="fp32", tile=tile, tile_overlap=tile_overlap,
                             statistics="exact", channels_last=False)
    return Restorer(network, options).restore(image).image


def measure_profile(network: AdaCodeNet, image: np.ndarray, tile: int) -> list[float]:
    """RMS output error against distance (input px) from a tile border.

    `image` is tile x 2 tile: two tiles abutting with no overlap and no blending, so every
    output column comes from one tile and its error depends only on how far that tile's cut
    edge is. Returns the error at distance 0, 1, ... tile - 1 (both sides of the seam pooled).
    """
    if image.shape[:2] != (tile, 2 * tile):
        raise ValueError("the profile image must be tile x 2 tile")
    whole = restore(network, image, 0, None)
    tiled = restore(network, image, tile, 0)
    scale = network.config.scale
    columns = ((tiled - whole).astype(np.float64) ** 2).mean(axis=(0, 2))
    per_input = columns.reshape(2 * tile, scale).mean(axis=1)
    left, right = per_input[:tile][::-1], per_input[tile:]
    return [float(v) for v in np.sqrt((left + right) / 2)]


def write_profiles(tasks: list[str], path: Path) -> None:
    """Measure the profile of every task on the astronaut photo and merge it into `path`."""
    data = json.loads(path.read_text()) if path.exists() else {}
    for task in tasks:
        tile = PROFILE_TILE[task]
        started = time.perf_counter()
        errors = measure_profile(network_for(task), photo("astronaut", tile, 2 * tile), tile)
        data[task] = {
            "photo": f"astronaut, centre {tile}x{2 * tile}",
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
        whole = restore(network, image, 0, None)
        for tile in tiles:
            for chosen in overlaps:
                used = overlap.default_overlap(config, tile) if chosen is None else chosen
                measured = psnr(restore(network, image, tile, used) * 255, whole * 255)
                predicted = overlap.expected_psnr(config, tile, used)
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
