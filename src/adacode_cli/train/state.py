"""The run folder: resolved config, loss and validation logs, atomic resumable checkpoints.

Layout of RUN/:
    config.toml / config.json   the resolved configuration (json is what --resume reads)
    metrics.jsonl               one object per logged iteration: iter, lr, every loss term's
                                mean over the iterations since the previous row
    validation.jsonl            one object per validation: iter, psnr, ssim[, lpips], best, and
                                the baseline's name and scores (baseline_psnr, ...)
    checkpoints/iter_NNNNNNNN/  net_g.safetensors (inference format), net_d.safetensors,
                                training_state.pt (optimizers, schedulers, scaler, RNG, data
                                order), meta.json
    checkpoints/latest.json     points at the newest complete checkpoint
    checkpoints/best_iter_NNNNNNNN/ + best.json   the best validated networks
A checkpoint folder is written under a temporary name, renamed into place, and only then does the
pointer move, so an interrupted write leaves the previous checkpoint in charge.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from adacode_cli.atomic import atomic_save, atomic_write_text
from adacode_cli.errors import AdaCodeError, CheckpointError
from adacode_cli.model.checkpoint import read_checkpoint, save_safetensors
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.train.config import TrainConfig, config_from_json, render_toml

CHECKPOINTS = "checkpoints"
DISCRIMINATOR_FORMAT = "adacode-discriminator"


@dataclass(frozen=True)
class Checkpoint:
    """One saved state of a run."""

    folder: Path
    iteration: int

    # One named property per file (here and in RunFolder): callers never spell file names. The
    # duplicate scan sees these as alike in shape; that is intended.
    @property
    def net_g(self) -> Path:
        return self.folder / "net_g.safetensors"

    @property
    def net_d(self) -> Path:
        return self.folder / "net_d.safetensors"

    @property
    def training_state(self) -> Path:
        return self.folder / "training_state.pt"

    @property
    def meta(self) -> dict[str, Any]:
        path = self.folder / "meta.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def save_discriminator(path: Path, state: dict[str, torch.Tensor], num_feat: int) -> None:
    """The discriminator as safetensors with the official key names."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    metadata = {"format": DISCRIMINATOR_FORMAT, "num_feat": str(num_feat)}
    atomic_save(path, lambda temp: save_file(tensors, str(temp), metadata=metadata))


