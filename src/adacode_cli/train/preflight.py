"""A training run's paths (and `train export`'s), checked before torch is imported: a mistake in
them is one line at once.

Folders must be folders, the run folder must not be a file, and the weights a stage starts from
must be a run folder, a weights file holding a network of the right kind (read from its header,
`weights.header`), or a registry name. What needs the images decoded or the tensors loaded (the
data check, the codebooks, a run's checkpoints) follows once torch is loaded, still before any
training step.
"""

from __future__ import annotations

from pathlib import Path

from adacode_cli.errors import AdaCodeError
from adacode_cli.images.inputs import what_is
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.train.config import ConfigError, TrainConfig
from adacode_cli.weights.header import held_config, read_header


def check_run_paths(config: TrainConfig, output: Path) -> None:
    """Every path of `config` and the run folder `output`, by kind (see the module doc)."""
    paths = config.paths
    if not paths.data:
        raise ConfigError("no training images: pass --data DIR (or set paths.data)")
    folders = {"--data": paths.data, "--val": paths.val, "--lq": paths.lq,
               "--val-lq": paths.val_lq}
    for option, value in folders.items():
        if value and not Path(value).is_dir():
            raise ConfigError(f"{option} {value}: {_not_a_folder(Path(value))}")
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output}: is {what_is(output)}, but a run is a folder")
    if config.stage == 2 and not paths.codebooks:
        raise ConfigError("stage 2 needs the stage-1 codebooks: pass --codebooks RUN (repeatable)")
    for source in paths.codebooks if config.stage == 2 else []:
        if not Path(source).is_dir():
            _weights_file("--codebooks", source)
    if config.stage == 3:
        _check_init(paths.init, paths.init_d)


def _check_init(spec: str, spec_d: str) -> None:
    """--init: a run folder, a stage-2 weights file or a registry name; --init-d: a file."""
    if not spec:
        raise ConfigError("stage 3 starts from a stage-2 network: pass --init RUN|FILE|recon")
    if Path(spec).is_file():
        refuse_unless_recon(spec, held_config(Path(spec)))
    elif not Path(spec).is_dir():
        from adacode_cli.weights.registry import load_registry

        if spec not in load_registry().entries:
            raise ConfigError(f"--init {spec}: no such run, weights file or registry name")
    if spec_d:
        _weights_file("--init-d", spec_d)


def refuse_unless_recon(spec: str, config: AdaCodeConfig | None) -> None:
    """Stage 3 starts from a stage-2 (recon) network (None: its header could not tell)."""
    if config is not None and config.stage != "recon":
        raise ConfigError(f"--init {spec} is a {config.task} network; stage 3 needs a stage-2 "
                          "(recon) network")


def _weights_file(option: str, value: str) -> None:
    """`value` must be a weights file (or, for --codebooks, a run folder: checked before)."""
    path = Path(value)
    if not path.exists():
        what = "run folder or weights file" if option == "--codebooks" else "weights file"
        raise ConfigError(f"{option} {value}: no such {what}")
    read_header(path)


def _not_a_folder(path: Path) -> str:
    kind = what_is(path)
    return "no such folder" if kind == "missing" else f"is {kind}, not a folder"


CHECKPOINT_CHOICES = ("auto", "best", "latest")


def check_export(run: Path, out: Path, which: str, official_keys: bool) -> None:
    """`train export`'s request: a run folder, an output name of the format it writes, a
    checkpoint choice we know."""
    if not run.is_dir():
        raise AdaCodeError(f"{run}: {_not_a_folder(run)} (a training run is a folder)")
    suffix = ".pth" if official_keys else ".safetensors"
    if out.suffix != suffix:
        raise AdaCodeError(f"{out}: name the output *{suffix}"
                           + (" (--official-keys writes a PyTorch pickle)" if official_keys
                              else " (or pass --official-keys for a .pth)"))
    if which not in CHECKPOINT_CHOICES:
        raise AdaCodeError(f"unknown checkpoint {which!r}: use {', '.join(CHECKPOINT_CHOICES)}")
