"""collect_inputs and plan_output(s): which files are restored and where results go."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from adacode_cli.errors import AdaCodeError
from adacode_cli.images.inputs import (
    collect_inputs,
    images_in,
    input_root,
    is_file_output,
    plan_output,
    plan_outputs,
)


def touch_image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (2, 2)).save(path, format="PNG")
    return path


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


def test_default_output_folder(mixed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(mixed.parent)
    planned = plan_output(mixed / "b.png", input_root=mixed, output=None, task="sr")
    assert planned == Path("adacode-sr/b.png")


def test_output_folder_keeps_sub_folders(mixed: Path, tmp_path: Path) -> None:
    planned = plan_output(
        mixed / "sub" / "d.webp", input_root=mixed, output=tmp_path / "out", task="sr"
    )
    assert planned == tmp_path / "out" / "sub" / "d.webp"


def test_unwritable_formats_become_png(mixed: Path, tmp_path: Path) -> None:
    planned = plan_output(
        mixed / "sub" / "deeper" / "f.gif", input_root=None, output=tmp_path / "o", task="sr"
    )
    assert planned == tmp_path / "o" / "f.png"


def test_suffix_and_ext(mixed: Path, tmp_path: Path) -> None:
    planned = plan_output(
        mixed / "a.JPG",
        input_root=mixed,
        output=tmp_path / "o",
        task="sr",
        ext="webp",
        suffix="_x4",
    )
    assert planned == tmp_path / "o" / "a_x4.webp"
    with pytest.raises(AdaCodeError, match="unknown output format"):
        plan_output(mixed / "a.JPG", input_root=mixed, output=None, task="sr", ext="bmp")


def test_explicit_file(mixed: Path, tmp_path: Path) -> None:
    target = tmp_path / "result.tif"
    assert is_file_output(target)
    assert (
        plan_output(mixed / "b.png", input_root=mixed, output=target, task="sr", suffix="_ignored")
        == target
    )
    assert (
        plan_output(mixed / "b.png", input_root=mixed, output=target, task="sr", ext="tif")
        == target
    )
    with pytest.raises(AdaCodeError, match="disagrees"):
        plan_output(mixed / "b.png", input_root=mixed, output=target, task="sr", ext="png")


def test_existing_folder_with_image_name_is_a_folder(mixed: Path) -> None:
    assert not is_file_output(mixed / "folder.png")
    assert (
        plan_output(mixed / "b.png", input_root=mixed, output=mixed / "folder.png", task="sr")
        == mixed / "folder.png" / "b.png"
    )


def test_refuses_to_overwrite_the_input(mixed: Path) -> None:
    with pytest.raises(AdaCodeError, match="overwrite the input"):
        plan_output(mixed / "b.png", input_root=mixed, output=mixed, task="sr")
    with pytest.raises(AdaCodeError, match="overwrite the input"):
        plan_output(mixed / "b.png", input_root=mixed, output=mixed / "b.png", task="sr")
    # a suffix makes the same folder safe
    assert (
        plan_output(mixed / "b.png", input_root=mixed, output=mixed, task="sr", suffix="_sr")
        == mixed / "b_sr.png"
    )


def test_batch_refuses_collisions_and_other_inputs(mixed: Path, tmp_path: Path) -> None:
    inputs = collect_inputs(str(mixed), recursive=False)
    with pytest.raises(AdaCodeError, match="need an output folder"):
        plan_outputs(inputs, input_root=mixed, output=tmp_path / "one.png", task="sr")
    touch_image(mixed / "b.jpg")
    inputs = collect_inputs(str(mixed), recursive=False)
    with pytest.raises(AdaCodeError, match="both"):
        plan_outputs(inputs, input_root=mixed, output=tmp_path / "o", task="sr", ext="png")
    with pytest.raises(AdaCodeError, match="overwrite the input"):  # b.jpg -> b.png exists
        plan_outputs(inputs, input_root=mixed, output=mixed, task="sr", ext="png", suffix="")
    planned = plan_outputs(inputs, input_root=mixed, output=tmp_path / "o", task="sr")
    assert [p.name for p in planned] == ["a.JPG", "b.jpg", "b.png", "c.tiff"]
