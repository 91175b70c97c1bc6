"""Which files a command restores, and where each result goes."""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

from adacode_cli.atomic import TEMP_PREFIX
from adacode_cli.errors import AdaCodeError
from adacode_cli.images.formats import READABLE_EXTENSIONS, WRITABLE_FORMATS, is_image_path
from adacode_cli.video.codecs import CONTAINERS, DEFAULT_CONTAINER, VIDEO_EXTENSIONS

_GLOB_CHARACTERS = frozenset("*?[")
EXT_CHOICES = ("auto", "png", "jpg", "webp", "tif", "mp4", "mkv", "mov", "webm")


def collect_inputs(spec: str, recursive: bool) -> list[Path]:
    """The image files `spec` names: a file, a folder of images, or a glob pattern; sorted.

    Folders and patterns yield only files with an image extension, skipping hidden files and
    folders (our own temporary files among them); `recursive` descends into sub-folders (and
    lets `**` in a pattern match any depth). Finding nothing is a usage error.
    """
    path = Path(spec)
    if path.is_file():
        return [path]
    if path.is_dir():
        found = images_in(path, recursive=recursive, videos=True)
        if not found:
            hint = "" if recursive else " (use --recursive to search sub-folders)"
            raise AdaCodeError(f"{spec}: no images ({_extension_list()}) in this folder{hint}")
        return found
    if _GLOB_CHARACTERS & set(spec):
        found = _images((Path(p) for p in glob.glob(spec, recursive=recursive)), None, True)
        if not found:
            raise AdaCodeError(f"{spec}: the pattern matches no images ({_extension_list()})")
        return found
    raise AdaCodeError(f"{spec}: no such file or folder")


def images_in(folder: Path, *, recursive: bool, videos: bool = False) -> list[Path]:
    """The image files (and video files when `videos`) in `folder` (and its sub-folders when
    `recursive`), sorted; hidden files and folders are skipped, our temporary files among them.
    Empty when there are none."""
    return _images(folder.rglob("*") if recursive else folder.iterdir(), folder, videos)


def input_root(spec: str) -> Path:
    """The folder that outputs mirror for `spec`: the folder itself, a file's folder, or the
    part of a glob pattern before its first wildcard."""
    path = Path(spec)
    if path.is_dir():
        return path
    if path.is_file():
        return path.parent
    fixed = _leading_literal_parts(path)
    return Path(*fixed) if fixed else Path()


def plan_output(
    input_path: Path,
    *,
    input_root: Path | None,
    output: Path | None,
    task: str,
    ext: str = "auto",
    suffix: str = "",
) -> Path:
    """Where the result for `input_path` goes.

    `output` is a folder (default `./adacode-<task>/`) or, for a single input, a file path with
    an image extension. In a folder the result keeps the input's stem plus `suffix` and its
    sub-folder below `input_root`; its format is the input's unless `ext` names one, and inputs
    in formats we cannot write (gif, bmp) become png. Writing over the input is refused.
    """
    if ext not in EXT_CHOICES:
        raise AdaCodeError(f"unknown output format '{ext}' (choose from {', '.join(EXT_CHOICES)})")
    if output is not None and is_file_output(output):
        if ext != "auto" and _canonical(output.suffix) != _canonical("." + ext):
            raise AdaCodeError(f"{output}: the file name's extension disagrees with --ext {ext}")
        destination = output
    else:
        folder = output if output is not None else Path(f"adacode-{task}")
        destination = (
            folder
            / _relative_folder(input_path, input_root)
            / (input_path.stem + suffix + output_suffix(input_path, ext))
        )
    if _same_file(destination, input_path):
        raise AdaCodeError(
            f"{destination}: would overwrite the input; choose another output, --suffix or --ext"
        )
    return destination


