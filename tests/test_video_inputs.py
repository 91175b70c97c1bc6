"""Video inputs without the video extra's binary: listing, output names, the missing-extra
message, frame-rate snapping and the segment store (no ffmpeg run here)."""

from __future__ import annotations

import sys
from fractions import Fraction

import pytest

from adacode_cli.images.inputs import collect_inputs, images_in, plan_outputs
from adacode_cli.video.ffmpeg import ffmpeg_exe
from adacode_cli.video.probe import snap_rate
from adacode_cli.video.segments import SegmentStore, work_folder
from cli_restore_helpers import noise, run_cli, save_png, save_tiny_model


def test_folders_list_videos_for_restoring_but_not_for_training(tmp_path):
    for name in ("a.mp4", "b.MKV", "c.mov", "d.webm", "e.avi", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    save_png(tmp_path / "f.png", noise((4, 4, 3)))
    assert [p.name for p in collect_inputs(str(tmp_path), False)] == [
        "a.mp4", "b.MKV", "c.mov", "d.webm", "e.avi", "f.png"]
    assert [p.name for p in images_in(tmp_path, recursive=False)] == ["f.png"]


def test_videos_are_written_as_mp4_unless_ext_names_a_container(tmp_path):
    inputs = [tmp_path / "clip.mkv", tmp_path / "photo.png"]
    plans = plan_outputs(inputs, input_root=tmp_path, output=tmp_path / "out", task="sr")
    assert [p.name for p in plans] == ["clip.mp4", "photo.png"]
    plans = plan_outputs(inputs, input_root=tmp_path, output=tmp_path / "out", task="sr",
                         ext="webm")
    assert [p.name for p in plans] == ["clip.webm", "photo.png"]
    plans = plan_outputs(inputs, input_root=tmp_path, output=tmp_path / "out", task="sr",
                         ext="jpg")
    assert [p.name for p in plans] == ["clip.mp4", "photo.jpg"]


def test_a_missing_video_extra_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    model = save_tiny_model(tmp_path / "sr2.safetensors", "sr", 2)
    (tmp_path / "clip.mp4").write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    ffmpeg_exe.cache_clear()
    try:
        ran = run_cli(capsys, "sr", str(tmp_path / "clip.mp4"), "-w", str(model))
    finally:
        ffmpeg_exe.cache_clear()
    assert ran.code == 2
    assert ran.stderr.strip().splitlines() == [
        'error: video needs the optional video extra: pip install "adacode-cli[video]"']


def test_codec_and_container_must_agree_before_the_model_loads(tmp_path, capsys):
    pytest.importorskip("imageio_ffmpeg")
    (tmp_path / "clip.mp4").write_bytes(b"x")
    ran = run_cli(capsys, "sr", str(tmp_path / "clip.mp4"), str(tmp_path / "out.webm"),
                  "--video-codec", "h264", "-w", str(tmp_path / "absent.safetensors"))
    assert ran.code == 2
    assert ".webm cannot hold h264 video" in ran.stderr
    ran = run_cli(capsys, "sr", str(tmp_path / "clip.mp4"), "--crf", "60",
                  "-w", str(tmp_path / "absent.safetensors"))
    assert ran.code == 2 and "--crf 60: h264 takes 0-51" in ran.stderr


@pytest.mark.parametrize(("measured", "exact"), [
    (29.97, Fraction(30000, 1001)), (29.976, Fraction(30000, 1001)), (25.0, Fraction(25)),
    (23.976, Fraction(24000, 1001)), (59.94, Fraction(60000, 1001)), (12.0, Fraction(12)),
    (120 / 11, Fraction(120, 11)),
])
def test_frame_rates_snap_to_the_rate_they_approximate(measured, exact):
    assert snap_rate(measured) == exact


def test_segments_are_kept_only_for_the_same_identity(tmp_path):
    target = tmp_path / "out.mp4"
    store = SegmentStore.open(target, {"model": "a"}, resume=True)
    first = store.next_path()
    first.write_bytes(b"0" * 10)
    store.add(first, 5)
    assert SegmentStore.open(target, {"model": "a"}, resume=True).frames_done == 5
    assert SegmentStore.open(target, {"model": "a"}, resume=False).frames_done == 0
    assert not first.exists()
    store = SegmentStore.open(target, {"model": "a"}, resume=True)
    store.next_path().write_bytes(b"0" * 10)
    store.add(store.next_path(), 5)
    store.next_path().write_bytes(b"0" * 3)  # a segment the crash left unrecorded
    assert SegmentStore.open(target, {"model": "b"}, resume=True).frames_done == 0
    assert work_folder(target).parent == tmp_path and not target.exists()
