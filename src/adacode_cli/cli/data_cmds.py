"""`adacode data degrade|masks` (training data) and `adacode eval` (PSNR / SSIM / LPIPS).

Heavy modules (numpy pipelines, torch) are imported inside the commands so `--help` stays instant.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

from adacode_cli.errors import AdaCodeError, ImageError, WeightsError
from adacode_cli.images.inputs import output_suffix, resolved, spelled_path
from adacode_cli.images.outputs import PlannedImage, SideFile, check_planned

if TYPE_CHECKING:
    import numpy as np

    from adacode_cli.train.losses import LPIPS

OFFICIAL_SEED = 123  # the seed of the official generate_dataset.py / generate_inpaint_dataset.py
OFFICIAL_JPEG_QUALITY = 95  # OpenCV's imwrite default, which those scripts write with
SCALES = (2, 4)
T = TypeVar("T")
_MASK_FILE = SideFile(".png", "mask", "")  # `data masks`: OUT_DIR/masks/<relative name>.png


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    data_app = typer.Typer(
        help="Make training data: BSRGAN low-quality images and inpainting holes.",
        no_args_is_help=True,
    )
    data_app.command("degrade")(degrade)
    data_app.command("masks")(masks)
    app.add_typer(data_app, name="data")
    app.command("eval")(evaluate)


def degrade(
    hq_dir: Path = typer.Argument(..., help="Folder of high-quality images (recursive)."),
    lq_dir: Path = typer.Argument(..., help="Output folder; images keep their relative names."),
    scale: int = typer.Option(..., "--scale", "-s", help="Down-scaling factor: 2 or 4."),
    seed: int = typer.Option(OFFICIAL_SEED, "--seed", min=0, help="Same seed, same images."),
) -> None:
    """Make low-quality inputs with the BSRGAN degradation (blur, resize, noise, JPEG).

    Each output side is its input side // scale (the input's last rows or columns beyond a
    multiple of the scale are dropped; `train stage3 --lq` ignores the same pixels, so the
    folders always pair up). A file's result depends only on --seed and its relative name.
    """
    if scale not in SCALES:
        raise AdaCodeError(f"--scale must be 2 or 4, not {scale}")
    plans = _plan_outputs(hq_dir, lq_dir, with_masks=False)  # before torch: checks are instant
    paths, outputs = [plan.source for plan in plans], [plan.result for plan in plans]
    from adacode_cli.images.depth import to_float
    from adacode_cli.images.encode import write_image
    from adacode_cli.train.degradations import degrade_bsrgan
    from adacode_cli.train.image_files import read_rgb

    def degrade_one(path: Path, output: Path) -> None:
        rng = _image_rng(seed, path.relative_to(hq_dir))
        lq, _ = degrade_bsrgan(to_float(read_rgb(path)), scale, rng)
        write_image(output, lq, quality=OFFICIAL_JPEG_QUALITY)

    _for_each_image(paths, outputs, degrade_one, "degrading",
                    f"low-quality x{scale} images to {lq_dir}")


def masks(
    hq_dir: Path = typer.Argument(..., help="Folder of images (recursive)."),
    out_dir: Path = typer.Argument(..., help="Output folder; hole masks go to OUT_DIR/masks/."),
    seed: int = typer.Option(OFFICIAL_SEED, "--seed", min=0, help="Same seed, same holes."),
) -> None:
    """Cut random brush-stroke holes (pure white) into images, for inpainting.

    Holed images keep their relative names; masks (white = hole) go to OUT_DIR/masks/.
    A file's holes depend only on --seed and its relative name.
    """
    import numpy as np

    plans = _plan_outputs(hq_dir, out_dir, with_masks=True)
    paths, holed = [plan.source for plan in plans], [plan.result for plan in plans]
    mask_files = {plan.result: plan.side_file(_MASK_FILE) for plan in plans}
    from adacode_cli.images.encode import write_image
    from adacode_cli.train.image_files import read_rgb
    from adacode_cli.train.masks import HOLE_COLOUR, brush_stroke_mask, punch_holes

    def mask_one(path: Path, output: Path) -> None:
        image = read_rgb(path)
        rng = _image_rng(seed, path.relative_to(hq_dir))
        hole = brush_stroke_mask(image.shape[0], image.shape[1], rng)
        write_image(output, punch_holes(image, hole), quality=OFFICIAL_JPEG_QUALITY)
        mask = np.repeat(hole[..., None].astype(np.uint8) * HOLE_COLOUR, 3, axis=2)
        write_image(mask_files[output], mask, grayscale=True)

    _for_each_image(paths, holed, mask_one, "masking", f"masked images to {out_dir}")


def evaluate(
    restored: str = typer.Argument(..., help="Restored image, or folder of them."),
    reference: str = typer.Argument(..., help="Ground-truth image, or folder (matched by name)."),
    crop_border: int = typer.Option(4, "--crop-border", min=0, help="Pixels ignored per side."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    lpips: bool = typer.Option(False, "--lpips", help="Add LPIPS (VGG), needs its weights."),
    vgg16_weights: Path | None = typer.Option(
        None, "--vgg16-weights", help="Local torchvision VGG16 file instead of the registry's."
    ),
    lpips_weights: Path | None = typer.Option(
        None, "--lpips-weights", help="Local LPIPS v0.1 vgg.pth instead of the registry's."
    ),
) -> None:
    """PSNR and SSIM on the Y channel (basicsr's definitions), optionally LPIPS.

    The PSNR is the one `adacode recon` and training validation print: Y channel of the 8-bit
    images, --crop-border pixels ignored on each side.
    Folders are matched by relative file name without extension.
    The mean is the average of the per-image scores.
    """
    from adacode_cli.train.evaluation import match_pairs, mean_scores, score_pair

    _check_lpips_files(lpips, {"--vgg16-weights": vgg16_weights, "--lpips-weights": lpips_weights})
    pairing = match_pairs(spelled_path(restored), spelled_path(reference))
    for side, names in (("restored", pairing.restored_only), ("reference", pairing.reference_only)):
        if names:
            message = f"warning: {len(names)} {side} image(s) without a partner, e.g. {names[0]}"
            typer.echo(message, err=True)
    network = _lpips_network(vgg16_weights, lpips_weights) if lpips else None
    rows: list[tuple[str, dict[str, float]]] = []
    failed = 0
    for pair in _progress(pairing.pairs, "scoring"):
        try:
            rows.append((pair.name, score_pair(pair, crop_border, network)))
        except ImageError as error:
            failed += 1
            typer.echo(f"error: {error}", err=True)
    if rows:
        mean = mean_scores([scores for _, scores in rows])
        if as_json:
            _print_json(rows, mean, crop_border)
        else:
            _print_table(rows, mean, crop_border)
    if failed:
        raise typer.Exit(ImageError.exit_code)


def _check_distinct(source: Path, destination: Path) -> None:
    """Writing into the input folder would replace the originals with their degraded copies,
    and into a folder inside it (images are found recursively) would make the next run read
    this run's results as inputs."""
    if resolved(destination) == resolved(source):
        raise AdaCodeError("the output folder must differ from the input folder")
    if resolved(destination).is_relative_to(resolved(source)):
        raise AdaCodeError(
            f"{destination}: the output folder is inside the input folder {source}, whose images "
            "are read recursively; choose an output folder outside it"
        )


def _plan_outputs(source: Path, destination: Path, *, with_masks: bool) -> list[PlannedImage]:
    """Every image under `source` and the files made from it under `destination` (its
    relative name; with `with_masks` also `destination/masks/<relative name>.png`), checked by
    the output plan's rules before any work: no input overwritten, no two writes to one file,
    the output folder usable."""
    from adacode_cli.train.image_files import list_images

    _check_distinct(source, destination)
    plans = []
    for path in list_images(source):
        relative = path.relative_to(source)
        mask = destination / "masks" / relative.with_suffix(_MASK_FILE.tail)
        plans.append(PlannedImage(path, _writable(destination / relative),
                                  ((_MASK_FILE, mask),) if with_masks else ()))
    return check_planned(plans, folder=destination, read=[plan.source for plan in plans])


def _writable(path: Path) -> Path:
    """`path`, or the same name as .png where we cannot write its format (gif, bmp)."""
    return path.with_suffix(output_suffix(path))


def _image_rng(seed: int, relative: Path) -> np.random.Generator:
    """A generator per file from (seed, relative name): reruns and subsets give the same image."""
    import numpy as np

    return np.random.default_rng([seed, zlib.crc32(relative.as_posix().encode("utf-8"))])


def _progress(items: Iterable[T], label: str) -> Iterator[T]:
    from rich.console import Console
    from rich.progress import track

    yield from track(items, description=label, console=Console(stderr=True), transient=True)


def _for_each_image(
    paths: list[Path], outputs: list[Path], work: Callable[[Path, Path], None], label: str,
    what: str,
) -> None:
    """Run `work(path, output)` for every image with a progress bar; a file that fails is
    reported on its own line and the rest go on, and the exit code says some failed."""
    failed = 0
    for path, output in _progress(list(zip(paths, outputs, strict=True)), label):
        try:
            work(path, output)
        except ImageError as error:
            failed += 1
            typer.echo(f"error: {error}", err=True)
    typer.echo(f"wrote {len(paths) - failed} {what}" + (f" ({failed} failed)" if failed else ""))
    if failed:
        raise typer.Exit(ImageError.exit_code)


def _check_lpips_files(lpips: bool, files: dict[str, Path | None]) -> None:
    """Before torch or a download: each LPIPS weights file given must be one, and is given
    with --lpips only (never silently ignored)."""
    from adacode_cli.weights.header import read_header

    for option, path in files.items():
        if path is not None and not lpips:
            raise AdaCodeError(f"{option} is for --lpips: add --lpips, or leave it out")
        if path is not None:
            read_header(path)


def _lpips_network(vgg16_weights: Path | None, lpips_weights: Path | None) -> LPIPS | None:
    """The LPIPS network, or None with a warning when the registry cannot provide its weights."""
    from adacode_cli.train.losses import LPIPS

    try:
        vgg16 = vgg16_weights or _registry_file("vgg16")
        lin = lpips_weights or _registry_file("lpips-vgg")
    except AdaCodeError as error:
        typer.echo(f"warning: LPIPS left out: {error}", err=True)
        return None
    return LPIPS(vgg16, lin)


def _registry_file(name: str) -> Path:
    try:
        from adacode_cli.weights.api import ensure_weights
    except ImportError as error:
        raise WeightsError("the weights registry is not available in this build") from error
    return ensure_weights(name)


def _print_table(
    rows: list[tuple[str, dict[str, float]]], mean: dict[str, float], crop_border: int
) -> None:
    from rich.console import Console
    from rich.table import Table

    from adacode_cli.train.metrics import psnr_label

    headings = {"psnr": f"{psnr_label(crop_border)} dB", "ssim": "SSIM-Y", "lpips": "LPIPS"}
    metrics = list(mean)
    table = Table("image", *(headings[key] for key in metrics))
    for name, scores in rows:
        table.add_row(name, *(_format(key, scores[key]) for key in metrics))
    table.add_section()
    table.add_row(f"mean of {len(rows)}", *(_format(key, mean[key]) for key in metrics))
    Console().print(table)


def _format(key: str, value: float) -> str:
    if math.isinf(value):
        return "inf"
    return f"{value:.2f}" if key == "psnr" else f"{value:.4f}"


def _print_json(
    rows: list[tuple[str, dict[str, float]]], mean: dict[str, float], crop_border: int
) -> None:
    def finite(scores: dict[str, float]) -> dict[str, float | None]:
        return {key: None if math.isinf(value) else value for key, value in scores.items()}

    report = {
        "crop_border": crop_border,
        "count": len(rows),
        "mean": finite(mean),
        "images": [{"name": name, **finite(scores)} for name, scores in rows],
    }
    typer.echo(json.dumps(report, indent=2))