def plan_outputs(
    inputs: list[Path],
    *,
    input_root: Path | None,
    output: Path | None,
    task: str,
    ext: str = "auto",
    suffix: str = "",
) -> list[Path]:
    """`plan_output` for a whole batch, refusing plans that would lose or overwrite files:
    a file output for several inputs, two inputs sharing an output, an output that is an input."""
    if output is not None and is_file_output(output) and len(inputs) > 1:
        raise AdaCodeError(f"{output}: {len(inputs)} inputs need an output folder, not a file")
    plans = [
        plan_output(path, input_root=input_root, output=output, task=task, ext=ext, suffix=suffix)
        for path in inputs
    ]
    sources = {path.resolve(): path for path in inputs}
    for destination in plans:
        if destination.resolve() in sources:
            raise AdaCodeError(
                f"{destination}: would overwrite the input {sources[destination.resolve()]}; "
                "choose another output, --suffix or --ext"
            )
    refuse_shared_outputs(inputs, plans, hint="use --ext or --suffix, or separate folders")
    return plans


def refuse_shared_outputs(inputs: list[Path], outputs: list[Path], *, hint: str = "") -> None:
    """Refuse, before anything is written, two inputs that would be written to one file: the
    second would silently replace the first."""
    claimed: dict[Path, Path] = {}
    for path, destination in zip(inputs, outputs, strict=True):
        key = destination.resolve()
        if key in claimed:
            raise AdaCodeError(
                f"{destination}: both {claimed[key]} and {path} would be written there"
                + (f"; {hint}" if hint else "")
            )
        claimed[key] = path


def is_file_output(output: Path) -> bool:
    """True when `output` names a result file rather than a folder: an image extension or video
    container we write, and not an existing folder."""
    suffix = output.suffix.lower()
    return (suffix in WRITABLE_FORMATS or suffix in CONTAINERS) and not output.is_dir()


def _images(candidates: Iterable[Path], root: Path | None, videos: bool = False) -> list[Path]:
    accept = is_media_path if videos else is_image_path
    found = {
        path
        for path in candidates
        if accept(path) and not _hidden(path, root) and path.is_file()
    }
    return sorted(found)


def _hidden(path: Path, root: Path | None) -> bool:
    """A dot-file, or a file in a dot-folder below `root`; our temp files start with a dot too."""
    parts = path.relative_to(root).parts if root is not None else path.parts[-1:]
    return any(part.startswith(".") for part in parts) or path.name.startswith(TEMP_PREFIX)


def is_media_path(path: Path) -> bool:
    """An image or a video extension (animated GIF/WebP are images until asked otherwise)."""
    return is_image_path(path) or path.suffix.lower() in VIDEO_EXTENSIONS


def output_suffix(input_path: Path, ext: str = "auto") -> str:
    """The extension of `input_path`'s result: `ext`'s where it is of the input's kind (image
    format or video container), else the input's own where we can write that format, else
    .png for images (gif, bmp) and .mp4 for videos."""
    if input_path.suffix.lower() in VIDEO_EXTENSIONS:
        return "." + ext if "." + ext in CONTAINERS else DEFAULT_CONTAINER
    if ext != "auto" and "." + ext in WRITABLE_FORMATS:
        return "." + ext
    if input_path.suffix.lower() in WRITABLE_FORMATS:
        return input_path.suffix
    return ".png"


def _relative_folder(input_path: Path, root: Path | None) -> Path:
    if root is None:
        return Path()
    try:
        return input_path.parent.resolve().relative_to(root.resolve())
    except ValueError:
        return Path()


def _same_file(first: Path, second: Path) -> bool:
    return first.resolve() == second.resolve()


def _canonical(suffix: str) -> str:
    return WRITABLE_FORMATS.get(suffix.lower(), suffix.lower())


def _leading_literal_parts(pattern: Path) -> list[str]:
    literal = []
    for part in pattern.parts[:-1]:
        if _GLOB_CHARACTERS & set(part):
            break
        literal.append(part)
    return literal


def _extension_list() -> str:
    return ", ".join(ext.lstrip(".") for ext in sorted(READABLE_EXTENSIONS | VIDEO_EXTENSIONS))
