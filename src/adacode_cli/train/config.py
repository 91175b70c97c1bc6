"""Training configuration: one dataclass per section, the `official` and `tiny` presets, overrides.

A run's configuration is built in layers: the preset, then a `--config FILE` (TOML), then the
command's own flags, then `--set section.key=value` overrides. Every key carries its documentation
and the stages it applies to, so `adacode train config STAGE` prints a commented file and a key
that means nothing for a stage is refused instead of silently ignored. The official values come
from the option files of the AdaCode repository (options/stage{1,2,3}/*.yml).
"""

from __future__ import annotations

import dataclasses
import json
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adacode_cli.engine.device_names import DEVICE_CHOICES, is_device_name
from adacode_cli.errors import AdaCodeError

STAGES = (1, 2, 3)
PRESETS = ("official", "tiny")
PRECISIONS = ("fp32", "bf16", "fp16")
TASKS = ("sr", "inpaint")
KEY_METRICS = ("lpips", "psnr", "ssim")
ALL = (1, 2, 3)


class ConfigError(AdaCodeError):
    """A configuration value, file or override the user can fix."""


def _doc(doc: str, stages: tuple[int, ...] = ALL) -> dict[str, Any]:
    """Field metadata: the key's documentation and the stages where it means something."""
    return {"doc": doc, "stages": stages}


def _key(default: Any, doc: str, stages: tuple[int, ...] = ALL) -> Any:
    """A scalar config field (lists use `field(default_factory=..., metadata=_doc(...))`)."""
    return field(default=default, metadata=_doc(doc, stages))


@dataclass
class TrainSection:
    iters: int = _key(73500, "Total training iterations.")
    seed: int = _key(0, "Seed of network initialisation, data order, crops and degradations.")
    device: str = _key("auto", "auto | cpu | cuda | cuda:N (under torchrun: the local GPU).")
    precision: str = _key("fp32", "fp32 | bf16 | fp16 autocast (fp16 adds a gradient scaler).")
    threads: int = _key(0, "CPU threads per process; 0: PyTorch's default (torchrun sets 1).")


@dataclass
class TaskSection:
    category: str = _key("", "Name of the image category (default: the --data folder name).", (1,))
    task: str = _key("sr", "sr (super-resolution) | inpaint.", (3,))
    scale: int = _key(2, "Super-resolution factor, 2 or 4 (inpainting is always 1).", (3,))


@dataclass
class PathsSection:
    data: str = _key("", "Folder of high-quality training images (stage 1: also a root whose "
                     "sub-folders are categories, trained one after another).")
    lq: str = _key("", "Paired low-quality images (same relative names as --data); empty: "
                   "synthesised on the fly (BSRGAN degradation or brush-stroke holes).", (3,))
    val: str = _key("", "Held-out high-quality images for validation; empty: no validation.")
    val_lq: str = _key("", "Paired low-quality validation images; empty: synthesised once, "
                       "seeded.", (3,))
    codebooks: list[str] = field(default_factory=list, metadata=_doc(
        "Stage-1 runs or weights files, one per basis codebook, in order.", (2,)))
    init: str = _key("", "Stage-2 run, weights file, or registry name (recon) to start from.",
                     (3,))
    init_d: str = _key("", "Discriminator weights; empty: the --init run's, recon-d for the "
                       "registry, else a fresh one.", (3,))


@dataclass
class DataSection:
    gt_size: int = _key(256, "Side of the high-quality training crop.")
    resize_crop: bool = _key(True, "Randomly shrink each image (to a side in [gt_size, side]) "
                             "before cropping.")
    flip: bool = _key(True, "Random horizontal flips.")
    rotate: bool = _key(True, "Random vertical flips and transposes (90-degree rotations).")
    batch_size: int = _key(8, "Images per batch per process (per GPU).")
    workers: int = _key(8, "DataLoader worker processes per process (0: load in the main one).")


@dataclass
class NetworkSection:
    codebook_size: int = _key(512, "Entries in the stage-1 codebook (official: 512 or 256).", (1,))
    codebook_dim: int = _key(256, "Channels of each codebook entry.", (1,))
    channels: list[int] = field(default_factory=lambda: [256, 256, 128, 64], metadata=_doc(
        "Feature widths at 1x, 2x, 4x, 8x the latent resolution (the image is 8x the latent).",
        (1, 2)))
    norm_groups: int = _key(32, "GroupNorm groups.", (1, 2))
    swin_layers: int = _key(4, "Swin RSTB layers of the weight predictor / LQ encoder.", (1, 2))
    swin_depth: int = _key(6, "Swin blocks per RSTB layer.", (1, 2))
    swin_heads: int = _key(8, "Attention heads.", (1, 2))
    window_size: int = _key(8, "Swin window side in latent pixels.", (1, 2))
    mlp_ratio: float = _key(4.0, "Swin MLP hidden width / latent width.", (1, 2))
    disc_features: int = _key(64, "Width of the U-Net discriminator (a fresh one in stage 3).")


