"""`adacode sr|inpaint` on video files, end to end with tiny models and clips made by ffmpeg."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction

import numpy as np
import pytest

pytest.importorskip("imageio_ffmpeg")

from adacode_cli.cli.report import Reporter
from adacode_cli.engine.restorer import Restorer
from adacode_cli.images.decode import read_image
from adacode_cli.interrupt import StopRequest
from adacode_cli.video.segments import work_folder
from cli_restore_helpers import leftovers, noise, run_cli, save_png
from video_helpers import (
    duration,
    extract_frame,
    make_clip,
    packets,
    read_frames,
    run,
    stream_header,
)

LOSSLESS = ("-c:v", "ffv1", "-pix_fmt", "gbrp")


def psnr(first: np.ndarray, second: np.ndarray) -> float:
    difference = first.astype(np.float64) - second.astype(np.float64)
    return float(10 * np.log10(255**2 / np.mean(difference**2)))


def test_sr_video_keeps_frames_rate_duration_and_audio(tmp_path, capsys, models):
    clip = make_clip(tmp_path / "clip.mp4", frames=12, size=(32, 24), rate=12)
    ran = run_cli(capsys, "sr", str(clip), str(tmp_path / "out.mp4"), "-w", str(models["sr2"]),
                  "--json")
    assert ran.code == 0, ran.stderr
    record = json.loads(ran.stdout)
    assert record["status"] == "done" and record["frames"] == 12
    out = tmp_path / "out.mp4"
    assert read_frames(out, (64, 48)).shape == (12, 48, 64, 3)
    assert "12 fps" in stream_header(out) and "h264" in stream_header(out)
    assert duration(out, "v") == duration(clip, "v") == 1
    assert duration(out, "a") == duration(clip, "a")
    assert packets(out, "a")[1] == packets(clip, "a")[1]  # audio copied bit for bit
    assert leftovers(tmp_path) == []


def test_each_frame_equals_the_image_command_on_that_frame(tmp_path, capsys, models):
    clip = make_clip(tmp_path / "clip.mkv", frames=6, size=(32, 24), rate=24, video=LOSSLESS,
                     audio=False)
    lossless, lossy = tmp_path / "out.mkv", tmp_path / "out.mp4"
    for out, codec in ((lossless, "ffv1"), (lossy, "h264")):
        ran = run_cli(capsys, "sr", str(clip), str(out), "-w", str(models["sr2"]),
                      "--outscale", "1.5", "--video-codec", codec)
        assert ran.code == 0, ran.stderr
    exact = read_frames(lossless, (48, 36))
    assert exact.shape == (6, 36, 48, 3)
    for index in (0, 5):
        frame = extract_frame(clip, index, tmp_path / f"frame{index}.png")
        ran = run_cli(capsys, "sr", str(frame), str(tmp_path / f"sr{index}.png"),
                      "-w", str(models["sr2"]), "--outscale", "1.5")
        assert ran.code == 0, ran.stderr
        np.testing.assert_array_equal(exact[index], read_image(tmp_path / f"sr{index}.png").rgb)
    # H.264 (default CRF 18) loses what the codec itself loses on these very frames.
    reference = tmp_path / "reference.mp4"
    run("-y", "-i", str(lossless), "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p",
        str(reference))
    ours, codec_only = (psnr(exact, read_frames(path, (48, 36))) for path in (lossy, reference))
    assert abs(ours - codec_only) < 0.5


def test_stop_leaves_no_output_then_a_rerun_completes_it(tmp_path, capsys, models, monkeypatch):
    clip = make_clip(tmp_path / "clip.mkv", frames=6, size=(32, 24), rate=6, video=LOSSLESS)
    out = tmp_path / "out.mkv"
    arguments = ("sr", str(clip), str(out), "-w", str(models["sr2"]), "--video-codec", "ffv1")
    done = {"frames": 0}
    monkeypatch.setattr(Reporter, "frames", lambda self, d, total: done.update(frames=d))
    monkeypatch.setattr(StopRequest, "__call__", lambda self: done["frames"] >= 3)
    ran = run_cli(capsys, *arguments)
    assert ran.code == 130
    assert not out.exists()
    assert "stopped after 3 of 6 frames" in ran.stderr
    partial = work_folder(out) / "partial.mkv"
    assert read_frames(partial, (64, 48)).shape[0] == 3  # playable: the frames done

    monkeypatch.undo()
    resumed = run_cli(capsys, *arguments)
    assert resumed.code == 0, resumed.stderr
    fresh = tmp_path / "fresh.mkv"
    assert run_cli(capsys, "sr", str(clip), str(fresh), "-w", str(models["sr2"]),
                   "--video-codec", "ffv1").code == 0
    np.testing.assert_array_equal(read_frames(out, (64, 48)), read_frames(fresh, (64, 48)))
    assert duration(out, "a") == duration(clip, "a")
    assert not work_folder(out).exists() and leftovers(tmp_path) == []


def test_frames_run_in_engine_batches_equal_to_one_by_one(tmp_path, capsys, models,
                                                         monkeypatch):
    clip = make_clip(tmp_path / "clip.mkv", frames=7, size=(32, 24), rate=24, video=LOSSLESS,
                     audio=False)
    sizes: list[int] = []
    restore_batch = Restorer.restore_batch
    monkeypatch.setattr(Restorer, "restore_batch", lambda self, images, **options: (
        sizes.append(len(images)) or restore_batch(self, images, **options)))
    outputs = {}
    for batch in (1, 3):
        outputs[batch] = tmp_path / f"batch{batch}.mkv"
        ran = run_cli(capsys, "sr", str(clip), str(outputs[batch]), "-w", str(models["sr2"]),
                      "--video-codec", "ffv1", "--batch-size", str(batch))
        assert ran.code == 0, ran.stderr
    assert sizes == [1] * 7 + [3, 3, 1]
    one_by_one, batched = (read_frames(outputs[b], (64, 48)).astype(int) for b in (1, 3))
    assert batched.shape == (7, 48, 64, 3) and np.abs(batched - one_by_one).max() <= 1

    done = {"frames": 0}  # a stop request during a batch: its frames are written, then it stops
    stopped = tmp_path / "stopped.mkv"
    arguments = ("sr", str(clip), str(stopped), "-w", str(models["sr2"]), "--video-codec",
                 "ffv1", "--batch-size", "3")
    monkeypatch.setattr(Reporter, "frames", lambda self, d, total: done.update(frames=d))
    monkeypatch.setattr(StopRequest, "__call__", lambda self: done["frames"] >= 2)
    ran = run_cli(capsys, *arguments)
    assert ran.code == 130 and "stopped after 3 of 7 frames" in ran.stderr
    monkeypatch.undo()
    assert run_cli(capsys, *arguments).code == 0
    assert np.abs(read_frames(stopped, (64, 48)).astype(int) - one_by_one).max() <= 1


def test_ctrl_c_in_a_real_process_then_a_rerun_continues(tmp_path, capsys, models):
    clip = make_clip(tmp_path / "clip.mkv", frames=8, size=(32, 24), rate=2, video=LOSSLESS)
    out = tmp_path / "out.mkv"
    command = [sys.executable, "-m", "adacode_cli", "sr", str(clip), str(out),
               "-w", str(models["sr2"]), "--video-codec", "ffv1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    manifest = work_folder(out) / "manifest.json"
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if manifest.exists() and json.loads(manifest.read_text())["segments"]:
            break  # the first segment (4 frames, 2 s of video) is complete
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)  # as a terminal does: the whole process group
    _, errors = process.communicate(timeout=120)
    assert process.returncode == 130, errors
    assert "Traceback" not in errors and not out.exists()
    done = read_frames(work_folder(out) / "partial.mkv", (64, 48)).shape[0]
    assert 4 <= done < 8

    rerun = run_cli(capsys, *command[3:])
    assert rerun.code == 0, rerun.stderr
    assert read_frames(out, (64, 48)).shape[0] == 8
    assert duration(out, "v") == duration(clip, "v")
    assert not work_folder(out).exists()


def test_bad_videos_fail_with_one_line_and_the_batch_goes_on(tmp_path, capsys, models):
    folder = tmp_path / "in"
    folder.mkdir()
    good = make_clip(folder / "good.mp4", frames=4, size=(32, 24), rate=4)
    whole = make_clip(tmp_path / "whole.mkv", frames=8, size=(32, 24), rate=4, video=LOSSLESS,
                      audio=False).read_bytes()
    (folder / "truncated.mkv").write_bytes(whole[: len(whole) * 6 // 10])
    (folder / "text.mp4").write_text("not a video at all\n")
    make_clip(folder / "silent.mkv", frames=1, size=(32, 24), video=("-vn",))
    save_png(folder / "photo.png", noise((12, 10, 3)))
    out = tmp_path / "out"
    ran = run_cli(capsys, "sr", str(folder), str(out), "-w", str(models["sr2"]))
    assert ran.code == 1
    failures = [line for line in ran.stderr.splitlines() if line.startswith("failed:")]
    assert len(failures) == 3, ran.stderr
    assert any("truncated.mkv: truncated or damaged video" in line for line in failures)
    assert any("text.mp4: not a readable video" in line for line in failures)
    assert any("silent.mkv: no video stream" in line for line in failures)
    assert "Traceback" not in ran.stderr
    assert sorted(p.name for p in out.iterdir()) == ["good.mp4", "photo.png"]
    assert read_frames(out / "good.mp4", (64, 48)).shape[0] == 4
    assert good.exists() and leftovers(tmp_path) == []


def test_a_codec_without_decoder_is_named(tmp_path, capsys, models, monkeypatch):
    from adacode_cli.video import probe

    clip = make_clip(tmp_path / "clip.mp4", frames=1, size=(32, 24), audio=False)
    monkeypatch.setattr(probe, "decoders", lambda: frozenset({"vp9"}))
    ran = run_cli(capsys, "sr", str(clip), str(tmp_path / "out.mp4"), "-w", str(models["sr2"]))
    assert ran.code == 1
    assert "clip.mp4: the h264 video codec is not supported" in ran.stderr


def test_rotation_and_pixel_aspect_are_kept(tmp_path, capsys, models):
    plain = make_clip(tmp_path / "plain.mp4", frames=2, size=(32, 24), rate=2, audio=False,
                      video=("-c:v", "libx264", "-pix_fmt", "yuv420p", "-vf", "setsar=4/3"))
    clip = tmp_path / "clip.mp4"
    run("-y", "-display_rotation", "90", "-i", str(plain), "-c", "copy", str(clip))
    ran = run_cli(capsys, "sr", str(clip), str(tmp_path / "out.mp4"), "-w", str(models["sr2"]))
    assert ran.code == 0, ran.stderr
    header = stream_header(tmp_path / "out.mp4")
    assert "rotation of 90.00 degrees" in header and "64x48 [SAR 4:3" in header


def test_inpaint_video_with_one_mask_per_frame(tmp_path, capsys, models):
    clip = make_clip(tmp_path / "clip.mkv", frames=3, size=(32, 24), rate=3, video=LOSSLESS,
                     audio=False)
    masks = tmp_path / "masks"
    for index in range(3):  # numbered from 1, as ffmpeg numbers extracted frames
        holes = np.zeros((24, 32), np.uint8)
        holes[4 + 4 * index: 10 + 4 * index, 6:20] = 255
        save_png(masks / f"frame_{index + 1:06d}.png", holes)
    out = tmp_path / "out.mkv"
    ran = run_cli(capsys, "inpaint", str(clip), str(out), "-w", str(models["inpaint"]),
                  "--mask", str(masks), "--video-codec", "ffv1")
    assert ran.code == 0, ran.stderr
    frames = read_frames(out, (32, 24))
    frame = extract_frame(clip, 2, tmp_path / "frame.png")
    ran = run_cli(capsys, "inpaint", str(frame), str(tmp_path / "one.png"),
                  "-w", str(models["inpaint"]), "--mask", str(masks / "frame_000003.png"))
    assert ran.code == 0, ran.stderr
    np.testing.assert_array_equal(frames[2], read_image(tmp_path / "one.png").rgb)
    source = read_frames(clip, (32, 24))
    np.testing.assert_array_equal(frames[0][:4], source[0][:4])  # outside the holes: kept

    (masks / "frame_000002.png").unlink()
    ran = run_cli(capsys, "inpaint", str(clip), str(tmp_path / "again.mkv"),
                  "-w", str(models["inpaint"]), "--mask", str(masks))
    assert ran.code == 1
    assert "1 of 3 frames have no mask" in ran.stderr and "number 2" in ran.stderr


def test_animated_gif_is_a_video_only_when_asked(tmp_path, capsys, models):
    gif = make_clip(tmp_path / "anim.gif", frames=3, size=(32, 24), rate=5, video=(),
                    audio=False)
    ran = run_cli(capsys, "sr", str(gif), str(tmp_path / "out"), "-w", str(models["sr2"]),
                  "--animated")
    assert ran.code == 0, ran.stderr
    assert read_frames(tmp_path / "out" / "anim.mp4", (64, 48)).shape[0] == 3
    ran = run_cli(capsys, "sr", str(gif), str(tmp_path / "still"), "-w", str(models["sr2"]))
    assert ran.code == 0, ran.stderr
    assert read_image(tmp_path / "still" / "anim.png").rgb.shape == (48, 64, 3)


def test_inpaint_video_with_one_mask_for_every_frame(tmp_path, capsys, models):
    clip = make_clip(tmp_path / "clip.mkv", frames=2, size=(32, 24), rate=2, video=LOSSLESS,
                     audio=False)
    holes = np.zeros((24, 32), np.uint8)
    holes[8:16, 8:24] = 255
    mask = save_png(tmp_path / "mask.png", holes)
    ran = run_cli(capsys, "inpaint", str(clip), str(tmp_path / "out.mkv"),
                  "-w", str(models["inpaint"]), "--mask", str(mask), "--video-codec", "ffv1")
    assert ran.code == 0, ran.stderr
    source, result = read_frames(clip, (32, 24)), read_frames(tmp_path / "out.mkv", (32, 24))
    keep = holes == 0
    np.testing.assert_array_equal(result[:, keep], source[:, keep])
    assert (result[:, ~keep] != source[:, ~keep]).any()


def test_variable_frame_rate_is_resampled_with_a_warning(tmp_path, capsys, models):
    clip = make_clip(tmp_path / "vfr.mkv", frames=6, size=(32, 24), rate=6, video=(
        "-vf", "setpts='if(lt(N,3),N,N+3)/6/TB'", "-fps_mode", "passthrough", *LOSSLESS),
        audio=False)
    ran = run_cli(capsys, "sr", str(clip), str(tmp_path / "out.mp4"), "-w", str(models["sr2"]))
    assert ran.code == 0, ran.stderr
    assert "variable frame rate" in ran.stderr
    frames = read_frames(tmp_path / "out.mp4", (64, 48)).shape[0]
    base, found = packets(tmp_path / "out.mp4", "v")
    assert len({entry[0] for entry in found}) == 1  # constant frame durations
    frame = found[0][0] * base
    assert abs(frames * frame - Fraction(9, 6)) <= frame  # the source spans 9 sixths
