"""collect_inputs / list_inputs: which files a command restores, and which entries it skips."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adacode_cli.errors import AdaCodeError
from adacode_cli.images.inputs import (
    Skipped,
    collect_inputs,
    images_in,
    input_root,
    list_inputs,
)
from cli_restore_helpers import touch_image


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """A folder with images, a note, hidden and temporary files, and a sub-folder."""
    folder = tmp_path / "photos"
    for name in (
        "b.png",
        "a.JPG",
        "c.tiff",
        ".hidden.png",
        ".adacode-tmp-x1.png",
        "sub/d.webp",
        ".git/e.png",
        "sub/deeper/f.gif",
    ):
        touch_image(folder / name)
    (folder / "notes.txt").write_text("not an image")
    (folder / "folder.png").mkdir()  # a folder with an image-like name
    return folder


def names(paths: list[Path], root: Path) -> list[str]:
    return [path.relative_to(root).as_posix() for path in paths]


def test_folder_ignores_non_images_hidden_and_temp(mixed: Path) -> None:
    assert names(collect_inputs(str(mixed), recursive=False), mixed) == ["a.JPG", "b.png", "c.tiff"]


def test_folder_recursive(mixed: Path) -> None:
    assert names(collect_inputs(str(mixed), recursive=True), mixed) == [
        "a.JPG",
        "b.png",
        "c.tiff",
        "sub/d.webp",
        "sub/deeper/f.gif",
    ]


def test_images_in_lists_a_folder_and_may_be_empty(mixed: Path, tmp_path: Path) -> None:
    assert images_in(mixed, recursive=False) == collect_inputs(str(mixed), recursive=False)
    assert images_in(mixed, recursive=True) == collect_inputs(str(mixed), recursive=True)
    assert images_in(mixed / "folder.png", recursive=True) == []


def test_single_file_any_extension(mixed: Path) -> None:
    assert collect_inputs(str(mixed / "notes.txt"), recursive=False) == [mixed / "notes.txt"]


def test_glob(mixed: Path) -> None:
    assert names(collect_inputs(str(mixed / "*.png"), recursive=False), mixed) == ["b.png"]
    found = collect_inputs(str(mixed / "**" / "*.*"), recursive=True)
    assert names(found, mixed) == ["a.JPG", "b.png", "c.tiff", "sub/d.webp", "sub/deeper/f.gif"]


def test_nothing_found_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(AdaCodeError, match="--recursive"):
        collect_inputs(str(tmp_path / "empty"), recursive=False)
    with pytest.raises(AdaCodeError, match="matches no images"):
        collect_inputs(str(tmp_path / "*.png"), recursive=False)
    with pytest.raises(AdaCodeError, match="no such file or folder"):
        collect_inputs(str(tmp_path / "missing.png"), recursive=False)


def test_input_root(mixed: Path) -> None:
    assert input_root(str(mixed)) == mixed
    assert input_root(str(mixed / "b.png")) == mixed
    assert input_root(str(mixed / "sub" / "*.webp")) == mixed / "sub"


def test_unreadable_entries_are_listed_as_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    touch_image(folder / "good.png")
    (folder / "dangling.png").symlink_to(folder / "gone.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    os.mkfifo(folder / "pipe.png")
    (folder / "dir.png").mkdir()
    listing = list_inputs(str(folder), recursive=False)
    assert listing.files == [folder / "good.png"]
    assert listing.skipped == [
        Skipped(folder / "dangling.png", "a broken symbolic link"),
        Skipped(folder / "dir.png", "a folder (use --recursive to search it)"),
        Skipped(folder / "loop.png", "a symbolic link loop"),
        Skipped(folder / "pipe.png", "a FIFO (named pipe)"),
    ]
    with pytest.raises(AdaCodeError, match="FIFO"):
        list_inputs(str(folder / "pipe.png"), recursive=False)
    with pytest.raises(AdaCodeError, match="broken symbolic link"):
        list_inputs(str(folder / "dangling.png"), recursive=False)
    recursive = list_inputs(str(folder), recursive=True)
    assert [entry.path.name for entry in recursive.skipped] == [
        "dangling.png", "loop.png", "pipe.png"]


def _unlistable(monkeypatch: pytest.MonkeyPatch, *folders: Path) -> None:
    """Folders that cannot be listed (this process runs as root, whom permissions never stop)."""
    scandir, iterdir = os.scandir, Path.iterdir

    def denied(path: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    def guarded_scandir(path: object = "."):
        return denied(path) if Path(os.fsdecode(path)) in folders else scandir(path)

    def guarded_iterdir(self: Path):
        return denied(self) if self in folders else iterdir(self)

    monkeypatch.setattr(os, "scandir", guarded_scandir)
    monkeypatch.setattr(Path, "iterdir", guarded_iterdir)


def test_folders_that_cannot_be_searched_are_reported_not_silently_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--recursive` used to pass over a sub-folder it could not list, and a link to a folder,
    without a word: their images were never restored (or trained on) and nobody was told.
    Links to folders are followed now (a dataset or album linked in), each folder once: a
    link loop or a second way into a folder adds nothing."""
    folder = tmp_path / "in"
    touch_image(folder / "good.png")
    touch_image(folder / "private" / "lost.png")
    touch_image(tmp_path / "elsewhere" / "linked.png")
    (folder / "album").symlink_to(tmp_path / "elsewhere")
    (folder / "zz-again").symlink_to(folder / "private")
    (folder / "sub").mkdir()
    (folder / "sub" / "loop").symlink_to(folder)
    touch_image(folder / ".cache" / "hidden.png")
    _unlistable(monkeypatch, folder / "private", folder / ".cache")
    listing = list_inputs(str(folder), recursive=True)
    assert listing.files == [folder / "album" / "linked.png", folder / "good.png"]
    assert listing.skipped == [
        Skipped(folder / "private", "cannot list this folder (Permission denied)"),
    ]
    with pytest.raises(AdaCodeError, match=r"private: cannot list this folder"):
        images_in(folder, recursive=True)  # training data, mask folders: nothing is left out


@pytest.mark.parametrize("recursive", [False, True])
def test_an_input_folder_that_cannot_be_listed_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recursive: bool
) -> None:
    folder = tmp_path / "in"
    touch_image(folder / "good.png")
    _unlistable(monkeypatch, folder)
    with pytest.raises(AdaCodeError, match=r"cannot list this folder \(Permission denied\)"):
        list_inputs(str(folder), recursive=recursive)
