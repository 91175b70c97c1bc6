"""`adacode train stage1|stage2|stage3|config|export`: the paper's training recipe.

Nothing heavy is imported at module level; each command imports the training layer when it runs.
The configuration is layered: preset, then --config FILE, then this command's flags, then
--set section.key=value overrides. Under torchrun every process runs the same command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from adacode_cli.train.config import TrainConfig

train_app = typer.Typer(
    name="train",
    help="Train AdaCode: stage 1 (one codebook per category), stage 2 (adaptive combination), "
    "stage 3 (super-resolution / inpainting).",
    no_args_is_help=True,
)

PATH_KEYS = ("data", "lq", "val", "val_lq", "init", "init_d")


@dataclass
class Common:
    """The flags every stage takes."""

    output: Path
    config_file: Path | None
    preset: str | None
    resume: bool
    flags: dict[str, Any] = field(default_factory=dict)
    no_perceptual: bool = False
    no_semantic: bool = False
    no_gan: bool = False
    overrides: list[str] = field(default_factory=list)


OUTPUT = typer.Option(..., "--output", "-o", help="Run folder (created; --resume continues it).")
CONFIG = typer.Option(None, "--config", help="TOML config (see `adacode train config STAGE`).")
PRESET = typer.Option(None, "--preset", help="official (the paper's recipe) | tiny (CPU-sized).")
ITERS = typer.Option(None, "--iters", help="Total iterations.")
BATCH = typer.Option(None, "--batch-size", help="Images per batch per process.")
SEED = typer.Option(None, "--seed", help="Seed of initialisation, data order and degradations.")
VAL = typer.Option(None, "--val", help="Held-out HQ images validated every val.every iterations.")
RESUME = typer.Option(False, "--resume", help="Continue the run in --output from its checkpoint.")
NO_PERCEPTUAL = typer.Option(False, "--no-perceptual", help="Train without the LPIPS loss.")
NO_SEMANTIC = typer.Option(False, "--no-semantic", help="Train without the semantic loss.")
NO_GAN = typer.Option(False, "--no-gan", help="Train without the GAN loss / discriminator.")
DEVICE = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N | mps.")
PRECISION = typer.Option(None, "--precision", help="fp32 | bf16 | fp16 (autocast).")
WORKERS = typer.Option(None, "--workers", help="DataLoader workers per process.")
SET = typer.Option(None, "--set", help="Override any key: --set optim.lr_g=2e-4 (repeatable).")


def _common(
    output: Path, config_file: Path | None, preset: str | None, iters: int | None,
    batch_size: int | None, seed: int | None, val: Path | None, resume: bool,
    no_perceptual: bool, no_semantic: bool, no_gan: bool, device: str | None,
    precision: str | None, workers: int | None, overrides: list[str] | None,
) -> Common:
    flags = {
        "train.iters": iters, "data.batch_size": batch_size, "train.seed": seed,
        "paths.val": val, "train.device": device, "train.precision": precision,
        "data.workers": workers,
    }
    return Common(output, config_file, preset, resume, flags, no_perceptual, no_semantic,
                  no_gan, list(overrides or []))


def _build_config(stage: int, common: Common, specific: dict[str, Any]) -> TrainConfig:
    """Preset (or the resumed run's config) < --config < flags < --set."""
    from adacode_cli.train.config import (
        ConfigError,
        apply_overrides,
        config_from_file,
        preset,
        set_value,
    )
    from adacode_cli.train.state import RunFolder

    if common.resume:
        if common.config_file is not None or common.preset is not None:
            raise ConfigError("--resume continues with the run's own config: drop --config and "
                              "--preset (flags and --set still override)")
        config = RunFolder(common.output).read_config()
        if config.stage != stage:
            raise ConfigError(f"{common.output} is a stage-{config.stage} run, not stage {stage}")
    elif common.config_file is not None:
        config = config_from_file(stage, common.config_file, common.preset)
    else:
        config = preset(stage, common.preset or "official")
    for key, value in {**common.flags, **specific}.items():
        if value is not None and value != []:
            set_value(config, key, [str(v) for v in value] if isinstance(value, list)
                      else str(value) if isinstance(value, Path) else value)
    if common.no_perceptual:
        config.loss.perceptual = 0.0
    if common.no_semantic and stage == 1:
        config.loss.semantic = 0.0
    if common.no_gan:
        config.loss.gan = 0.0
    apply_overrides(config, common.overrides)
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


def _train(stage: int, common: Common, specific: dict[str, Any]) -> None:
    from rich.console import Console

    from adacode_cli.train.stages import train

    config = _build_config(stage, common, specific)
    train(config, common.output, resume=common.resume, console=Console(highlight=False))


@train_app.command("stage1")
def stage1(
    data: Path = typer.Option(None, "--data", help="HQ images of one category, or a root whose "
                              "sub-folders are categories (one run each, RUN/<category>)."),
    category: str = typer.Option(None, "--category", help="Category name (with a root: train "
                                 "only this sub-folder)."),
    output: Path = OUTPUT, config_file: Path = CONFIG, preset: str = PRESET,
    iters: int = ITERS, batch_size: int = BATCH, seed: int = SEED, val: Path = VAL,
    resume: bool = RESUME, no_perceptual: bool = NO_PERCEPTUAL, no_semantic: bool = NO_SEMANTIC,
    no_gan: bool = NO_GAN, device: str = DEVICE, precision: str = PRECISION,
    workers: int = WORKERS, overrides: list[str] = SET,
) -> None:
    """Stage 1: one VQGAN (one basis codebook) per image category."""
    common = _common(output, config_file, preset, iters, batch_size, seed, val, resume,
                     no_perceptual, no_semantic, no_gan, device, precision, workers, overrides)
    _train(1, common, {"paths.data": data, "task.category": category})


@train_app.command("stage2")
def stage2(
    data: Path = typer.Option(None, "--data", help="HQ images of all categories."),
    codebooks: list[Path] = typer.Option(None, "--codebooks", help="A stage-1 run or weights "
                                         "file per codebook, in order (repeat the flag); a "
                                         "stage-1 root gives all its categories."),
    output: Path = OUTPUT, config_file: Path = CONFIG, preset: str = PRESET,
    iters: int = ITERS, batch_size: int = BATCH, seed: int = SEED, val: Path = VAL,
    resume: bool = RESUME, no_perceptual: bool = NO_PERCEPTUAL, no_semantic: bool = NO_SEMANTIC,
    no_gan: bool = NO_GAN, device: str = DEVICE, precision: str = PRECISION,
    workers: int = WORKERS, overrides: list[str] = SET,
) -> None:
    """Stage 2: frozen basis codebooks, learned adaptive weights (the recon network)."""
    common = _common(output, config_file, preset, iters, batch_size, seed, val, resume,
                     no_perceptual, no_semantic, no_gan, device, precision, workers, overrides)
    _train(2, common, {"paths.data": data, "paths.codebooks": list(codebooks or [])})


@train_app.command("stage3")
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
    output: Path = OUTPUT, config_file: Path = CONFIG, preset: str = PRESET,
    iters: int = ITERS, batch_size: int = BATCH, seed: int = SEED, val: Path = VAL,
    resume: bool = RESUME, no_perceptual: bool = NO_PERCEPTUAL, no_semantic: bool = NO_SEMANTIC,
    no_gan: bool = NO_GAN, device: str = DEVICE, precision: str = PRECISION,
    workers: int = WORKERS, overrides: list[str] = SET,
) -> None:
    """Stage 3: LQ encoder + weight predictor for super-resolution or inpainting."""
    common = _common(output, config_file, preset, iters, batch_size, seed, val, resume,
                     no_perceptual, no_semantic, no_gan, device, precision, workers, overrides)
    specific = {"task.task": task, "task.scale": scale, "paths.data": data, "paths.lq": lq,
                "paths.init": init, "paths.init_d": init_d, "paths.val_lq": val_lq}
    _train(3, common, specific)


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
    out: Path = typer.Argument(..., help="Output file: .safetensors (or .pth with "
                               "--official-keys)."),
    official_keys: bool = typer.Option(False, "--official-keys", help="Write a .pth "
                                       "{'params': state_dict} with the official key names."),
    checkpoint: str = typer.Option("auto", "--checkpoint", help="auto (best if validated, "
                                   "else latest) | best | latest."),
) -> None:
    """Export a run's generator for `adacode sr/inpaint/recon --weights`."""
    from adacode_cli.train.export import export_run

    result = export_run(run, out, which=checkpoint, official_keys=official_keys)
    config = result.config
    scale = f" x{config.scale}" if config.task == "sr" else ""
    typer.echo(f"{out}: {config.task}{scale} network from iteration "
               f"{result.checkpoint.iteration} of {run}")


def register(app: typer.Typer) -> None:
    """Add the `train` command group to the root app."""
    app.add_typer(train_app, name="train")
