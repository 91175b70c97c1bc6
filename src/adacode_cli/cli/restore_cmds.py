"""`adacode sr`, `adacode inpaint` and `adacode recon`: restore files, folders or globs.

Only typer is imported here; the engine, torch and the image layer load inside each command, so
`adacode --help` and `adacode sr --help` stay instant.
"""

from __future__ import annotations

import typer

from adacode_cli.cli.options import SharedOptions, with_shared_options

INPUT_HELP = (
    "An image or video file, a folder of them (see --recursive) or a quoted glob pattern."
)


def _output_help(task: str) -> str:
    return (
        f"Output folder, created if missing (default: ./adacode-{task}/), or for one input file "
        "a file name with an image extension (a video container for a video). A trailing / "
        "always means a folder."
    )


def _validate_scale(scale: int | None) -> int | None:
    if scale is not None and scale not in (2, 4):
        raise typer.BadParameter("the network upscales x2 or x4; use --outscale for other sizes")
    return scale


@with_shared_options
def sr(
    input_spec: str = typer.Argument(..., metavar="INPUT", help=INPUT_HELP),
    output: str | None = typer.Argument(None, metavar="OUTPUT", help=_output_help("sr")),
    scale: int | None = typer.Option(
        None, "--scale", "-s", callback=_validate_scale,
        help="Network scale, 2 or 4 (default: the --weights file's, else 4).",
    ),
    outscale: float | None = typer.Option(
        None, "--outscale", min=0.01, max=16.0,
        help="Final scale: the network's result is resized with Lanczos to INPUT x this "
        "(default: --scale).",
    ),
    *,
    shared: SharedOptions,
) -> None:
    """Super-resolution: upscale images x2 or x4 (any final size with --outscale).

    Example: adacode sr photos/ upscaled/ --scale 4
    """
    from adacode_cli.cli.run import run_restoration
    from adacode_cli.cli.tasks import SuperResolution

    run_restoration(
        "sr", input_spec, output, shared, scale=scale, default_scale=4,
        make_task=lambda config: SuperResolution(config.scale, outscale or config.scale),
    )


@with_shared_options
def inpaint(
    input_spec: str = typer.Argument(..., metavar="INPUT", help=INPUT_HELP),
    output: str | None = typer.Argument(
        None, metavar="OUTPUT", help=_output_help("inpaint")
    ),
    mask: str = typer.Option(
        ..., "--mask", "-m",
        help="Mask image (white/non-zero = hole) for every input, or a folder of masks matched "
        "to inputs by file stem (for a video: numbered per-frame masks, frame_000001.png, ...).",
    ),
    dilate: int = typer.Option(0, "--dilate", min=0, help="Grow each hole by N pixels."),
    paste_back: bool = typer.Option(
        True, "--paste-back/--no-paste-back",
        help="Keep the input's pixels outside the holes bit for bit (--no-paste-back: the raw "
        "network output everywhere).",
    ),
    resize_mask: bool = typer.Option(
        False, "--resize-mask", help="Resize a mask of another size to its image (nearest)."
    ),
    *,
    shared: SharedOptions,
) -> None:
    """Inpainting: fill the masked holes of images.

    Example: adacode inpaint photo.png --mask photo-mask.png
    """
    from adacode_cli.cli.run import run_restoration
    from adacode_cli.cli.tasks import Inpainting
    from adacode_cli.images.inputs import spelled_path
    from adacode_cli.images.masks import masks_for

    mask_spec = spelled_path(mask)
    task = Inpainting(mask_spec, dilate, paste_back, resize_mask)
    run_restoration("inpaint", input_spec, output, shared, make_task=lambda config: task,
                    side_inputs=lambda inputs: masks_for(inputs, mask_spec, resize_mask))


@with_shared_options
def recon(
    input_spec: str = typer.Argument(..., metavar="INPUT", help=INPUT_HELP),
    output: str | None = typer.Argument(None, metavar="OUTPUT", help=_output_help("recon")),
    *,
    shared: SharedOptions,
) -> None:
    """Reconstruction: pass images through a stage-2 (or a trained stage-1) autoencoder and print
    each one's PSNR-Y (4 px border, as `adacode eval`).

    Example: adacode recon photos/ --weights recon
    """
    from adacode_cli.cli.run import run_restoration
    from adacode_cli.cli.tasks import Reconstruction

    task = Reconstruction()
    run_restoration("recon", input_spec, output, shared, make_task=lambda config: task)


def register(app: typer.Typer) -> None:
    """Add `sr`, `inpaint` and `recon` to the root app."""
    app.command(no_args_is_help=True)(sr)
    app.command(no_args_is_help=True)(inpaint)
    app.command(no_args_is_help=True)(recon)
