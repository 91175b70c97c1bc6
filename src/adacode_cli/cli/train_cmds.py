"""`adacode train stage1|stage2|stage3|config|export`: the paper's training recipe.

Nothing heavy is imported at module level; each command imports the training layer when it runs.
The configuration is layered: preset, then --config FILE, then this command's flags, then
--set section.key=value overrides. Under torchrun every process runs the same command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from adacode_cli.cli.options import shared_options

if TYPE_CHECKING:
    from adacode_cli.train.config import TrainConfig

train_app = typer.Typer(
    name="train",
    help="Train AdaCode: stage 1 (one codebook per category), stage 2 (adaptive combination), "
    "stage 3 (super-resolution / inpainting).",
    no_args_is_help=True,
)

PATH_KEYS = ("data", "lq", "val", "val_lq", "init", "init_d")


@dataclass(frozen=True)
class TrainOptions:
    """The flags every stage takes."""

    output: Path
    config_file: Path | None
    preset: str | None
    iters: int | None
    batch_size: int | None
    seed: int | None
    val: Path | None
    resume: bool
    no_perceptual: bool
    no_gan: bool
    device: str | None
    precision: str | None
    workers: int | None
    offline: bool
    overrides: list[str] | None

    def flags(self) -> dict[str, Any]:
        """Config keys these flags set (None: not given)."""
        return {
            "train.iters": self.iters, "data.batch_size": self.batch_size,
            "train.seed": self.seed, "paths.val": self.val, "train.device": self.device,
            "train.precision": self.precision, "data.workers": self.workers,
        }


# One declaration per option, alike in shape by intent (as in cli/options.py).
with_train_options = shared_options(TrainOptions, {
    "output": (Path, typer.Option(
        ..., "--output", "-o", help="Run folder (created; --resume continues it).")),
    "config_file": (Path | None, typer.Option(
        None, "--config", help="TOML config (see `adacode train config STAGE`).")),
    "preset": (str | None, typer.Option(
        None, "--preset", help="official (the paper's recipe) | tiny (CPU-sized).")),
    "iters": (int | None, typer.Option(None, "--iters", help="Total iterations.")),
    "batch_size": (int | None, typer.Option(
        None, "--batch-size", help="Images per batch per process.")),
    "seed": (int | None, typer.Option(
        None, "--seed", help="Seed of initialisation, data order and degradations.")),
    "val": (Path | None, typer.Option(
        None, "--val", help="Held-out HQ images validated every val.every iterations.")),
    "resume": (bool, typer.Option(
        False, "--resume", help="Continue the run in --output from its checkpoint.")),
    "no_perceptual": (bool, typer.Option(
        False, "--no-perceptual", help="Train without the LPIPS loss.")),
    "no_gan": (bool, typer.Option(
        False, "--no-gan", help="Train without the GAN loss / discriminator.")),
    "device": (str | None, typer.Option(
        None, "--device", help="auto | cpu | cuda | cuda:N | mps.")),
    "precision": (str | None, typer.Option(
        None, "--precision", help="fp32 | bf16 | fp16 (autocast).")),
    "workers": (int | None, typer.Option(
        None, "--workers", help="DataLoader workers per process.")),
    "offline": (bool, typer.Option(
        False, "--offline", help="Never download weights (also ADACODE_OFFLINE=1).")),
    "overrides": (list[str] | None, typer.Option(
        None, "--set", help="Override any key: --set optim.lr_g=2e-4 (repeatable).")),
})


def _build_config(
    stage: int, options: TrainOptions, specific: dict[str, Any], no_semantic: bool = False
) -> TrainConfig:
    """Preset (or the resumed run's config) < --config < flags < --set."""
    from adacode_cli.train.config import (
        ConfigError,
        apply_overrides,
        config_from_file,
        preset,
        set_value,
    )

    if options.resume:
        if options.config_file is not None or options.preset is not None:
            raise ConfigError("--resume continues with the run's own config: drop --config and "
                              "--preset (flags and --set still override)")
        from adacode_cli.train.state import RunFolder  # torch: a run's config is read with it

        config = RunFolder(options.output).read_config()
        if config.stage != stage:
            raise ConfigError(f"{options.output} is a stage-{config.stage} run, not stage {stage}")
    elif options.config_file is not None:
        config = config_from_file(stage, options.config_file, options.preset)
    else:
        config = preset(stage, options.preset or "official")
    for key, value in {**options.flags(), **specific}.items():
        if value is not None and value != []:
            set_value(config, key, [str(v) for v in value] if isinstance(value, list)
                      else str(value) if isinstance(value, Path) else value)
    if options.no_perceptual:
        config.loss.perceptual = 0.0
    if no_semantic:
        config.loss.semantic = 0.0
    if options.no_gan:
        config.loss.gan = 0.0
    apply_overrides(config, list(options.overrides or []))
    _absolute_paths(config)
    return config


def _absolute_paths(config: TrainConfig) -> None:
    """Store paths absolute, so --resume works from any folder (registry names stay names)."""
    paths = config.paths
    for key in PATH_KEYS:
        value = getattr(paths, key)
        if value and (key not in ("init", "init_d") or Path(value).exists()):
            setattr(paths, key, os.path.abspath(value))
    paths.codebooks = [os.path.abspath(p) for p in paths.codebooks]


def _train(
    stage: int, options: TrainOptions, specific: dict[str, Any], no_semantic: bool = False
) -> None:
    from rich.console import Console

    from adacode_cli.train.config import validate
    from adacode_cli.train.preflight import check_run_paths

    config = _build_config(stage, options, specific, no_semantic)
    validate(config)  # before torch loads: a mistake in the config or a path is named at once
    check_run_paths(config, options.output)
    from adacode_cli.train.stages import train

    train(config, options.output, resume=options.resume, console=Console(highlight=False),
          offline=True if options.offline else None)


@train_app.command("stage1")
@with_train_options
def stage1(
    data: Path = typer.Option(None, "--data", help="HQ images of one category, or a root whose "
                              "sub-folders are categories (one run each, RUN/<category>)."),
    category: str = typer.Option(None, "--category", help="Category name (with a root: train "
                                 "only this sub-folder)."),
    no_semantic: bool = typer.Option(False, "--no-semantic",
                                     help="Train without the semantic loss."),
    *,
    shared: TrainOptions,
) -> None:
    """Stage 1: one VQGAN (one basis codebook) per image category."""
    _train(1, shared, {"paths.data": data, "task.category": category}, no_semantic)


@train_app.command("stage2")
@with_train_options
def stage2(
    data: Path = typer.Option(None, "--data", help="HQ images of all categories."),
    codebooks: list[Path] = typer.Option(None, "--codebooks", help="A stage-1 run or weights "
                                         "file per codebook, in order (repeat the flag); a "
                                         "stage-1 root gives all its categories."),
    *,
    shared: TrainOptions,
) -> None:
    """Stage 2: frozen basis codebooks, learned adaptive weights (the recon network)."""
    _train(2, shared, {"paths.data": data, "paths.codebooks": list(codebooks or [])})


@train_app.command("stage3")
@with_train_options
def stage3(
    task: str = typer.Option(None, "--task", help="sr | inpaint."),
    scale: int = typer.Option(None, "--scale", help="Super-resolution factor: 2 or 4."),
    data: Path = typer.Option(None, "--data", help="HQ training images."),
    lq: Path = typer.Option(None, "--lq", help="Paired LQ images (same names); default: "
                            "synthesised on the fly (BSRGAN / brush-stroke holes)."),
    init: str = typer.Option(None, "--init", help="Stage-2 run, weights file, or registry "
                             "name (recon)."),
    init_d: Path = typer.Option(None, "--init-d", help="Discriminator weights to start from."),
    val_lq: Path = typer.Option(None, "--val-lq", help="Paired LQ validation images."),
    *,
    shared: TrainOptions,
) -> None:
    """Stage 3: LQ encoder + weight predictor for super-resolution or inpainting."""
    specific = {"task.task": task, "task.scale": scale, "paths.data": data, "paths.lq": lq,
                "paths.init": init, "paths.init_d": init_d, "paths.val_lq": val_lq}
    _train(3, shared, specific)


@train_app.command("config")
def show_config(
    stage: str = typer.Argument(..., help="stage1 | stage2 | stage3 (or 1, 2, 3)."),
    preset: str = typer.Option("official", "--preset", help="official | tiny."),
) -> None:
    """Print a documented TOML config of STAGE (save it and pass it with --config)."""
    from adacode_cli.train.config import ConfigError, render_toml
    from adacode_cli.train.config import preset as make_preset

    number = stage.removeprefix("stage")
    if number not in ("1", "2", "3"):
        raise ConfigError(f"unknown stage {stage!r}: use stage1, stage2 or stage3")
    typer.echo(render_toml(make_preset(int(number), preset)), nl=False)


@train_app.command("export")
def export(
    run: Path = typer.Argument(..., help="A run folder (stage 1: one category's run)."),
    out_spelling: str = typer.Argument(..., metavar="OUT", help="Output file: .safetensors (or "
                                        ".pth with --official-keys)."),
    official_keys: bool = typer.Option(False, "--official-keys", help="Write a .pth "
                                       "{'params': state_dict} with the official key names."),
    checkpoint: str = typer.Option("auto", "--checkpoint", help="auto (best if validated, "
                                   "else latest) | best | latest."),
) -> None:
    """Export a run's generator for `adacode sr/inpaint/recon --weights`."""
    from adacode_cli.images.outputs import check_output_file, file_output
    from adacode_cli.train.preflight import check_export

    out = file_output(out_spelling)
    check_export(run, out, checkpoint, official_keys)  # before torch loads
    check_output_file(run, out, read=[path for path in run.rglob("*") if path.is_file()])
    from adacode_cli.train.export import export_run

    result = export_run(run, out, which=checkpoint, official_keys=official_keys)
    config = result.config
    scale = f" x{config.scale}" if config.task == "sr" else ""
    typer.echo(f"{out}: {config.task}{scale} network from iteration "
               f"{result.checkpoint.iteration} of {run}")


def register(app: typer.Typer) -> None:
    """Add the `train` command group to the root app."""
    app.add_typer(train_app, name="train")