@dataclass
class OptimSection:
    lr_g: float = _key(1e-4, "Adam learning rate of the generator.")
    lr_d: float = _key(4e-4, "Adam learning rate of the discriminator.")
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99],
                               metadata=_doc("Adam betas of both optimizers."))
    weight_decay: float = _key(0.0, "Adam weight decay of both optimizers.")
    milestones: list[int] = field(
        default_factory=lambda: [1800 * i for i in range(1, 8)],
        metadata=_doc("MultiStepLR milestones (iterations)."))
    gamma: float = _key(1.0, "MultiStepLR factor at each milestone (official: 1, a constant rate).")
    grad_clip: float = _key(0.0, "Clip gradient norms to this value; 0: no clipping.")


def _loss_section() -> type:
    """[loss]: one weight per declared loss term (`train.loss_terms`), then the GAN schedule."""
    from adacode_cli.train.loss_terms import LOSS_TERMS

    weights = [(term.key, "float", _key(term.weight, term.doc, term.stages))
               for term in LOSS_TERMS.values()]
    schedule = [
        ("net_d_iters", "int", _key(1, "Update the generator every N iterations (the "
                                    "discriminator every one).")),
        ("net_d_init_iters", "int", _key(0, "Iterations before the GAN terms start.")),
    ]
    return dataclasses.make_dataclass("LossSection", weights + schedule)


LossSection = _loss_section()


@dataclass
class ValSection:
    every: int = _key(300, "Validate every N iterations (needs --val).")
    crop_border: int = _key(4, "Pixels cropped from each side before PSNR / SSIM.")
    key_metric: str = _key("lpips", "Metric that picks the best checkpoint: lpips (lower is "
                           "better; psnr when LPIPS weights are missing) | psnr | ssim.")


@dataclass
class LogSection:
    print_every: int = _key(100, "Log losses (metrics.jsonl, console, TensorBoard) every N "
                            "iterations.")
    checkpoint_every: int = _key(1000, "Write a resumable checkpoint every N iterations (and at "
                                 "the end).")
    keep_checkpoints: int = _key(2, "Resumable checkpoints kept (the best one is kept apart).")
    tensorboard: bool = _key(True, "Log to RUN/tensorboard when the tensorboard package is "
                             "installed.")


SECTIONS: dict[str, type] = {
    "train": TrainSection,
    "task": TaskSection,
    "paths": PathsSection,
    "data": DataSection,
    "network": NetworkSection,
    "optim": OptimSection,
    "loss": LossSection,
    "val": ValSection,
    "log": LogSection,
}


@dataclass
class TrainConfig:
    """Everything one training stage needs, apart from the run folder."""

    stage: int
    preset: str = "official"
    train: TrainSection = field(default_factory=TrainSection)
    task: TaskSection = field(default_factory=TaskSection)
    paths: PathsSection = field(default_factory=PathsSection)
    data: DataSection = field(default_factory=DataSection)
    network: NetworkSection = field(default_factory=NetworkSection)
    optim: OptimSection = field(default_factory=OptimSection)
    loss: Any = field(default_factory=LossSection)
    val: ValSection = field(default_factory=ValSection)
    log: LogSection = field(default_factory=LogSection)

    def to_dict(self) -> dict[str, Any]:
        """Nested plain data of the keys that apply to this stage."""
        out: dict[str, Any] = {"stage": self.stage, "preset": self.preset}
        for name in SECTIONS:
            section = getattr(self, name)
            values = {
                f.name: _copy(getattr(section, f.name))
                for f in dataclasses.fields(section)
                if self.stage in f.metadata["stages"]
            }
            if values:
                out[name] = values
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def preset(stage: int, name: str = "official") -> TrainConfig:
    """The `official` recipe of `stage`, or the `tiny` one for laptops and tests."""
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage}: use 1, 2 or 3")
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: use {' or '.join(PRESETS)}")
    config = TrainConfig(stage=stage, preset=name)
    if stage > 1:  # options/stage2 and stage3: ten times longer, slower logging
        config.train.iters = 730000
        config.optim.milestones = [18000 * i for i in range(1, 8)]
        config.val.every = 3000
        config.log.checkpoint_every = 3000
    if name == "tiny":
        _make_tiny(config)
    return config


