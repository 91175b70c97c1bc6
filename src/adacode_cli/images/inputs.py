"""Which files a command restores, and where each result goes."""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from adacode_cli.atomic import TEMP_PREFIX
from adacode_cli.errors import AdaCodeError
from adacode_cli.images.formats import READABLE_EXTENSIONS, WRITABLE_FORMATS, is_image_path
from adacode_cli.video.codecs import CONTAINERS, DEFAULT_CONTAINER, VIDEO_EXTENSIONS

_GLOB_CHARACTERS = frozenset("*?[")
_FILE, _FOLDER, _MISSING = "file", "folder", "missing"


@dataclass(frozen=True)
class Skipped:
    """A name that looks like an image input but is not a file we can read, and why."""

    path: Path
    reason: str


@dataclass
class InputListing:
    """What an INPUT argument names: the image files to restore, and the entries skipped."""

    files: list[Path]
    skipped: list[Skipped] = field(default_factory=list)


def collect_inputs(spec: str, recursive: bool) -> list[Path]:
    """The image files `spec` names (see `list_inputs`), without the skipped entries."""
    return list_inputs(spec, recursive).files


def list_inputs(spec: str, recursive: bool) -> InputListing:
    """The image and video files `spec` names: a file, a folder, or a glob pattern; sorted.

    Folders and patterns yield only files with an image or video extension, skipping hidden
    files and folders (our own temporary files among them); `recursive` descends into
    sub-folders (and lets `**` in a pattern match any depth). Entries with such a name that are not
    readable files (broken links, link loops, FIFOs, folders) are listed as skipped. Finding
    nothing is a usage error.
    """
    path = spelled_path(spec)
    kind = _entry_kind(path)
    if kind == _FILE:
        if recursive:
            raise AdaCodeError(f"--recursive descends into folders, but {spec} is a file; "
                               "leave it out")
        return InputListing([path])
    if kind == _FOLDER:
        listing = _folder_listing(path, recursive, is_media_path)
        if not listing.files:
            hint = "" if recursive else " (use --recursive to search sub-folders)"
            raise AdaCodeError(f"{spec}: no images ({_extension_list()}) in this folder{hint}")
        return listing
    if kind != _MISSING:
        raise AdaCodeError(f"{spec}: {kind}, not an image file or folder")
    if _GLOB_CHARACTERS & set(spec):
        matches = (Path(p) for p in glob.glob(spec, recursive=recursive))
        listing = _listing(matches, None, recursive, is_media_path)
        if not listing.files:
            raise AdaCodeError(f"{spec}: the pattern matches no images ({_extension_list()})")
        return listing
    raise AdaCodeError(f"{spec}: no such file or folder")


def names_folder(spelling: str) -> bool:
    """Whether the user wrote `spelling` with a trailing path separator, which says "a folder"
    (as `cp` and `rsync` read it); pathlib, and so Typer's Path arguments, drop it."""
    return spelling.endswith(tuple({"/", os.sep, os.altsep or "/"}))


def spelled_path(spelling: str) -> Path:
    """The path the user wrote; a trailing separator on an entry that is there but is not a
    folder (`photo.png/`) is a usage error, as the system itself refuses to open one."""
    path = Path(spelling)
    if names_folder(spelling) and os.path.lexists(path) and not path.is_dir():
        raise AdaCodeError(f"{spelling}: is {what_is(path)}, but the trailing "
                           f"'{spelling[-1]}' names a folder")
    return path


def images_in(folder: Path, *, recursive: bool) -> list[Path]:
    """The image files in `folder` (and its sub-folders when `recursive`), sorted; hidden files
    and folders are skipped, our temporary files among them. Empty when there are none.
    Searching sub-folders (training data), an entry with an image name that is no readable
    file, or a folder that cannot be listed, is an error: nothing is left out silently."""
    listing = _folder_listing(folder, recursive, is_image_path)
    if recursive and listing.skipped:
        shown = "; ".join(f"{entry.path}: {entry.reason}" for entry in listing.skipped[:3])
        more = len(listing.skipped) - 3
        raise AdaCodeError(shown + (f"; and {more} more" if more > 0 else ""))
    return listing.files


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