def read_discriminator(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a discriminator file: ours, a registry safetensors, or an official `.pth`."""
    from adacode_cli.train.state_files import read_state_file

    state = read_state_file(path)
    for key in ("params", "params_ema"):
        if isinstance(state.get(key), dict):
            state = state[key]
    return {k.removeprefix("module."): v for k, v in state.items()}


class RunFolder:
    """Everything a training run writes, under one folder."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.checkpoints = self.root / CHECKPOINTS

    @property
    def config_json(self) -> Path:
        return self.root / "config.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def validation(self) -> Path:
        return self.root / "validation.jsonl"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    def is_run(self) -> bool:
        return self.config_json.is_file()

    def write_config(self, config: TrainConfig) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config_json, config.to_json())
        atomic_write_text(self.root / "config.toml", render_toml(config))

    def read_config(self) -> TrainConfig:
        if not self.is_run():
            raise AdaCodeError(f"{self.root}: not a training run (no config.json)")
        return config_from_json(self.config_json.read_text(encoding="utf-8"), str(self.config_json))

    def _pointer(self, name: str) -> Checkpoint | None:
        path = self.checkpoints / name
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            checkpoint = Checkpoint(self.checkpoints / data["folder"], int(data["iter"]))
        except (ValueError, KeyError, TypeError) as error:
            raise CheckpointError(f"{path}: damaged checkpoint pointer ({error})") from None
        if not checkpoint.net_g.is_file():
            raise CheckpointError(f"{path}: points at {checkpoint.folder}, which is incomplete")
        return checkpoint

    def latest(self) -> Checkpoint | None:
        """The newest complete resumable checkpoint."""
        return self._pointer("latest.json")

    def best(self) -> Checkpoint | None:
        """The checkpoint with the best validation score, if the run validated."""
        return self._pointer("best.json")

    def weights(self) -> Checkpoint:
        """What the next stage or an export takes: the best checkpoint, else the latest."""
        checkpoint = self.best() or self.latest()
        if checkpoint is None:
            raise AdaCodeError(f"{self.root}: the run has no checkpoint yet")
        return checkpoint

    def save_checkpoint(
        self,
        iteration: int,
        network: tuple[AdaCodeConfig, dict[str, torch.Tensor]],
        discriminator: tuple[int, dict[str, torch.Tensor]] | None,
        training_state: dict[str, Any] | None,
        meta: dict[str, Any],
        *,
        best: bool = False,
    ) -> Checkpoint:
        """Write a complete checkpoint folder, then move the latest (or best) pointer to it."""
        name = f"{'best_' if best else ''}iter_{iteration:08d}"
        final = self.checkpoints / name
        partial = self.checkpoints / f".partial-{name}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        save_safetensors(partial / "net_g.safetensors", *network)
        if discriminator is not None:
            save_discriminator(partial / "net_d.safetensors", discriminator[1], discriminator[0])
        if training_state is not None:
            atomic_save(partial / "training_state.pt", lambda t: torch.save(training_state, t))
        atomic_write_text(partial / "meta.json", json.dumps({"iter": iteration, **meta}) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        pointer = {"iter": iteration, "folder": name, **({"metrics": meta["metrics"]} if best
                                                        else {})}
        atomic_write_text(self.checkpoints / ("best.json" if best else "latest.json"),
                          json.dumps(pointer) + "\n")
        return Checkpoint(final, iteration)

    def prune(self, keep: int) -> None:
        """Delete all but the newest `keep` resumable checkpoints and all stale best ones."""
        latest, best = self.latest(), self.best()
        current = {c.folder.name for c in (latest, best) if c is not None}
        resumable = sorted(p for p in self.checkpoints.glob("iter_*") if p.is_dir())
        stale = resumable[:-keep] + [p for p in self.checkpoints.glob("best_iter_*") if p.is_dir()]
        for folder in stale:
            if folder.name not in current:
                shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def load_training_state(checkpoint: Checkpoint) -> dict[str, Any]:
        """Optimizer / scheduler / RNG / data-order state; plain tensors only (weights_only)."""
        try:
            return torch.load(checkpoint.training_state, map_location="cpu", weights_only=True)
        except Exception as error:  # torch.load fails in many ways on a damaged file
            raise CheckpointError(
                f"{checkpoint.training_state}: unreadable training state ({error})"
            ) from error

    @staticmethod
    def read_network(checkpoint: Checkpoint) -> tuple[AdaCodeConfig, dict[str, torch.Tensor]]:
        return read_checkpoint(checkpoint.net_g)

    def append(self, path: Path, row: dict[str, Any]) -> None:
        """Add one JSON line to a log (metrics.jsonl or validation.jsonl)."""
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")

    def rows(self, path: Path) -> list[dict[str, Any]]:
        """The complete rows of a log; a line cut by a crash is skipped."""
        if not path.is_file():
            return []
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
        return rows

    def rewind_logs(self, iteration: int) -> None:
        """Forget what was logged after `iteration`: a resumed run logs those iterations again."""
        for path in (self.metrics, self.validation):
            if path.is_file():
                kept = [row for row in self.rows(path) if row.get("iter", 0) <= iteration]
                atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in kept))


def stage1_runs(path: Path) -> list[Path]:
    """The stage-1 runs behind `path`: the run itself, or the category runs of a root, sorted."""
    run = RunFolder(path)
    if run.latest() is not None:
        return [path]
    children = sorted(p for p in path.iterdir() if p.is_dir() and RunFolder(p).is_run())
    if not children:
        raise AdaCodeError(f"{path}: neither a finished stage-1 run nor a root of category runs")
    return children
