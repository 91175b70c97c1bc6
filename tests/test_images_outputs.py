"""The output plan: where each result goes, and every unsafe plan refused before any work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adacode_cli.errors import AdaCodeError
from adacode_cli.images.inputs import collect_inputs
from adacode_cli.images.outputs import (
    WEIGHT_MAP,
    OutputRequest,
    earlier_results,
    is_file_output,
    plan_output,
    plan_run,
)
from cli_restore_helpers import touch_image


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    for name in ("b.png", "a.JPG", "c.tiff", "sub/d.webp", "sub/deeper/f.gif"):
        touch_image(folder / name)
    (folder / "folder.png").mkdir()
    return folder


def plan(inputs: list[Path], root: Path | None, output: Path | None, **options: object):
    maps = options.pop("maps", False)
    protected = options.pop("protected", ())
    request = OutputRequest(output, "sr", side_files=(WEIGHT_MAP,) if maps else (),
                            **options)  # type: ignore[arg-type]
    return plan_run(inputs, input_root=root, request=request, protected=protected)


def test_default_output_folder(photos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(photos.parent)
    assert plan_output(photos / "b.png", input_root=photos, output=None, task="sr") == Path(
        "adacode-sr/b.png")


def test_result_names(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert plan_output(photos / "sub" / "d.webp", input_root=photos, output=out,
                       task="sr") == out / "sub" / "d.webp"
    assert plan_output(photos / "sub" / "deeper" / "f.gif", input_root=None, output=out,
                       task="sr") == out / "f.png"
    assert plan_output(photos / "a.JPG", input_root=photos, output=out, task="sr", ext="webp",
                       suffix="_x4") == out / "a_x4.webp"
    with pytest.raises(AdaCodeError, match="unknown output format"):
        plan_output(photos / "a.JPG", input_root=photos, output=None, task="sr", ext="bmp")


def test_explicit_file(photos: Path, tmp_path: Path) -> None:
    target = tmp_path / "result.tif"
    assert is_file_output(target)
    assert plan_output(photos / "b.png", input_root=photos, output=target, task="sr",
                       suffix="_ignored") == target
    with pytest.raises(AdaCodeError, match="disagrees"):
        plan_output(photos / "b.png", input_root=photos, output=target, task="sr", ext="png")
    assert not is_file_output(photos / "folder.png")  # an existing folder stays a folder
    [planned] = plan([photos / "b.png"], photos, photos / "folder.png")
    assert planned.result == photos / "folder.png" / "b.png"


def test_never_an_input_and_never_two_writes_to_one_path(photos: Path, tmp_path: Path) -> None:
    inputs = collect_inputs(str(photos), recursive=False)
    with pytest.raises(AdaCodeError, match="need an output folder"):
        plan(inputs, photos, tmp_path / "one.png")
    with pytest.raises(AdaCodeError, match="overwrite the input itself"):
        plan([photos / "b.png"], photos, photos)
    with pytest.raises(AdaCodeError, match="overwrite the input itself"):
        plan([photos / "b.png"], photos, photos / "b.png")
    mask = touch_image(tmp_path / "o" / "b.png")
    with pytest.raises(AdaCodeError, match=f"overwrite the input {mask}"):
        plan([photos / "b.png"], photos, tmp_path / "o", protected=[mask])
    touch_image(photos / "b.jpg")
    inputs = collect_inputs(str(photos), recursive=False)
    with pytest.raises(AdaCodeError, match=r"both .* --ext png gives them one name"):
        plan(inputs, photos, tmp_path / "o2", ext="png")
    planned = plan(inputs, photos, tmp_path / "o2")
    assert [p.result.name for p in planned] == ["a.JPG", "b.jpg", "b.png", "c.tiff"]


def test_side_files_go_through_the_same_plan(tmp_path: Path) -> None:
    folder = tmp_path / "wm"
    x = touch_image(folder / "x-weights.png")
    with pytest.raises(AdaCodeError, match=r"weight map of .* would overwrite the input itself"):
        plan([x], folder, folder / "x.png", maps=True)
    a = touch_image(folder / "a.png")
    with pytest.raises(AdaCodeError, match=r"both the weight map of .*a.png and the result of "
                                           r".*a-weights.png.*leave out --save-weight-map"):
        plan([a, touch_image(folder / "a-weights.png")], folder, tmp_path / "out", maps=True)
    out = tmp_path / "out2"
    touch_image(out / "b-weights.png")
    [planned] = plan([touch_image(folder / "b.png")], folder, out, maps=True)
    assert planned.writes == (out / "b.png", out / "b-weights.png")
    assert planned.existing == (out / "b-weights.png",)  # skipped unless --overwrite


def test_nothing_lands_outside_the_output_folder(photos: Path, tmp_path: Path) -> None:
    for suffix in ("/../../ESCAPED", "..", "a\\b"):
        with pytest.raises(AdaCodeError, match="--suffix"):
            plan([photos / "b.png"], photos, tmp_path / "out", suffix=suffix)
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.png").symlink_to(tmp_path / "elsewhere.png")
    with pytest.raises(AdaCodeError, match="outside the output folder"):
        plan([photos / "b.png"], photos, out)


def test_output_location_is_checked(photos: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a file")
    with pytest.raises(AdaCodeError, match="is a file"):
        plan(collect_inputs(str(photos), recursive=False), photos, tmp_path / "notes.txt")
    with pytest.raises(AdaCodeError, match="is a file"):
        plan([photos / "b.png"], photos, tmp_path / "notes.txt" / "deeper")
    for name in ("out.txt", "out.gif"):
        with pytest.raises(AdaCodeError, match="not an image file name adacode writes"):
            plan([photos / "b.png"], photos, tmp_path / name)
    assert not (tmp_path / "out.txt").exists()
    (tmp_path / "results.v2").mkdir()  # an existing folder is fine whatever its name
    assert plan([photos / "b.png"], photos, tmp_path / "results.v2")[0].result.name == "b.png"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_output_folder_is_refused(photos: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(AdaCodeError, match="no permission"):
        plan([photos / "b.png"], photos, locked / "out")


def test_earlier_results_in_the_same_folder(tmp_path: Path) -> None:
    folder = tmp_path / "same"
    a, a_r = touch_image(folder / "a.png"), touch_image(folder / "a_r.png")
    request = OutputRequest(folder, "recon", suffix="_r")
    assert earlier_results([a, a_r], input_root=folder, request=request) == {a_r}
    [planned] = plan_run([a], input_root=folder, request=request)
    assert planned.result == a_r and planned.existing == (a_r,)


@pytest.mark.parametrize("separator", sorted({"/", os.sep}))
def test_a_trailing_separator_makes_any_output_a_folder(photos: Path, tmp_path: Path,
                                                        separator: str) -> None:
    """`sr a.png newdir.png/` writes newdir.png/a.png, as `cp a.png newdir.png/` would (Typer's
    Path drops the slash, so the plan gets the user's spelling); a video's result too."""
    source = photos / "b.png"
    for name in ("newdir.png", "clip.mp4", "notes.txt"):
        spelled = str(tmp_path / name) + separator
        request = OutputRequest.spelled(spelled, "sr")
        assert not request.names_one_file
        [planned] = plan_run([source], input_root=photos, request=request)
        assert planned.result == tmp_path / name / "b.png"
    unspelled = OutputRequest.spelled(str(tmp_path / "newdir.png"), "sr")
    assert unspelled.names_one_file
    video = tmp_path / "in" / "clip.mkv"
    [planned] = plan_run([video], input_root=video.parent,
                         request=OutputRequest.spelled(f"{tmp_path / 'out.mp4'}/", "sr"))
    assert planned.result == tmp_path / "out.mp4" / "clip.mp4"


def test_a_trailing_separator_on_a_file_is_refused(photos: Path) -> None:
    from adacode_cli.images.inputs import spelled_path
    from adacode_cli.images.outputs import file_output

    with pytest.raises(AdaCodeError, match=r"b\.png/: is a file, but the trailing '/' names a"):
        OutputRequest.spelled(f"{photos / 'b.png'}/", "sr")
    with pytest.raises(AdaCodeError, match=r"b\.png/: is a file, but the trailing '/'"):
        collect_inputs(f"{photos / 'b.png'}/", False)
    with pytest.raises(AdaCodeError, match=r"x\.safetensors/: the output is one file"):
        file_output("x.safetensors/")
    assert spelled_path(f"{photos / 'folder.png'}/") == photos / "folder.png"
    assert file_output("x.safetensors") == Path("x.safetensors")