def resolved(path: Path) -> Path:
    """`path` with every link followed, for comparing paths; a symbolic link loop on the way
    is a usage error naming it (pathlib raises RuntimeError or OSError for one)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as error:
        raise AdaCodeError(f"{path}: a symbolic link loop (or a path that cannot be followed); "
                           "refused") from error


def what_is(path: Path) -> str:
    """What `path` is, for messages: 'a file', 'a folder', 'missing', 'a broken symbolic link',
    'a FIFO (named pipe)'..."""
    kind = _entry_kind(path)
    return {_FILE: "a file", _FOLDER: "a folder", _MISSING: "missing"}.get(kind, kind)


def find_shared_write(destinations: list[Path]) -> tuple[int, int] | None:
    """The indices of the first two `destinations` that are one file, or None."""
    claimed: dict[Path, int] = {}
    for index, destination in enumerate(destinations):
        key = resolved(destination)
        if key in claimed:
            return claimed[key], index
        claimed[key] = index
    return None


def _folder_listing(folder: Path, recursive: bool, accept: Callable[[Path], bool]
                    ) -> InputListing:
    """`_listing` of a folder's entries (and, when `recursive`, of its sub-folders'). A folder
    that cannot be listed is a usage error; a sub-folder that cannot be listed is a skipped
    entry, not a silent gap (`Path.rglob` passes over it without a word)."""
    unsearched: dict[Path, str] = {}
    try:
        entries = list(_tree(folder, unsearched) if recursive else folder.iterdir())
    except OSError as error:
        raise AdaCodeError(f"{folder}: cannot list this folder ({error.strerror or error})"
                           ) from error
    if folder in unsearched:
        raise AdaCodeError(f"{folder}: {unsearched[folder]}")
    listing = _listing(entries, folder, recursive, accept)
    listing.skipped += [Skipped(path, reason) for path, reason in sorted(unsearched.items())
                        if not _hidden(path, folder)]
    return listing


def _tree(root: Path, unsearched: dict[Path, str]) -> Iterator[Path]:
    """Every entry below `root`, folders included, following links to folders (a dataset or
    an album linked in is searched, as the official training code's listing does). The
    folders that cannot be listed go to `unsearched`, with the reason. Each folder is searched
    once: a link loop, or a second way into a folder, adds nothing (its images are listed
    under the first path)."""

    def failed(error: OSError) -> None:
        unsearched[Path(error.filename)] = \
            f"cannot list this folder ({error.strerror or error})"

    searched: dict[tuple[int, int], Path] = {}  # each folder once, by identity
    with contextlib.suppress(OSError):
        info = root.stat()
        searched[info.st_dev, info.st_ino] = root
    for folder, folders, files in os.walk(root, onerror=failed, followlinks=True):
        base = Path(folder)
        folders.sort(key=lambda name: ((base / name).is_symlink(), name))  # real ones first
        for name in list(folders):
            try:
                info = (base / name).stat()
            except OSError:
                continue  # os.walk reports it when it cannot list it
            if searched.setdefault((info.st_dev, info.st_ino), base / name) != base / name:
                folders.remove(name)
        yield from (base / name for name in [*folders, *files])


def _listing(candidates: Iterable[Path], root: Path | None, recursive: bool,
             accept: Callable[[Path], bool]) -> InputListing:
    """The readable files among `candidates` whose names `accept` (sorted) and the accepted
    names that are not readable files; hidden names are left out silently, and so are folders
    searched by `recursive`."""
    files: set[Path] = set()
    skipped: dict[Path, str] = {}
    for path in candidates:
        if not accept(path) or _hidden(path, root):
            continue
        kind = _entry_kind(path)
        if kind == _FILE:
            files.add(path)
        elif kind == _FOLDER:
            if not recursive:
                skipped[path] = "a folder (use --recursive to search it)"
        else:
            skipped[path] = kind
    return InputListing(sorted(files), [Skipped(p, skipped[p]) for p in sorted(skipped)])


def _entry_kind(path: Path) -> str:
    """_FILE, _FOLDER, _MISSING, or what else `path` is, in words."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "a broken symbolic link" if path.is_symlink() else _MISSING
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a symbolic link loop"
        return f"unreadable ({error.strerror or error})"
    if stat.S_ISREG(mode):
        return _FILE
    if stat.S_ISDIR(mode):
        return _FOLDER
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"


def _hidden(path: Path, root: Path | None) -> bool:
    """A dot-file, or a file in a dot-folder below `root`; our temp files start with a dot too."""
    parts = path.relative_to(root).parts if root is not None else path.parts[-1:]
    return any(part.startswith(".") for part in parts) or path.name.startswith(TEMP_PREFIX)


def is_media_path(path: Path) -> bool:
    """An image or a video extension (animated GIF/WebP are images until asked otherwise)."""
    return is_image_path(path) or path.suffix.lower() in VIDEO_EXTENSIONS


def output_suffix(input_path: Path, ext: str = "auto", *, video: bool = False) -> str:
    """The extension of `input_path`'s result: `ext`'s where it is of the input's kind (image
    format, or video container for a `video`); else an image keeps its own format where we
    can write it (gif, bmp become .png) and a video becomes .mp4 (H.264 by default)."""
    if video:
        return "." + ext if "." + ext in CONTAINERS else DEFAULT_CONTAINER
    if ext != "auto" and "." + ext in WRITABLE_FORMATS:
        return "." + ext
    if input_path.suffix.lower() in WRITABLE_FORMATS:
        return input_path.suffix
    return ".png"


def _leading_literal_parts(pattern: Path) -> list[str]:
    literal = []
    for part in pattern.parts[:-1]:
        if _GLOB_CHARACTERS & set(part):
            break
        literal.append(part)
    return literal


def _extension_list() -> str:
    return ", ".join(ext.lstrip(".") for ext in sorted(READABLE_EXTENSIONS | VIDEO_EXTENSIONS))
