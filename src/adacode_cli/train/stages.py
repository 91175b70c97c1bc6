"""The paper's three training stages: what each builds, loads, freezes and optimises.

1. One VQGAN per image category (HQ encoder, one codebook, decoder, semantic head), trained with
   L1 + LPIPS + hinge GAN + codebook/commitment + the semantic loss.
2. The recon network: the stage-1 codebooks are copied in and frozen; encoder, weight predictor,
   before/after-quant convs and decoder learn to reconstruct from their weighted combination.
3. The restoration network: starts from a stage-2 network (every tensor whose name and shape
   match, as the official non-strict load), freezes codebooks, decoder, after-quant convs and the
   output conv, and trains the LQ encoder and weight predictor against the frozen stage-2 network
   as a teacher (code-index supervision with the Gram term, after-quant feature loss, contrast).

Every input is checked before the process group starts, so a mistake stops all ranks at once.
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import nn

from adacode_cli.errors import AdaCodeError, CheckpointError
from adacode_cli.model.checkpoint import load_state_strict, read_checkpoint
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import AdaCodeNet, build_network, count_parameters
from adacode_cli.train import distributed
from adacode_cli.train.config import ConfigError, TrainConfig, validate
from adacode_cli.train.data import (
    SampleKind,
    SampleSpec,
    TrainingImages,
    baseline_name,
    category_folders,
    fingerprint,
    load_validation,
)
from adacode_cli.train.data_check import (
    DataCheck,
    check_training_images,
    check_validation_images,
    partners,
)
from adacode_cli.train.discriminator import UNetDiscriminatorSN
from adacode_cli.train.loop import Forward, Recipe, Trainer, freeze
from adacode_cli.train.loss_networks import (
    LossWeightFiles,
    WeightsNeed,
    fetch_needed,
    loss_needs,
    loss_weights,
)
from adacode_cli.train.loss_terms import SEMANTIC_LAYER
from adacode_cli.train.losses import LPIPS
from adacode_cli.train.preflight import check_run_paths, refuse_unless_recon
from adacode_cli.train.state import Checkpoint, RunFolder, read_discriminator, stage1_runs
from adacode_cli.train.vgg import VGGFeatures

SEMANTIC_CHANNELS = 512  # VGG19 relu4_4 width: the semantic head regresses it
STAGE3_FROZEN = ("quantize_group", "decoder_group", "after_quant_group", "out_conv")


@dataclasses.dataclass
class Job:
    """One network to train: its config, run folder and where it resumes from."""

    config: TrainConfig
    run: RunFolder
    resume: Checkpoint | None = None
    finished: bool = False


@dataclasses.dataclass
class Init:
    """Stage-3 starting point: the stage-2 network and, if known, its discriminator."""

    config: AdaCodeConfig
    state: dict[str, torch.Tensor]
    discriminator: dict[str, torch.Tensor] | None


def train(
    config: TrainConfig, output: Path, *, resume: bool, console: Console,
    offline: bool | None = None,
) -> None:
    """Check everything (weights, then every image), join the process group, then train every
    job of the stage in turn. A fresh run that fails before its first checkpoint leaves no run
    folder behind, so the corrected command runs as typed."""
    validate(config)
    check_run_paths(config, Path(output))
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    existed = Path(output).exists()
    jobs = _jobs(config, Path(output), resume)
    perceptual = config.loss.perceptual > 0
    semantic = config.stage == 1 and config.loss.semantic > 0
    weights = fetch_needed(loss_needs(perceptual, semantic) + _init_needs(config), offline)
    loss_files = loss_weights(weights, perceptual, semantic)
    check = DataCheck()
    prepared = [_prepare(job, check, weights) for job in jobs]
    check.refuse_if_any()
    context = distributed.start(config.train.device)
    try:
        if context.is_main:
            root = RunFolder(output)
            if len(jobs) > 1 or jobs[0].run.root != root.root:
                root.write_config(config)
            for job in jobs:
                job.run.write_config(job.config)
        context.barrier()
        for job, inputs in zip(jobs, prepared, strict=True):
            if job.finished:
                if context.is_main:
                    console.print(f"{job.run.root}: already trained, skipped", soft_wrap=True)
                continue
            recipe = _recipe(job.config, inputs, loss_files, context)
            trainer = Trainer(recipe, job.config, job.run, context, console)
            _describe(console, recipe, job, context)
            trainer.fit(job.resume)
    except BaseException:
        if context.is_main and not resume:
            _discard_unstarted(jobs, Path(output), keep_root=existed)
        raise
    finally:
        distributed.stop(context)


def _discard_unstarted(jobs: list[Job], output: Path, keep_root: bool) -> None:
    """Remove what a fresh run wrote when it stopped before its first checkpoint (`_jobs` made
    sure the folder was new or empty): the whole --output (emptied, if the user made it), or,
    when earlier categories did train, the category folders that never started."""
    if not output.is_dir():
        return
    if any(output.rglob("latest.json")):
        for job in jobs:
            if job.run.root != output and job.run.latest() is None:
                shutil.rmtree(job.run.root, ignore_errors=True)
        return
    if not keep_root:
        shutil.rmtree(output, ignore_errors=True)
        return
    for path in output.iterdir():
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _jobs(config: TrainConfig, output: Path, resume: bool) -> list[Job]:
    """The runs this command trains (stage 1: one per category) and their resume points."""
    data = Path(config.paths.data)
    configs = [(config, output)]
    if config.stage == 1:
        categories = category_folders(data)
        if categories is not None:
            held_out = _held_out(config)  # a --val folder inside the root is no category
            categories = [f for f in categories if f.resolve() != held_out]
            if config.task.category:
                categories = [f for f in categories if f.name == config.task.category]
                if not categories:
                    raise ConfigError(f"{data} has no category folder {config.task.category!r}")
            configs = []
            for folder in categories:
                one = copy.deepcopy(config)
                one.paths.data, one.task.category = str(folder), folder.name
                configs.append((one, output / folder.name))
        elif not config.task.category:
            config.task.category = data.name
    root = RunFolder(output)
    if not resume and root.is_run():
        raise AdaCodeError(
            f"{output} already holds a training run: pass --resume to continue it, or choose "
            "another --output"
        )
    if resume and not root.is_run():
        raise AdaCodeError(f"{output}: no training run to resume (no config.json)")
    if not resume and output.exists() and any(output.iterdir()):
        raise AdaCodeError(f"{output} exists and is not empty: choose a new --output folder")
    jobs = []
    for one, folder in configs:
        run = RunFolder(folder)
        latest = run.latest() if resume and run.is_run() else None
        finished = latest is not None and latest.iteration >= one.train.iters
        jobs.append(Job(one, run, latest, finished))
    return jobs


def _held_out(config: TrainConfig) -> Path | None:
    """The validation folder, never trained on even when it lies inside --data."""
    return Path(config.paths.val).resolve() if config.paths.val else None


@dataclasses.dataclass
class Inputs:
    """What a job reads, resolved and checked before training starts."""

    images: list[Path]
    lq: list[Path] | None
    kind: SampleKind
    scale: int
    val: list[Path] = dataclasses.field(default_factory=list)
    val_lq: list[Path] | None = None
    codebooks: list[torch.Tensor] = dataclasses.field(default_factory=list)
    init: Init | None = None


def _prepare(job: Job, check: DataCheck, weights: dict[str, Path]) -> Inputs:
    """The job's files and starting networks; image problems go to `check`, to be reported
    together with those of every other job."""
    config = job.config
    data = Path(config.paths.data)
    held_out = _held_out(config)
    found = check.images(data, "--data")
    images = [p for p in found if held_out is None or not p.resolve().is_relative_to(held_out)]
    if found and not images:
        check.report(f"{data}: no training images outside the --val folder")
    check_training_images(check, images, config.data.gt_size)
    kind: SampleKind = "hq" if config.stage < 3 else config.task.task  # type: ignore[assignment]
    scale = config.task.scale if kind == "sr" else 1
    val, val_lq = [], None
    if config.paths.val:
        val_lq_root = Path(config.paths.val_lq) if config.paths.val_lq else None
        val, val_lq = check_validation_images(check, Path(config.paths.val), scale, val_lq_root,
                                              config.val.crop_border)
    if config.stage < 3:
        codebooks = _read_codebooks(config.paths.codebooks) if config.stage == 2 else []
        return Inputs(images, None, kind, 1, val, val_lq, codebooks=codebooks)
    lq = partners(check, data, images, Path(config.paths.lq), scale, "--lq") \
        if config.paths.lq else None
    init = _read_init(config.paths.init, config.paths.init_d, weights)
    factor = init.config.latent_factor * init.config.window_size
    if config.data.gt_size % factor or config.data.gt_size % scale:
        raise ConfigError(
            f"data.gt_size {config.data.gt_size} must be a multiple of {factor} for this "
            "stage-2 network (its latent is 1/8 of the image, in whole Swin windows)"
        )
    return Inputs(images, lq, kind, scale, val, val_lq, init=init)


def _init_needs(config: TrainConfig) -> list[WeightsNeed]:
    """Stage 3 from a registry name: that model, and its discriminator for the GAN loss."""
    spec = config.paths.init
    if config.stage < 3 or not spec or Path(spec).exists():
        return []
    from adacode_cli.weights.registry import load_registry

    entry = load_registry().entries[spec]  # `check_run_paths` refused any other name
    needs = [WeightsNeed((spec,), "the stage-2 network to start from", "--init RUN|FILE")]
    if entry.discriminator and config.loss.gan > 0 and not config.paths.init_d:
        needs.append(WeightsNeed((entry.discriminator,), "its discriminator",
                                 "--init-d FILE or --no-gan"))
    return needs


def _registry_discriminator(name: str) -> str | None:
    """The registry name of the discriminator published with registry model `name`."""
    from adacode_cli.weights.registry import load_registry

    entry = load_registry().entries.get(name)
    return None if entry is None else entry.discriminator


def _read_codebooks(sources: list[str]) -> list[torch.Tensor]:
    """Codebook 0 of each stage-1 run (its best checkpoint, else its latest) or weights file."""
    files: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            files += [RunFolder(run).weights().net_g for run in stage1_runs(path)]
        else:  # `check_run_paths` made sure it is a weights file
            files.append(path)
    codebooks = []
    for file in files:
        _, state = read_checkpoint(file)
        key = "quantize_group.0.embedding.weight"
        if key not in state:
            raise CheckpointError(f"{file}: no codebook ('{key}')")
        codebooks.append(state[key].float().clone())
    return codebooks


def _read_init(spec: str, spec_d: str, weights: dict[str, Path]) -> Init:
    """The stage-2 network to start from: a run, a weights file or a registry name (whose
    files `weights` holds, fetched by the up-front check)."""
    path, d_path = Path(spec), Path(spec_d) if spec_d else None
    if path.is_dir():
        checkpoint = RunFolder(path).weights()
        path = checkpoint.net_g
        if d_path is None and checkpoint.net_d.is_file():
            d_path = checkpoint.net_d
    elif not path.is_file():
        path = weights[spec]
        if d_path is None:
            d_path = weights.get(_registry_discriminator(spec) or "")
    config, state = read_checkpoint(path)
    refuse_unless_recon(spec, config)
    return Init(config, state, read_discriminator(d_path) if d_path else None)


def _recipe(
    config: TrainConfig, inputs: Inputs, loss_files: LossWeightFiles,
    context: distributed.DistContext,
) -> Recipe:
    """Networks, frozen parts, loss terms, data and validation of one job."""
    device = context.device
    torch.manual_seed(config.train.seed)
    lpips = LPIPS(*loss_files.lpips) if loss_files.lpips else None
    vgg = None
    if config.stage == 1:
        net_g = build_network(_network_config(config, "vqgan"))
        frozen = [] if config.loss.semantic > 0 else [net_g.conv_semantic]
        if loss_files.vgg19 is not None and config.loss.semantic > 0:
            vgg = VGGFeatures("vgg19", [SEMANTIC_LAYER], loss_files.vgg19).to(device)
        forward: Forward = _autoencoder_forward
        title = f"stage 1 ({config.task.category})"
    elif config.stage == 2:
        net_g = build_network(_network_config(config, "recon", inputs.codebooks))
        with torch.no_grad():
            for quantizer, codebook in zip(net_g.quantize_group, inputs.codebooks, strict=True):
                quantizer.embedding.weight.copy_(codebook)
        frozen = [net_g.quantize_group]
        forward = _autoencoder_forward
        title = "stage 2"
    else:
        assert inputs.init is not None
        teacher = build_network(inputs.init.config)
        load_state_strict(teacher, inputs.init.state)
        freeze([teacher])
        teacher.to(device)
        net_g = build_network(
            dataclasses.replace(inputs.init.config, stage="restore", scale=inputs.scale)
        )
        copy_matching(net_g, inputs.init.state)
        frozen = [getattr(net_g, name) for name in STAGE3_FROZEN]
        forward = _stage3_forward(teacher)
        title = f"stage 3 {inputs.kind}" + (f" x{inputs.scale}" if inputs.kind == "sr" else "")
    net_d = _discriminator(config, inputs.init)
    spec = SampleSpec(inputs.kind, inputs.scale, config.data.gt_size, config.data.resize_crop,
                      config.data.flip, config.data.rotate)
    data_root = Path(config.paths.data)
    validation = []
    if config.paths.val:
        validation = load_validation(Path(config.paths.val), inputs.val, inputs.kind,
                                     inputs.scale, config.train.seed, inputs.val_lq)
    return Recipe(
        title=title, net_g=net_g, net_d=net_d, frozen=frozen, forward=forward,
        data=TrainingImages(inputs.images, spec, config.train.seed, inputs.lq),
        data_state={
            "seed": config.train.seed, "images": len(inputs.images),
            "fingerprint": fingerprint(inputs.images, data_root),
            "batch_size": config.data.batch_size,
            "world_size": context.world_size,
        },
        validation=validation, baseline_name=baseline_name(inputs.kind), lpips=lpips,
        lpips_for_loss=loss_files.lpips_for_loss, vgg=vgg,
    )


def _network_config(
    config: TrainConfig, stage: str, codebooks: list[torch.Tensor] | None = None
) -> AdaCodeConfig:
    n = config.network
    if stage == "vqgan":
        sizes, dims = (n.codebook_size,), (n.codebook_dim,)
    else:
        sizes = tuple(int(c.shape[0]) for c in codebooks or [])
        dims = tuple(int(c.shape[1]) for c in codebooks or [])
    try:
        return AdaCodeConfig(
            stage=stage,  # type: ignore[arg-type]
            scale=1, codebook_sizes=sizes, codebook_dims=dims, channels=tuple(n.channels),
            norm_groups=n.norm_groups, swin_layers=n.swin_layers, swin_depth=n.swin_depth,
            swin_heads=n.swin_heads, window_size=n.window_size, mlp_ratio=n.mlp_ratio,
            semantic_channels=SEMANTIC_CHANNELS,
        )
    except ValueError as error:
        raise ConfigError(f"invalid [network] settings: {error}") from None


def _discriminator(config: TrainConfig, init: Init | None) -> UNetDiscriminatorSN | None:
    """A fresh U-Net discriminator, or stage 2's when stage 3 knows it; None without GAN."""
    if config.loss.gan <= 0:
        return None
    state = init.discriminator if init is not None else None
    features = int(state["conv0.weight"].shape[0]) if state and "conv0.weight" in state \
        else config.network.disc_features
    net_d = UNetDiscriminatorSN(3, features)
    if state is not None:
        try:
            net_d.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise CheckpointError(f"the discriminator weights do not fit: {error}") from None
    return net_d


