"""`adacode convert` and `adacode info`: work with weights files directly."""

from __future__ import annotations

import typer


def convert(
    src_spelling: str = typer.Argument(..., metavar="SRC",
                                       help="Official AdaCode .pth (or one of our .safetensors)."),
    dst_spelling: str = typer.Argument(..., metavar="DST", help="Output .safetensors file."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Print nothing on success."),
) -> None:
    """Convert an official checkpoint to adacode's self-describing safetensors format."""
    from adacode_cli.errors import AdaCodeError
    from adacode_cli.images.inputs import spelled_path
    from adacode_cli.images.outputs import check_output_file, file_output
    from adacode_cli.weights.header import held_config

    src, dst = spelled_path(src_spelling), file_output(dst_spelling)
    if dst.suffix != ".safetensors":
        raise AdaCodeError(f"{dst}: the output must end in .safetensors")
    check_output_file(src, dst)  # before torch loads: a mistake is reported at once
    held_config(src)
    from adacode_cli.model.checkpoint import convert_checkpoint

    config = convert_checkpoint(src, dst)
    if not quiet:
        typer.echo(f"{dst}: {config.task} x{config.scale} ({config.stage}) written")


def info(
    spelling: str = typer.Argument(..., metavar="FILE",
                                   help="A .safetensors or official .pth weights file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show the detected network kind, task, scale, configuration and parameter count."""
    import json

    from adacode_cli.images.inputs import spelled_path
    from adacode_cli.weights.header import held_config

    file = spelled_path(spelling)
    held_config(file)  # before torch loads: a file that is no AdaCode network is named at once
    from adacode_cli.model.checkpoint import check_layout, read_checkpoint

    config, state = read_checkpoint(file)
    check_layout(config, state, source=file)  # a file that would not load is not described
    parameters = sum(t.numel() for t in state.values())
    summary = {
        "file": str(file),
        "stage": config.stage,
        "task": config.task,
        "scale": config.scale,
        "parameters": parameters,
        "config": config.to_dict(),
    }
    if as_json:
        typer.echo(json.dumps(summary))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None)
    table.add_row("file", str(file))
    table.add_row("kind", f"stage {['vqgan', 'recon', 'restore'].index(config.stage) + 1} "
                  f"({config.stage})")
    table.add_row("task", config.task)
    table.add_row("scale", f"x{config.scale}")
    table.add_row("parameters", f"{parameters:,} ({parameters / 1e6:.1f} M)")
    table.add_row("codebooks", " ".join(f"{n}x{d}" for n, d in
                                         zip(config.codebook_sizes, config.codebook_dims,
                                             strict=True)))
    for key, value in config.to_dict().items():
        if key not in ("stage", "task", "scale", "extra", "codebook_sizes", "codebook_dims"):
            table.add_row(key, str(value))
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add `convert` and `info` to the root app."""
    app.command()(convert)
    app.command()(info)
