"""The output plan: every file a restoration run will write, decided and checked before any work.

Results and their side files (such as `--save-weight-map`'s maps) go through the same rules, so a
later side file cannot escape them: no write may replace an input (an image, a mask, a weights
file), no two writes may share a path, nothing may land outside the output folder, and files that
exist are skipped unless `overwrite`. The output location itself is checked too (a file where a
folder is needed, a folder without write permission), all without importing torch. Videos are
planned here too: the result (a video container) and the work folder that holds its segments
while it is made (`video.segments.work_folder`) follow the same rules.

OUTPUT names a result file only for a single input and only with an image extension or video
container we write, and never when written with a trailing path separator (`out.png/` is a
folder, as `cp` reads it); anything else is a folder (created when missing). A single input with
an OUTPUT that has another extension and is not an existing folder is refused rather than turned
into a folder `out.txt/`, unless that trailing separator says a folder is meant.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from adacode_cli.errors import AdaCodeError
from adacode_cli.images.formats import WRITABLE_FORMATS
from adacode_cli.images.inputs import (
    find_shared_write,
    names_folder,
    output_suffix,
    resolved,
    spelled_path,
    what_is,
)
from adacode_cli.video.codecs import CONTAINERS, is_video_input
from adacode_cli.video.segments import work_folder

_DEFAULT_NAME_MAX = 255  # where the file system does not say (os.pathconf)
EXT_CHOICES = ("auto", "png", "jpg", "webp", "tif", "mp4", "mkv", "mov", "webm")


@dataclass(frozen=True)
class SideFile:
    """A file written beside each result: `<result stem><tail>`, asked for by `option`."""

    tail: str
    label: str
    option: str

    def path(self, result: Path) -> Path:
        return result.with_name(result.stem + self.tail)


WEIGHT_MAP = SideFile("-weights.png", "weight map", "--save-weight-map")


@dataclass(frozen=True)
class OutputRequest:
    """What the user asked for: OUTPUT (None: `./adacode-<task>/`) and the naming options."""

    output: Path | None
    task: str
    ext: str = "auto"
    suffix: str = ""
    side_files: tuple[SideFile, ...] = ()
    animated: bool = False  # animated GIF/WebP inputs are videos
    as_folder: bool = False  # OUTPUT was written with a trailing separator: a folder

    @classmethod
    def spelled(cls, output: str | None, task: str, *, ext: str = "auto", suffix: str = "",
                side_files: tuple[SideFile, ...] = (), animated: bool = False) -> OutputRequest:
        """The request for OUTPUT as the user wrote it (a trailing separator kept in mind)."""
        path = None if output is None else spelled_path(output)
        return cls(path, task, ext, suffix, side_files, animated,
                   as_folder=output is not None and names_folder(output))

    @property
    def folder(self) -> Path:
        """The output folder (meaningful when OUTPUT is not a file)."""
        return self.output if self.output is not None else Path(f"adacode-{self.task}")

    @property
    def names_one_file(self) -> bool:
        """OUTPUT names the one result file rather than a folder."""
        return (self.output is not None and not self.as_folder
                and is_file_output(self.output))


@dataclass(frozen=True)
class PlannedImage:
    """One input and every file its restoration writes; `existing` lists those already there
    (the image is skipped unless the run overwrites). A video has a `work_folder` for its
    segments (kept between runs to resume, so never counted as existing)."""

    source: Path
    result: Path
    side_files: tuple[tuple[SideFile, Path], ...] = ()
    existing: tuple[Path, ...] = ()
    work_folder: Path | None = None

    @property
    def is_video(self) -> bool:
        return self.work_folder is not None

    @property
    def writes(self) -> tuple[Path, ...]:
        return (self.result, *(path for _, path in self.side_files))

    def side_file(self, kind: SideFile) -> Path | None:
        return next((path for side, path in self.side_files if side == kind), None)


def is_file_output(output: Path) -> bool:
    """True when `output` names a result file rather than a folder: an image extension or a
    video container we write, and not an existing folder."""
    suffix = output.suffix.lower()
    return (suffix in WRITABLE_FORMATS or suffix in CONTAINERS) and not output.is_dir()


def plan_output(
    input_path: Path,
    *,
    input_root: Path | None,
    output: Path | None,
    task: str,
    ext: str = "auto",
    suffix: str = "",
    video: bool = False,
    as_folder: bool = False,
) -> Path:
    """Where the result for `input_path` goes (no safety checks: see `plan_run`).

    In a folder the result keeps the input's stem plus `suffix` and its sub-folder below
    `input_root`; its format is the input's unless `ext` names one, and inputs in formats we
    cannot write (gif, bmp) become png. A `video` becomes .mp4 unless `ext` names a container.
    `as_folder`: OUTPUT was written with a trailing separator, so it is a folder whatever its
    name.
    """
    if ext not in EXT_CHOICES:
        raise AdaCodeError(f"unknown output format '{ext}' (choose from {', '.join(EXT_CHOICES)})")
    if output is not None and not as_folder and is_file_output(output):
        _check_file_kind(input_path, output, video)
        same_kind = ext != "auto" and _is_video_ext("." + ext) == video
        if same_kind and _canonical(output.suffix) != _canonical("." + ext):
            raise AdaCodeError(f"{output}: the file name's extension disagrees with --ext {ext}")
        return output
    folder = output if output is not None else Path(f"adacode-{task}")
    name = input_path.stem + suffix + output_suffix(input_path, ext, video=video)
    return folder / _relative_folder(input_path, input_root) / name


def plan_run(
    inputs: list[Path],
    *,
    input_root: Path | None,
    request: OutputRequest,
    protected: Iterable[Path] = (),
) -> list[PlannedImage]:
    """Every file the run writes, for each input; a usage error for any unsafe plan.

    `protected` are further files the run reads (masks, the weights file): never written.
    """
    check_suffix(request.suffix)
    writes_a_file = request.names_one_file
    if writes_a_file and len(inputs) > 1:
        raise AdaCodeError(
            f"{request.output}: {len(inputs)} inputs need an output folder, not a file"
        )
    if writes_a_file and request.suffix:
        raise AdaCodeError(f"--suffix {request.suffix!r} is added to names made in an output "
                           f"folder, but {request.output} names the result itself; leave it out")
    if not writes_a_file:
        _check_folder_name(request, inputs)
    plans = [_planned(source, input_root, request) for source in inputs]
    return check_planned(plans, folder=None if writes_a_file else request.folder,
                         read=[*inputs, *protected], request=request)


def check_planned(
    plans: list[PlannedImage],
    *,
    folder: Path | None,
    read: Iterable[Path],
    request: OutputRequest | None = None,
) -> list[PlannedImage]:
    """The rules every planned write obeys, whoever made the plan (the restoration commands,
    `adacode data`): nothing outside the output `folder` (None: OUTPUT names the one result
    file), no file that is `read` overwritten, no two writes to one path, no name longer than
    the file system holds, and folders that can be written; a usage error otherwise. Returns
    the plans with the files that already exist."""
    if folder is not None:
        _refuse_outside(plans, folder)
    hint = "choose another output" + ("" if request is None else " or --suffix")
    _refuse_overwriting_inputs(plans, list(read), hint)
    _refuse_shared_writes(plans, request)
    _refuse_long_names(plans)
    _check_writable({path.parent for plan in plans for _, path in _roles(plan)})
    return [_with_existing(plan) for plan in plans]


def file_output(spelling: str) -> Path:
    """The one output file of a command such as `convert` or `train export`, as the user wrote
    it: with a trailing separator it names a folder, which such a command cannot write."""
    if names_folder(spelling):
        raise AdaCodeError(f"{spelling}: the output is one file, but the trailing "
                           f"'{spelling[-1]}' names a folder; write the file's name")
    return Path(spelling)


def check_output_file(source: Path, output: Path, *, read: Iterable[Path] = ()) -> None:
    """The one file a command such as `convert` or `train export` makes from `source`, checked
    by the same rules before any work: not `source` or another file it reads (links and other
    spellings included), not a folder, in a folder that can be written, a name that fits."""
    check_planned([PlannedImage(source, output)], folder=None, read=[source, *read])


def earlier_results(inputs: list[Path], *, input_root: Path | None,
                    request: OutputRequest) -> set[Path]:
    """Inputs that this run would itself write (results of an earlier run into the same folder,
    e.g. `a_r.png` beside `a.png` with `--suffix _r`): they are not restored again."""
    if request.names_one_file:
        return set()
    written: dict[Path, Path] = {}
    for source in inputs:
        for _, path in _roles(_planned(source, input_root, request)):
            written[resolved(path)] = source
    return {path for path in inputs if written.get(resolved(path), path) != path}


def _planned(source: Path, input_root: Path | None, request: OutputRequest) -> PlannedImage:
    """Every path `source`'s restoration writes, unchecked: the result and its side files, or
    for a video the result and its work folder. Side files are made for images only: asked
    for a video, one is refused rather than silently left out."""
    video = is_video_input(source, request.animated)
    result = plan_output(source, input_root=input_root, output=request.output,
                         task=request.task, ext=request.ext, suffix=request.suffix, video=video,
                         as_folder=request.as_folder)
    if video:
        for side in request.side_files:
            raise AdaCodeError(
                f"{source}: a video gets no {side.label} ({side.option} writes one per image); "
                f"leave out {side.option}, or restore the videos separately"
            )
        return PlannedImage(source, result, work_folder=work_folder(result))
    return PlannedImage(source, result, tuple((side, side.path(result))
                                              for side in request.side_files))


def _check_file_kind(source: Path, output: Path, video: bool) -> None:
    """An image's result file needs an image extension, a video's a video container."""
    if _is_video_ext(output.suffix) == video:
        return
    if video:
        choices = ", ".join(sorted(CONTAINERS))
        raise AdaCodeError(f"{output}: {source} is a video; name a video file ({choices})")
    choices = ", ".join(sorted(WRITABLE_FORMATS))
    raise AdaCodeError(f"{output}: {source} is an image; name an image file ({choices})")


def _is_video_ext(suffix: str) -> bool:
    return suffix.lower() in CONTAINERS


def check_suffix(suffix: str) -> None:
    """`--suffix` is part of a file name: no folder separators, no `..`, no NUL."""
    separators = {"/", "\\", os.sep, os.altsep or "/"}
    if any(mark in suffix for mark in separators) or ".." in suffix or "\0" in suffix:
        raise AdaCodeError(
            f"--suffix {suffix!r}: a suffix is added to file names and may not contain path "
            "separators or '..'"
        )


def _check_folder_name(request: OutputRequest, inputs: list[Path]) -> None:
    """OUTPUT must be usable as a folder: not an existing file, and for a single input not a
    name with a non-image extension (that user most likely meant a file)."""
    folder = request.folder
    if folder.exists() and not folder.is_dir():
        raise AdaCodeError(f"{folder}: is a file, but the output must be a folder here")
    if (request.output is not None and len(inputs) == 1 and not folder.exists()
            and request.output.suffix and not request.as_folder):
        choices = ", ".join(sorted(WRITABLE_FORMATS))
        raise AdaCodeError(
            f"{folder}: not an image file name adacode writes ({choices}) nor an existing "
            "folder; name an image file, or create the folder first to write into it"
        )


def _refuse_outside(plans: list[PlannedImage], folder: Path) -> None:
    """No computed path may resolve outside the output folder (links included)."""
    root = resolved(folder)
    for plan in plans:
        for _, path in _roles(plan):
            if not resolved(path).is_relative_to(root):
                raise AdaCodeError(f"{path}: resolves outside the output folder {folder}; refused")


def _refuse_overwriting_inputs(plans: list[PlannedImage], read: list[Path],
                               hint: str) -> None:
    sources = {resolved(path): path for path in read}
    for plan in plans:
        for role, path in _roles(plan):
            victim = sources.get(resolved(path))
            if victim is not None:
                what = "the input itself" if victim == plan.source else f"the input {victim}"
                raise AdaCodeError(f"{path}: {role} would overwrite {what}; {hint}")


def _refuse_shared_writes(plans: list[PlannedImage], request: OutputRequest | None) -> None:
    named = [(role, path) for plan in plans for role, path in _roles(plan)]
    clash = find_shared_write([path for _, path in named])
    if clash is None:
        return
    (first, path), (second, _) = named[clash[0]], named[clash[1]]
    sides = request.side_files if request is not None else ()
    options = [side.option for side in sides if side.label in first + second]
    if options:
        hint = f"rename one of the inputs, or leave out {options[0]}"
    elif request is None:
        hint = "rename or move one of the inputs"
    elif request.ext != "auto":
        hint = f"--ext {request.ext} gives them one name: use --ext auto or separate folders"
    else:
        hint = "they differ only in their extension: rename one, or restore them separately"
    raise AdaCodeError(f"{path}: both {first} and {second} would be written there; {hint}")


def _refuse_long_names(plans: list[PlannedImage]) -> None:
    """Every name written (a result, a side file, a video's work folder, named after its
    result) must fit the file system's limit on one name; a long `--suffix` would otherwise
    fail each image after the model has run. (Temporary names are short: `atomic_path`.)"""
    limits: dict[Path, int] = {}  # one question to the file system per folder
    for plan in plans:
        for role, path in _roles(plan):
            if path.parent not in limits:
                limits[path.parent] = _name_limit(path.parent)
            length, limit = len(os.fsencode(path.name)), limits[path.parent]
            if length > limit:
                raise AdaCodeError(
                    f"{path}: the name of {role} is {length} bytes long, more than the {limit} "
                    "this file system allows; use a shorter --suffix or output name"
                )


def _name_limit(folder: Path) -> int:
    """The longest file name (in bytes) the file system holding `folder` accepts."""
    existing = next((p for p in (folder, *folder.parents) if p.is_dir()), Path("."))
    try:
        return os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return _DEFAULT_NAME_MAX


def _roles(plan: PlannedImage) -> list[tuple[str, Path]]:
    """Every path the plan writes, with what it is (for messages)."""
    work = [] if plan.work_folder is None else [
        (f"the work folder of {plan.source}", plan.work_folder)]
    return [(f"the result of {plan.source}", plan.result),
            *((f"the {side.label} of {plan.source}", path) for side, path in plan.side_files),
            *work]


def _check_writable(folders: set[Path]) -> None:
    """Each folder, or the nearest existing folder above it, must be a folder we may write in
    (missing folders are created when the first file is written)."""
    checked: set[Path] = set()
    for folder in folders:
        existing = next(p for p in (folder, *folder.parents) if os.path.lexists(p))
        if existing in checked:
            continue
        checked.add(existing)
        if not existing.is_dir():
            raise AdaCodeError(f"{existing}: is {what_is(existing)}, but a folder is needed for "
                               f"{folder}")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise AdaCodeError(f"{existing}: no permission to write in this folder")


def _with_existing(plan: PlannedImage) -> PlannedImage:
    for path in plan.writes:
        if path.is_dir():
            raise AdaCodeError(f"{path}: a folder is in the way of this output file")
    work = plan.work_folder
    if work is not None and os.path.lexists(work) and not work.is_dir():
        raise AdaCodeError(f"{work}: a file is in the way of this video's work folder")
    existing = tuple(path for path in plan.writes if os.path.lexists(path))
    return PlannedImage(plan.source, plan.result, plan.side_files, existing, work)


def _relative_folder(input_path: Path, root: Path | None) -> Path:
    if root is None:
        return Path()
    try:
        return resolved(input_path.parent).relative_to(resolved(root))
    except ValueError:
        return Path()


def _canonical(suffix: str) -> str:
    return WRITABLE_FORMATS.get(suffix.lower(), suffix.lower())
