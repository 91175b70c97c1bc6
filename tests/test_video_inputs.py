"""Video inputs without the video extra's binary: listing, output names, the missing-extra
message, frame-rate snapping and the segment store (no ffmpeg run here)."""

from __future__ import annotations

import sys
from fractions import Fraction

import pytest

from adacode_cli.errors import AdaCodeError
from adacode_cli.images.inputs import collect_inputs, images_in
from adacode_cli.images.outputs import OutputRequest, plan_run
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


def plan(inputs, tmp_path, output, **request):
    return plan_run(inputs, input_root=tmp_path, request=OutputRequest(output, "sr", **request))


def test_videos_are_written_as_mp4_unless_ext_names_a_container(tmp_path):
    inputs = [tmp_path / "clip.mkv", tmp_path / "photo.png"]
    out = tmp_path / "out"
    assert [p.result.name for p in plan(inputs, tmp_path, out)] == ["clip.mp4", "photo.png"]
    assert [p.result.name for p in plan(inputs, tmp_path, out, ext="webm")] == [
        "clip.webm", "photo.png"]
    planned = plan(inputs, tmp_path, out, ext="jpg")
    assert [p.result.name for p in planned] == ["clip.mp4", "photo.jpg"]
    assert [p.work_folder for p in planned] == [work_folder(out / "clip.mp4"), None]


def test_video_results_go_through_the_one_output_plan(tmp_path):
    """A video's result and its work folder obey the rules every written file obeys."""
    clip, other = tmp_path / "clip.mp4", tmp_path / "clip.mkv"
    with pytest.raises(AdaCodeError, match="would overwrite the input itself"):
        plan([clip], tmp_path, tmp_path)  # same folder, same name
    with pytest.raises(AdaCodeError, match=r"both the result of .*clip.mp4 and the result of"):
        plan([clip, other], tmp_path, tmp_path / "out")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sub").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(AdaCodeError, match="outside the output folder"):
        plan_run([tmp_path / "sub" / "clip.mp4"], input_root=tmp_path,
                 request=OutputRequest(tmp_path / "out", "sr"))
    with pytest.raises(AdaCodeError, match="is a video; name a video file"):
        plan([clip], tmp_path, tmp_path / "one.png")
    with pytest.raises(AdaCodeError, match="is an image; name an image file"):
        plan([tmp_path / "photo.png"], tmp_path, tmp_path / "one.mp4")
    (tmp_path / "out" / "clip.mp4").write_bytes(b"x")
    work_folder(tmp_path / "out" / "clip.mp4").mkdir()  # an interrupted run: resumable
    [planned] = plan([clip], tmp_path, tmp_path / "out")
    assert planned.existing == (tmp_path / "out" / "clip.mp4",)
    work_folder(tmp_path / "out" / "clip.mp4").rmdir()
    work_folder(tmp_path / "out" / "clip.mp4").write_bytes(b"x")
    with pytest.raises(AdaCodeError, match="in the way of this video's work folder"):
        plan([clip], tmp_path, tmp_path / "out")


def test_animated_gifs_are_planned_as_videos_only_when_asked(tmp_path):
    from PIL import Image

    frames = [Image.new("RGB", (4, 4), (index * 60, 0, 0)) for index in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    out = tmp_path / "out"
    assert plan([tmp_path / "anim.gif"], tmp_path, out)[0].result.name == "anim.png"
    [video] = plan([tmp_path / "anim.gif"], tmp_path, out, animated=True)
    assert video.result.name == "anim.mp4" and video.is_video


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


def test_the_video_plan_is_checked_before_the_model_loads(tmp_path, capsys):
    pytest.importorskip("imageio_ffmpeg")
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    absent = str(tmp_path / "absent.safetensors")
    ran = run_cli(capsys, "sr", str(clip), str(tmp_path), "-w", absent)
    assert ran.code == 2 and "would overwrite the input itself" in ran.stderr
    ran = run_cli(capsys, "sr", str(clip), str(tmp_path / "one.png"), "-w", absent)
    assert ran.code == 2 and "is a video; name a video file" in ran.stderr


def test_an_existing_video_result_is_skipped_unless_overwrite(tmp_path, capsys, models):
    pytest.importorskip("imageio_ffmpeg")
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not probed: the result exists")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "clip.mp4").write_bytes(b"earlier result")
    ran = run_cli(capsys, "sr", str(clip), str(tmp_path / "out"), "-w", str(models["sr2"]))
    assert ran.code == 0, ran.stderr
    assert "skipped, " in ran.stdout and "clip.mp4 exists (--overwrite)" in ran.stdout
    ran = run_cli(capsys, "sr", str(clip), str(tmp_path / "out"), "-w", str(models["sr2"]),
                  "--overwrite")
    assert ran.code == 1 and "clip.mp4: not a readable video" in ran.stderr
    assert (tmp_path / "out" / "clip.mp4").read_bytes() == b"earlier result"


def test_a_pipe_closed_under_the_encoder_thread_is_a_failure_not_a_thread_crash(
    tmp_path, monkeypatch
):
    """An interrupted or failed run kills ffmpeg and closes its pipe while the encoding thread
    may be writing: that write raises ValueError, which used to end the thread with an
    unhandled exception (and could leave the writer waiting on a queue nobody drained)."""
    pytest.importorskip("imageio_ffmpeg")
    import threading

    import numpy as np

    from adacode_cli.video.ffmpeg import VideoError
    from adacode_cli.video.streams import FrameWriter

    crashes: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: crashes.append(args.exc_value))
    target = tmp_path / "out.mkv"
    frame = np.zeros((16, 16, 3), np.uint8)
    raised: list[BaseException] = []

    def run() -> None:
        try:
            with FrameWriter(target, (16, 16), "12", ["-c:v", "ffv1"]) as writer:
                writer._process.process.stdin.close()  # as `kill` does, from another thread
                for _ in range(20):
                    writer.write(frame)
        except VideoError as error:
            raised.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "the writer hung on a queue its dead thread left full"
    assert len(raised) == 1 and "encoding failed" in str(raised[0])
    assert crashes == [] and not target.exists()
