"""The training loop every stage shares, in the official order of updates.

Per iteration: the stage's forward pass, then every loss term the stage declares
(`train.loss_terms`: codebook, semantic or the stage-3 feature and contrastive terms, then L1,
LPIPS and the hinge GAN term), one backward and an Adam step; then the discriminator on the real
batch and on the detached output, one Adam step. Both learning rates follow MultiStepLR. Frozen
modules keep `requires_grad=False`, are left out of the optimizer and stay in eval mode. Around
that: logs of each loss's mean over the logging window (metrics.jsonl, console, TensorBoard),
validation beside a baseline with the best checkpoint kept (`train.validation`), resumable
checkpoints, mixed precision, gradient clipping, data parallelism, and Ctrl-C that stops after
the current iteration with a checkpoint.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from rich.console import Console
from torch import nn

from adacode_cli.errors import AdaCodeError
from adacode_cli.interrupt import StopRequest
from adacode_cli.model.checkpoint import load_state_strict
from adacode_cli.model.networks import AdaCodeNet, NetworkOutput
from adacode_cli.train.config import TrainConfig
from adacode_cli.train.data import (
    StreamBatches,
    TrainingImages,
    ValidationSample,
    make_loader,
)
from adacode_cli.train.discriminator import UNetDiscriminatorSN
from adacode_cli.train.distributed import DistContext, digest
from adacode_cli.train.loss_terms import LossInputs, weighted_terms
from adacode_cli.train.losses import LPIPS, hinge_d_loss
from adacode_cli.train.progress import LossWindow, TrainingDisplay, scores_text
from adacode_cli.train.state import Checkpoint, RunFolder, read_discriminator
from adacode_cli.train.validation import Validator
from adacode_cli.train.vgg import VGGFeatures

# The stage's forward pass: (network, batch on device) -> (its output, the teacher's or None).
Batch = dict[str, torch.Tensor]
Forward = Callable[[nn.Module, Batch], tuple[NetworkOutput, NetworkOutput | None]]


@dataclass
class Recipe:
    """What one stage trains, on what, and how its own loss terms are computed."""

    title: str
    net_g: AdaCodeNet
    net_d: UNetDiscriminatorSN | None
    frozen: list[nn.Module]
    forward: Forward
    data: TrainingImages
    data_state: dict[str, Any]
    validation: list[ValidationSample] = field(default_factory=list)
    baseline_name: str = ""
    lpips: LPIPS | None = None
    lpips_for_loss: bool = False
    vgg: VGGFeatures | None = None


def freeze(modules: list[nn.Module]) -> None:
    """No gradients, no optimizer slot, eval mode."""
    for module in modules:
        module.requires_grad_(False)
        module.eval()


class Trainer:
    """Runs one recipe from its first (or resumed) iteration to `train.iters`."""

    def __init__(
        self, recipe: Recipe, config: TrainConfig, run: RunFolder, context: DistContext,
        console: Console,
    ):
        self.recipe, self.config, self.run_folder, self.context = recipe, config, run, context
        self.device = context.device
        self.g = recipe.net_g.to(self.device)
        self.d = recipe.net_d.to(self.device) if recipe.net_d is not None else None
        self.g_train, self.d_train = self.g, self.d  # DistributedDataParallel-wrapped by fit()
        if recipe.lpips is not None:
            recipe.lpips.to(self.device)
        freeze(recipe.frozen)
        self.trainable = [p for p in self.g.parameters() if p.requires_grad]
        if not self.trainable:
            raise AdaCodeError("nothing to train: every generator parameter is frozen")
        optim = config.optim
        adam = {"betas": tuple(optim.betas), "weight_decay": optim.weight_decay}
        self.opt_g = torch.optim.Adam(self.trainable, lr=optim.lr_g, **adam)
        self.sched_g = torch.optim.lr_scheduler.MultiStepLR(
            self.opt_g, optim.milestones, optim.gamma
        )
        self.opt_d = self.sched_d = None
        if self.d is not None:
            self.opt_d = torch.optim.Adam(self.d.parameters(), lr=optim.lr_d, **adam)
            self.sched_d = torch.optim.lr_scheduler.MultiStepLR(
                self.opt_d, optim.milestones, optim.gamma
            )
        self.scaler = _grad_scaler(self.device, config.train.precision == "fp16")
        self.best: float | None = None
        self.validator = Validator(recipe.validation, recipe.baseline_name, recipe.lpips,
                                   config.val, self.device)
        self.window = LossWindow()
        self.notices: list[str] = []
        self.console = console

    # --- one iteration -------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        precision = self.config.train.precision
        if precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _clip(self, optimizer: torch.optim.Optimizer, params: list[nn.Parameter]) -> None:
        if self.config.optim.grad_clip > 0:
            self.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(params, self.config.optim.grad_clip)

    def step(self, iteration: int, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One generator and one discriminator update; the loss terms, detached."""
        loss = self.config.loss
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        gt = batch["gt"]
        use_gan = self.d is not None and iteration > loss.net_d_init_iters
        if self.d is not None:
            self.d.requires_grad_(False)
        if iteration % loss.net_d_iters == 0:
            self.opt_g.zero_grad(set_to_none=True)
            with self._autocast():
                out, teacher = self.recipe.forward(self.g_train, batch)
                inputs = LossInputs(
                    out, gt, teacher, vgg=self.recipe.vgg,
                    lpips=self.recipe.lpips if self.recipe.lpips_for_loss else None,
                    discriminator=self.d if use_gan else None,
                )
                terms = weighted_terms(self.config.stage, loss, inputs)
            if not terms:
                raise AdaCodeError("every generator loss weight is 0: nothing to train")
            self.scaler.scale(sum(terms.values())).backward()
            self._clip(self.opt_g, self.trainable)
            self.scaler.step(self.opt_g)
            output = out.image
        else:
            terms = {}
            with torch.no_grad(), self._autocast():
                output = self.recipe.forward(self.g_train, batch)[0].image
        if use_gan:
            terms.update(self._discriminator_step(gt, output.detach()))
        self.scaler.update()
        return {k: v.detach() for k, v in terms.items()}

    def _discriminator_step(
        self, real: torch.Tensor, fake: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        assert self.d is not None and self.opt_d is not None
        self.d.requires_grad_(True)
        self.opt_d.zero_grad(set_to_none=True)
        with self._autocast():
            real_logits = self.d_train(real)
            l_d_real = hinge_d_loss(real_logits, True)
        self.scaler.scale(l_d_real).backward()
        with self._autocast():
            fake_logits = self.d_train(fake)
            l_d_fake = hinge_d_loss(fake_logits, False)
        self.scaler.scale(l_d_fake).backward()
        self._clip(self.opt_d, list(self.d.parameters()))
        self.scaler.step(self.opt_d)
        return {
            "l_d_real": l_d_real, "l_d_fake": l_d_fake,
            "out_d_real": real_logits.detach().float().mean(),
            "out_d_fake": fake_logits.detach().float().mean(),
        }

    def _train_mode(self) -> None:
        self.g.train()
        if self.d is not None:
            self.d.train()
        for module in self.recipe.frozen:
            module.eval()

    # --- validation ----------------------------------------------------------------------

    def _is_better(self, metrics: dict[str, float]) -> bool:
        score = metrics[self.validator.key_metric()]
        if self.validator.better(score, self.best):
            self.best = score
            return True
        return False

    # --- checkpoints ---------------------------------------------------------------------

    def _networks(self) -> tuple[Any, Any]:
        network = (self.g.config, self.g.state_dict())
        disc = None if self.d is None else (_features(self.d), self.d.state_dict())
        return network, disc

    def _training_state(self, iteration: int) -> dict[str, Any]:
        state: dict[str, Any] = {
            "iter": iteration,
            "optim_g": self.opt_g.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": {"torch": torch.get_rng_state()},
            "data": self.recipe.data_state,
            "best": self.best,
            "best_metric": self.validator.key_metric(),
            "loss_window": self.window.state_dict(),
        }
        if self.opt_d is not None and self.sched_d is not None:
            state["optim_d"] = self.opt_d.state_dict()
            state["sched_d"] = self.sched_d.state_dict()
        if self.device.type == "cuda":
            state["rng"]["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def save(self, iteration: int) -> None:
        """A resumable checkpoint; every rank reports a digest of its replica."""
        digests = self.context.gather(digest(self.g))
        if not self.context.is_main:
            return
        network, disc = self._networks()
        meta = {"world_size": self.context.world_size, "replica_digests": digests}
        self.run_folder.save_checkpoint(
            iteration, network, disc, self._training_state(iteration), meta
        )
        self.run_folder.prune(self.config.log.keep_checkpoints)

    def _save_best(self, iteration: int, metrics: dict[str, float]) -> None:
        network, disc = self._networks()
        self.run_folder.save_checkpoint(
            iteration, network, disc, None, {"metrics": metrics}, best=True
        )
        self.run_folder.prune(self.config.log.keep_checkpoints)

    def restore(self, checkpoint: Checkpoint) -> int:
        """Load networks, optimizers, schedulers, scaler and RNG of `checkpoint`."""
        _, state = RunFolder.read_network(checkpoint)
        load_state_strict(self.g, state)
        training = RunFolder.load_training_state(checkpoint)
        self.opt_g.load_state_dict(training["optim_g"])
        self.sched_g.load_state_dict(training["sched_g"])
        if self.d is not None and self.opt_d is not None and self.sched_d is not None:
            if not checkpoint.net_d.is_file() or "optim_d" not in training:
                raise AdaCodeError(f"{checkpoint.folder}: saved without a discriminator; "
                                   "resume with the GAN loss switched off (--no-gan)")
            self.d.load_state_dict(read_discriminator(checkpoint.net_d))
            self.opt_d.load_state_dict(training["optim_d"])
            self.sched_d.load_state_dict(training["sched_d"])
        if training["scaler"]:
            self.scaler.load_state_dict(training["scaler"])
        torch.set_rng_state(training["rng"]["torch"])
        if "cuda" in training["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(training["rng"]["cuda"], self.device)
        self.best = training.get("best")
        key = self.validator.key_metric()
        if self.best is not None and training.get("best_metric") != key:
            self.best = None
            self.notices.append(f"the best-checkpoint metric is now {key}, not "
                                f"{training.get('best_metric')}: the next validation sets a new "
                                "best")
        if "loss_window" in training:
            self.window.load_state_dict(training["loss_window"], self.device)
        self.notices.append(f"resumed {self.recipe.title} at iteration {checkpoint.iteration}")
        if training.get("data") != self.recipe.data_state:
            self.notices.append(
                "note: the data set, batch size or process count changed since the checkpoint; "
                "training continues, but not exactly as an uninterrupted run would"
            )
        return checkpoint.iteration

    # --- the loop ------------------------------------------------------------------------

    def fit(self, resume: Checkpoint | None = None) -> None:
        """Train to `train.iters`, logging, validating and checkpointing on the way."""
        config, context = self.config, self.context
        start = 0
        if resume is not None:
            start = self.restore(resume)
            if context.is_main:
                self.run_folder.rewind_logs(start)
        self.display = TrainingDisplay(
            self.console, self.recipe.title, start, config.train.iters, enabled=context.is_main,
            tensorboard=self.run_folder.tensorboard if config.log.tensorboard else None,
        )
        for notice in [*self.notices, self.validator.notice()]:
            self.display.message(notice)
        self.g_train = context.wrap(self.g)
        self.d_train = context.wrap(self.d) if self.d is not None else None
        self._train_mode()
        sampler = StreamBatches(start + 1, config.train.iters, config.data.batch_size,
                                context.rank, context.world_size)
        loader = make_loader(self.recipe.data, sampler, config.data.workers,
                             pin_memory=self.device.type == "cuda")
        try:
            # Ctrl-C or SIGTERM (a time limit, torchrun passing a Ctrl-C on): every rank finishes
            # the iteration, the run is saved, and it stops (exit 130, continue with --resume)
            with StopRequest(terminate=True, escalate=not context.distributed) as stop:
                self._iterate(start, iter(loader), stop)
            self.display.message(self._summary())
        finally:
            self.display.close()

    def _iterate(self, start: int, batches: Iterator[dict[str, torch.Tensor]],
                 stop: StopRequest) -> None:
        config, total = self.config, self.config.train.iters
        saved = start
        for iteration in range(start + 1, total + 1):
            terms = self.step(iteration, next(batches))
            self.window.add(terms)
            self.sched_g.step()
            if self.sched_d is not None:
                self.sched_d.step()
            self.display.advance(iteration)
            if iteration % config.log.print_every == 0 or iteration == total:
                self._log(iteration)
            last = iteration == total
            if self.recipe.validation and (iteration % config.val.every == 0 or last):
                self._validation(iteration, stop)
            if iteration % config.log.checkpoint_every == 0 or last:
                self.save(iteration)
                saved = iteration
            if self.context.anyone(stop.requested):
                if saved != iteration:
                    self.save(iteration)
                self.display.message(
                    f"stopped at iteration {iteration}; continue with --resume"
                )
                raise KeyboardInterrupt

    def _log(self, iteration: int) -> None:
        """Mean of every loss term over the window since the last log, across processes."""
        values = self.context.mean(self.window.take_means())
        for key, value in values.items():
            if not math.isfinite(value):
                raise AdaCodeError(
                    f"{key} became {value} at iteration {iteration}; lower optim.lr_g / lr_d, "
                    "use fp32 or set optim.grad_clip"
                )
        if self.context.is_main:
            row = {"iter": iteration, "lr_g": self.opt_g.param_groups[0]["lr"], **values}
            self.run_folder.append(self.run_folder.metrics, row)
            self.display.losses(iteration, values)

    def _validation(self, iteration: int, stop: StopRequest) -> None:
        if not self.context.is_main:
            return
        metrics = self._validate(stop)
        if metrics is None:
            self.display.message(f"validation at iteration {iteration} left out: stopping")
            return
        better = self._is_better(metrics)
        self.run_folder.append(self.run_folder.validation,
                               self.validator.row(iteration, metrics, better))
        if better:
            self._save_best(iteration, metrics)
        assert self.validator.baseline is not None
        self.display.validation(iteration, metrics, self.validator.baseline,
                                self.recipe.baseline_name, self.config.val.crop_border, better)

    def _validate(self, stop: StopRequest | None = None) -> dict[str, float] | None:
        self.g.eval()
        metrics = self.validator.scores(self.g, stop or (lambda: False))
        self._train_mode()
        return metrics

    def _summary(self) -> str:
        """The closing line: the best validation next to the baseline on the same images."""
        best = self.run_folder.best()
        if not self.recipe.validation or best is None or not self.context.is_main:
            return f"{self.recipe.title}: done, {self.config.train.iters} iterations"
        if self.validator.baseline is None:
            self._validate()
        assert self.validator.baseline is not None
        metrics = {k: math.inf if v is None else v for k, v in best.meta["metrics"].items()}
        text = scores_text(metrics, self.validator.baseline, self.recipe.baseline_name,
                           self.config.val.crop_border)
        return f"{self.recipe.title}: done; best at iter {best.iteration}: {text}"


def _grad_scaler(device: torch.device, enabled: bool) -> Any:
    """fp16 loss scaling (torch >= 2.3 scales on any device; older torch only on CUDA)."""
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler(device.type, enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled and device.type == "cuda")


def _features(discriminator: nn.Module) -> int:
    """The width of a U-Net discriminator, read from its first convolution."""
    return int(discriminator.conv0.weight.shape[0])  # type: ignore[union-attr]