def _make_tiny(config: TrainConfig) -> None:
    """Small widths and crops, a higher learning rate: checks the pipeline on a CPU (about
    0.3 CPU-seconds per iteration without the VGG-based losses, measured with
    benchmarks/train_tiny.py: minutes per stage); its models are not for use."""
    config.train.iters = 200
    config.train.threads = 1  # tiny convolutions gain nothing from more; a worker loads data
    config.data.gt_size = 64
    config.data.batch_size = 4
    config.data.workers = 1
    config.network.codebook_size = 32
    config.network.codebook_dim = 16
    config.network.channels = [32, 32, 32, 32]
    config.network.swin_layers = 1
    config.network.swin_depth = 2
    config.network.swin_heads = 2
    config.network.mlp_ratio = 2.0
    config.network.disc_features = 16
    config.optim.lr_g = 1e-3
    config.optim.lr_d = 1e-3
    config.optim.milestones = []
    config.val.every = 100
    config.log.print_every = 10
    config.log.checkpoint_every = 100


def field_of(config: TrainConfig, dotted: str) -> tuple[Any, dataclasses.Field[Any]]:
    """The section object and field behind `section.key`, refusing keys foreign to the stage."""
    section_name, _, key = dotted.partition(".")
    if section_name not in SECTIONS or not key:
        raise ConfigError(
            f"unknown config key {dotted!r}: use section.key with a section among "
            f"{', '.join(SECTIONS)}"
        )
    section = getattr(config, section_name)
    fields = {f.name: f for f in dataclasses.fields(section)}
    if key not in fields or config.stage not in fields[key].metadata["stages"]:
        valid = [
            f"{section_name}.{n}" for n, f in fields.items() if config.stage in f.metadata["stages"]
        ]
        raise ConfigError(
            f"{dotted!r} is not a stage-{config.stage} setting; valid keys of [{section_name}]: "
            f"{', '.join(valid) or 'none'}"
        )
    return section, fields[key]


def set_value(config: TrainConfig, dotted: str, value: Any) -> None:
    """Set `section.key` to `value` (a string from the command line or a TOML value), typed."""
    section, spec = field_of(config, dotted)
    setattr(section, spec.name, coerce(dotted, str(spec.type), value))


def apply_overrides(config: TrainConfig, assignments: list[str]) -> None:
    """Apply `--set section.key=value` items in order."""
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        set_value(config, key.strip(), value.strip())


def apply_mapping(config: TrainConfig, data: dict[str, Any], origin: str) -> None:
    """Apply a parsed TOML/JSON document (sections of keys) on top of `config`."""
    for name, values in data.items():
        if name in ("stage", "preset"):
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{origin}: {name!r} must be a [section] of keys")
        for key, value in values.items():
            try:
                set_value(config, f"{name}.{key}", value)
            except ConfigError as error:
                raise ConfigError(f"{origin}: {error}") from None


def coerce(dotted: str, type_name: str, value: Any) -> Any:
    """Turn a TOML value or command-line text into the field's type, or say what is wrong."""
    try:
        if type_name.startswith("list["):
            item_type = type_name[5:-1]
            items = value if isinstance(value, list) else _split_list(str(value))
            return [_scalar(item_type, item) for item in items]
        return _scalar(type_name, value)
    except (TypeError, ValueError):
        raise ConfigError(f"{dotted}: {value!r} is not a valid {type_name}") from None


def _split_list(text: str) -> list[str]:
    """`[1, 2]`, `1,2` or an empty string; items may be quoted."""
    text = text.strip().removeprefix("[").removesuffix("]").strip()
    return [item.strip().strip("\"'") for item in text.split(",")] if text else []


def _scalar(type_name: str, value: Any) -> Any:
    if type_name == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ValueError(value)
    if isinstance(value, bool):
        raise TypeError(value)
    if type_name == "int":
        number = float(value) if isinstance(value, str) else value
        if isinstance(number, float) and not number.is_integer():
            raise ValueError(value)
        return int(number)
    if type_name == "float":
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(value)
        return number
    if type_name == "str":
        if not isinstance(value, str):
            raise TypeError(value)
        text = value.strip()
        quoted = len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'"
        return text[1:-1] if quoted else text
    raise TypeError(type_name)


