"""`adacode train export`: a run's generator as an inference file.

The default output is our safetensors format (config in the metadata), which every restoration
command takes with `--weights`. `--official-keys` writes what the official code saves instead: a
`.pth` pickle of `{'params': state_dict}` with the official key names, including the buffers the
official modules keep in their state dict (Swin relative-position indices, shifted-window masks
at the official 32x32 latent size, the contrastive loss's constants), so the official networks
load it even with `strict=True`. The official stage-1 files also embed the VGG19 of the semantic
loss; that copy is not written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from adacode_cli.atomic import atomic_save
from adacode_cli.errors import AdaCodeError
from adacode_cli.model.checkpoint import load_state_strict, read_checkpoint, save_safetensors
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import build_network
from adacode_cli.model.swin import SwinBlock, shift_mask
from adacode_cli.train.preflight import check_export
from adacode_cli.train.state import Checkpoint, RunFolder

OFFICIAL_LATENT = 32  # the official SwinLayers' input_resolution, where its masks are computed
CONTRAST_TEMPERATURE = 0.5


@dataclass
class Exported:
    config: AdaCodeConfig
    checkpoint: Checkpoint
    path: Path


def pick_checkpoint(run: RunFolder, which: str) -> Checkpoint:
    """`best`, `latest`, or `auto` (best when the run validated, else latest)."""
    if not run.is_run():
        raise AdaCodeError(f"{run.root}: not a training run (no config.json)")
    if run.latest() is None:
        categories = sorted(p.name for p in run.root.iterdir() if RunFolder(p).is_run())
        if categories:
            raise AdaCodeError(
                f"{run.root} holds category runs ({', '.join(categories)}): export one of them, "
                f"e.g. {run.root / categories[0]}"
            )
        raise AdaCodeError(f"{run.root}: the run has no checkpoint yet")
    chosen = {"auto": run.best() or run.latest(), "best": run.best(), "latest": run.latest()}
    if chosen[which] is None:  # `check_export` refused any other `which`
        raise AdaCodeError(f"{run.root}: no best checkpoint (the run never validated: --val)")
    return chosen[which]  # type: ignore[return-value]


def export_run(
    run_path: Path, out: Path, *, which: str = "auto", official_keys: bool = False
) -> Exported:
    """Write the run's generator to `out` (.safetensors, or .pth with `official_keys`)."""
    check_export(Path(run_path), Path(out), which, official_keys)
    run = RunFolder(run_path)
    checkpoint = pick_checkpoint(run, which)
    config, state = read_checkpoint(checkpoint.net_g)
    network = build_network(config)
    load_state_strict(network, state)
    if official_keys:
        batch = int(run.read_config().data.batch_size)
        full = official_state(network, state, batch)
        atomic_save(out, lambda temp: torch.save({"params": full}, temp))
    else:
        save_safetensors(out, config, state)
    return Exported(config, checkpoint, out)


def official_state(
    network: torch.nn.Module, state: dict[str, torch.Tensor], batch_size: int
) -> dict[str, torch.Tensor]:
    """Our tensors plus the derived buffers the official modules register."""
    full = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    for name, module in network.named_modules():
        if not isinstance(module, SwinBlock):
            continue
        window = module.window
        full[f"{name}.attn.relative_position_index"] = (
            module.attn.relative_position_index.detach().cpu().clone()
        )
        if module.shift and window < OFFICIAL_LATENT:
            full[f"{name}.attn_mask"] = shift_mask(
                OFFICIAL_LATENT, OFFICIAL_LATENT, window, module.shift, torch.device("cpu")
            ).clone()
    config: AdaCodeConfig = network.config  # type: ignore[assignment]
    if config.stage != "vqgan":
        full["contrast_cri.temperature"] = torch.tensor(CONTRAST_TEMPERATURE)
        full["contrast_cri.negatives_mask"] = (~torch.eye(2 * batch_size, dtype=torch.bool)).float()
    return full