def copy_matching(network: nn.Module, state: dict[str, torch.Tensor]) -> int:
    """Copy every tensor whose name and shape match (the official strict=False load)."""
    own = network.state_dict()
    matching = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    network.load_state_dict(matching, strict=False)
    return len(matching)


def _autoencoder_forward(net: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[Any, None]:
    """Stages 1-2: reconstruct the clean crop."""
    return net(batch["gt"]), None


def _stage3_forward(teacher: AdaCodeNet) -> Forward:
    """Stage 3: the frozen stage-2 network sees the clean crop, the student the degraded one
    and is supervised with the teacher's code indices."""

    def forward(net: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[Any, Any]:
        with torch.no_grad():
            target = teacher(batch["gt"])
        return net(batch["lq"], target_indices=target.indices), target

    return forward


def _describe(console: Console, recipe: Recipe, job: Job, context: distributed.DistContext) -> None:
    if not context.is_main:
        return
    total = count_parameters(recipe.net_g)
    trained = sum(p.numel() for p in recipe.net_g.parameters() if p.requires_grad)
    frozen_note = f" ({_count(total - trained)} frozen)" if total != trained else ""
    disc = (f", discriminator {_count(count_parameters(recipe.net_d))}"
            if recipe.net_d is not None else ", no GAN")
    console.print(
        f"{recipe.title}: {len(recipe.data)} images, generator {_count(total)} parameters"
        f"{frozen_note}{disc}; {job.config.train.iters} iterations on {context.device} x "
        f"{context.world_size}; run folder {job.run.root}",
        highlight=False, soft_wrap=True,
    )


def _count(number: int) -> str:
    return f"{number / 1e6:.2f}M" if number >= 100_000 else f"{number / 1e3:.1f}k"