def validate(config: TrainConfig) -> None:
    """Refuse values that cannot train, with the key to change."""
    t, d, n, o, lo = config.train, config.data, config.network, config.optim, config.loss
    checks = [
        (t.iters > 0, "train.iters must be positive"),
        (t.threads >= 0, "train.threads must be 0 (default) or more"),
        (t.precision in PRECISIONS, f"train.precision must be one of {', '.join(PRECISIONS)}"),
        (is_device_name(t.device), f"train.device must be {DEVICE_CHOICES}, not {t.device!r}"),
        (config.task.task in TASKS, f"task.task must be one of {', '.join(TASKS)}"),
        (config.task.task == "inpaint" or config.task.scale in (2, 4), "task.scale must be 2 or 4"),
        (d.batch_size > 0, "data.batch_size must be positive"),
        (d.workers >= 0, "data.workers must be 0 or more"),
        (len(n.channels) == 4, "network.channels needs 4 widths (latent x1, x2, x4, x8)"),
        (len(o.betas) == 2, "optim.betas needs two values"),
        (lo.net_d_iters >= 1, "loss.net_d_iters must be 1 or more"),
        (o.lr_g > 0 and o.lr_d > 0, "learning rates must be positive"),
        (o.grad_clip >= 0, "optim.grad_clip must be 0 (off) or positive"),
        (config.val.every > 0 and config.log.print_every > 0 and config.log.checkpoint_every > 0,
         "val.every, log.print_every and log.checkpoint_every must be positive"),
        (config.log.keep_checkpoints >= 1, "log.keep_checkpoints must be 1 or more"),
        (config.paths.val or not config.paths.val_lq,
         "--val-lq (paths.val_lq) needs --val, the references of its images"),
        (config.val.key_metric in KEY_METRICS,
         f"val.key_metric must be one of {', '.join(KEY_METRICS)}"),
        (all(w > 0 for w in (n.codebook_size, n.codebook_dim, n.disc_features)),
         "network sizes must be positive"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    for name in loss_keys():
        if getattr(lo, name) < 0:
            raise ConfigError(f"loss.{name} must be 0 or positive")
    multiple = 8 * n.window_size  # the image is 8x the latent, a whole number of windows
    if config.stage < 3 and d.gt_size % multiple:
        raise ConfigError(
            f"data.gt_size {d.gt_size} must be a multiple of {multiple} (8x the Swin window)"
        )


def loss_keys() -> list[str]:
    """The [loss] weight keys, one per declared loss term."""
    from adacode_cli.train.loss_terms import LOSS_TERMS

    return list(LOSS_TERMS)


def render_toml(config: TrainConfig) -> str:
    """A commented TOML document of every key that applies to `config.stage`."""
    lines = [
        f"# adacode train stage{config.stage}: preset {config.preset!r}.",
        "# Use it with --config FILE; override single keys with --set section.key=value.",
        f"stage = {config.stage}",
        f"preset = {_toml_value(config.preset)}",
    ]
    for name in SECTIONS:
        section = getattr(config, name)
        fields = [f for f in dataclasses.fields(section) if config.stage in f.metadata["stages"]]
        if not fields:
            continue
        lines += ["", f"[{name}]"]
        for spec in fields:
            lines += [f"# {line}" for line in textwrap.wrap(spec.metadata["doc"], 96)]
            lines.append(f"{spec.name} = {_toml_value(getattr(section, spec.name))}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(str(value))


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML config file (Python 3.11's tomllib, or the tomli package on 3.10)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise ConfigError(
                "reading --config files needs Python 3.11+ or the tomli package "
                "(pip install tomli); --set overrides work without it"
            ) from None
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror or error})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML ({error})") from None


def config_from_file(stage: int, path: Path, preset_name: str | None = None) -> TrainConfig:
    """A stage config: the file's (or the given) preset with the file's values on top."""
    data = read_toml(path)
    if "stage" in data and data["stage"] != stage:
        raise ConfigError(f"{path} is a stage-{data['stage']} config, not stage {stage}")
    base = preset_name or str(data.get("preset", "official"))
    config = preset(stage, base)
    apply_mapping(config, data, str(path))
    return config


def config_from_json(text: str, origin: str) -> TrainConfig:
    """The resolved config a run folder stores (config.json), for --resume."""
    try:
        data = json.loads(text)
        config = preset(int(data["stage"]), str(data["preset"]))
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"{origin}: not a training config ({error})") from None
    apply_mapping(config, data, origin)
    return config
