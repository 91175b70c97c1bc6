"""Options several commands share, declared once and collected into one object.

`shared_options(OptionsClass, declarations)` makes a decorator that appends the declared options
to a command's own parameters (so `--help` lists them) and hands the command one `OptionsClass`
instead of a keyword argument per option. `with_shared_options` is the one `sr`, `inpaint` and
`recon` use, grouped in panels; `adacode train` builds its own. Only typer and the standard
library are imported here: `--help` must not pay for torch.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import Enum
from pathlib import Path
from typing import Any

import typer

#: Field name -> (annotation, typer.Option(...)): the parameters `shared_options` adds.
Declarations = dict[str, tuple[Any, Any]]

MODEL_PANEL = "Model and device"
OUTPUT_PANEL = "Output files"
DISPLAY_PANEL = "Display"
VIDEO_PANEL = "Video (needs the video extra)"


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    tf32 = "tf32"
    bf16 = "bf16"
    fp16 = "fp16"


class CompileMode(str, Enum):
    auto = "auto"
    on = "on"
    off = "off"


class StatisticsMode(str, Enum):
    auto = "auto"
    exact = "exact"
    estimate = "estimate"
    tile = "tile"


class OutputExt(str, Enum):
    auto = "auto"
    png = "png"
    jpg = "jpg"
    webp = "webp"
    tif = "tif"
    mp4 = "mp4"
    mkv = "mkv"
    mov = "mov"
    webm = "webm"


class VideoCodecChoice(str, Enum):
    auto = "auto"
    h264 = "h264"
    h265 = "h265"
    vp9 = "vp9"
    av1 = "av1"
    ffv1 = "ffv1"


@dataclass(frozen=True)
class SharedOptions:
    """Everything a restoration command needs besides its task-specific options."""

    weights: str | None
    device: str
    precision: Precision
    tile: int | None
    tile_overlap: int | None
    batch_size: int | None
    compile: CompileMode
    statistics: StatisticsMode
    cache_dir: Path | None
    offline: bool
    ext: OutputExt
    quality: int
    suffix: str
    overwrite: bool
    recursive: bool
    save_weight_map: bool
    shard: str | None
    json_lines: bool
    quiet: bool
    verbose: bool
    video_codec: VideoCodecChoice
    crf: int
    resume: bool
    animated: bool


DEFAULT_QUALITY = 95
DEFAULT_CRF = 18

#: The largest --tile / --tile-overlap accepted: far beyond any image side worth tiling (--tile 0
#: runs the whole image), and an absurd value is refused at once instead of exhausting memory.
MAX_TILE_OPTION = 1_000_000


def _option(default: Any, *names: str, panel: str, **settings: Any) -> Any:
    return typer.Option(default, *names, rich_help_panel=panel, **settings)


def _check_device(value: str) -> str:
    """The form of `--device`, checked before torch loads (whether it exists is checked then)."""
    from adacode_cli.engine.device_names import DEVICE_CHOICES, is_device_name  # not for --help

    if not is_device_name(value):
        raise typer.BadParameter(f"choose {DEVICE_CHOICES}")
    return value


_DECLARATIONS: Declarations = {
    "weights": (str | None, _option(
        None, "--weights", "-w", metavar="NAME|PATH", panel=MODEL_PANEL,
        help="Registry name (see `adacode weights list`) or a .safetensors/.pth file "
        "(default: the task's registry model, downloaded once)."),
    ),
    "device": (str, _option(
        "auto", "--device", panel=MODEL_PANEL, callback=_check_device,
        help="auto, cpu, cuda, cuda:N or mps.")),
    "precision": (Precision, _option(
        Precision.auto, "--precision", panel=MODEL_PANEL,
        help="Arithmetic precision; auto = fp16 on CUDA, fp32 elsewhere. fp32 is exact "
        "(TF32 off); tf32 trades that for speed on CUDA.")),
    "tile": (int | None, _option(
        None, "--tile", min=0, max=MAX_TILE_OPTION, panel=MODEL_PANEL,
        help="Input pixels each tile owns, as the official tile_size (ceil(side / N) tiles "
        "per axis, each extended by the overlap); 0 = whole image at once (default: auto, "
        "from memory).")),
    "tile_overlap": (int | None, _option(
        None, "--tile-overlap", min=0, max=MAX_TILE_OPTION, panel=MODEL_PANEL,
        help="Input pixels neighbouring tiles share (default: the least that keeps seams "
        "above 40 dB on this image, from the model's seam profile).")),
    "batch_size": (int | None, _option(
        None, "--batch-size", min=1, panel=MODEL_PANEL,
        help="Tiles, or whole video frames, per network call (default: auto; never more "
        "than fit in memory).")),
    "compile": (CompileMode, _option(
        CompileMode.auto, "--compile", panel=MODEL_PANEL,
        help="torch.compile the whole-image path (compiled once, cached); auto = only where "
        "it measured faster.")),
    "statistics": (StatisticsMode, _option(
        StatisticsMode.auto, "--statistics", panel=MODEL_PANEL,
        help="Tile normalisation: auto/exact = image-wide statistics, spilled to disk when "
        "memory is short; estimate = from a downscaled copy where memory is short (faster, "
        "seams may show); tile = per tile, as the official code (seams show).")),
    "cache_dir": (Path | None, _option(
        None, "--cache-dir", file_okay=False, panel=MODEL_PANEL,
        help="Weights cache folder (default: ADACODE_HOME, else the user cache folder).")),
    "offline": (bool, _option(
        False, "--offline", panel=MODEL_PANEL,
        help="Never download weights (also ADACODE_OFFLINE=1).")),
    "ext": (OutputExt, _option(
        OutputExt.auto, "--ext", panel=OUTPUT_PANEL,
        help="Output format; auto keeps the input's (gif/bmp become png, videos mp4). "
        "An image format applies to images, a video container (mp4, mkv, mov, webm) to "
        "videos.")),
    "quality": (int, _option(
        DEFAULT_QUALITY, "--quality", min=1, max=100, panel=OUTPUT_PANEL,
        help="JPEG/WebP quality.")),
    "suffix": (str, _option(
        "", "--suffix", panel=OUTPUT_PANEL,
        help="Added to each output's stem, e.g. _x4.")),
    "overwrite": (bool, _option(
        False, "--overwrite", panel=OUTPUT_PANEL,
        help="Replace existing outputs (inputs are never overwritten).")),
    "recursive": (bool, _option(
        False, "--recursive", "-r", panel=OUTPUT_PANEL,
        help="Descend into sub-folders of an input folder (mirrored in the output).")),
    "save_weight_map": (bool, _option(
        False, "--save-weight-map", panel=OUTPUT_PANEL,
        help="Also write each output's codebook weight map, colour-coded, as "
        "<stem>-weights.png.")),
    "shard": (str | None, _option(
        None, "--shard", metavar="K/N", panel=OUTPUT_PANEL,
        help="Restore only share K of N (1 <= K <= N), balanced by pixel count: one task of a "
        "job array. Under torchrun each rank already takes its share.")),
    "json_lines": (bool, _option(
        False, "--json", panel=DISPLAY_PANEL,
        help="One JSON object per image on stdout (input, output, status, seconds, error); "
        "nothing else goes to stdout.")),
    "quiet": (bool, _option(
        False, "-q", "--quiet", panel=DISPLAY_PANEL,
        help="No progress, per-image lines or summary; failures are still reported.")),
    "verbose": (bool, _option(
        False, "-v", "--verbose", panel=DISPLAY_PANEL,
        help="Model details, and a traceback with each failure.")),
    "video_codec": (VideoCodecChoice, _option(
        VideoCodecChoice.auto, "--video-codec", panel=VIDEO_PANEL,
        help="Video encoder; auto = h264 (vp9 in .webm). ffv1 is lossless (.mkv).")),
    "crf": (int, _option(
        DEFAULT_CRF, "--crf", min=0, max=63, panel=VIDEO_PANEL,
        help="Video quality, lower is better (h264/h265 0-51, vp9/av1 0-63).")),
    "resume": (bool, _option(
        True, "--resume/--no-resume", panel=VIDEO_PANEL,
        help="Continue an interrupted video from its last complete segment (--no-resume: "
        "start it over).")),
    "animated": (bool, _option(
        False, "--animated", panel=VIDEO_PANEL,
        help="Treat animated GIF/WebP inputs as videos (every frame; written as .mp4).")),
}

def shared_options(
    options_type: type, declarations: Declarations
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A decorator giving `command(..., shared: options_type)` the declared options as Typer
    parameters, after the command's own; `options_type` is a dataclass with one field each."""
    names = [field.name for field in fields(options_type)]
    if set(names) != set(declarations):
        raise TypeError(f"{options_type.__name__}: every field needs one declaration")
    parameters = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option,
                          annotation=annotation)
        for name, (annotation, option) in declarations.items()
    ]

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = [
            parameter
            for parameter in inspect.signature(command, eval_str=True).parameters.values()
            if parameter.name != "shared"
        ]

        @functools.wraps(command)
        def wrapper(**arguments: Any) -> None:
            shared = options_type(**{name: arguments.pop(name) for name in names})
            command(**arguments, shared=shared)

        wrapper.__signature__ = inspect.Signature([*own, *parameters])  # type: ignore[attr-defined]
        return wrapper

    return decorate


#: Gives `command(..., shared: SharedOptions)` the restoration commands' shared options.
with_shared_options = shared_options(SharedOptions, _DECLARATIONS)
