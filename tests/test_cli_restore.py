"""`adacode sr|inpaint|recon` end to end, in this process, with tiny random models on disk."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adacode_cli.cli.tasks import Inpainting
from adacode_cli.images.decode import LoadedImage, read_image
from adacode_cli.images.encode import write_image
from adacode_cli.interrupt import StopRequest
from cli_restore_helpers import leftovers, noise, png_header, run_cli, save_png


def test_sr_keeps_each_images_mode_and_doubles_its_size(tmp_path, capsys, models):
    inputs = tmp_path / "in"
    rgba = noise((12, 10, 4), seed=1)
    rgba[:6, :, 3] = 0  # the top half fully transparent
    save_png(inputs / "rgb.png", noise((12, 10, 3)))
    save_png(inputs / "rgba.png", rgba)
    save_png(inputs / "grey.png", noise((12, 10), seed=2))
    save_png(inputs / "grey16.png", noise((12, 10), np.uint16, seed=3))
    Image.fromarray(noise((12, 10, 3), seed=4)).save(inputs / "photo.jpg", quality=90)

    ran = run_cli(capsys, "sr", str(inputs), str(tmp_path / "out"), "--weights",
                  str(models["sr2"]))

    assert ran.code == 0, ran.stderr
    out = tmp_path / "out"
    assert png_header(out / "rgb.png") == (20, 24, 8, 2)
    assert png_header(out / "rgba.png") == (20, 24, 8, 6)
    assert png_header(out / "grey.png") == (20, 24, 8, 0)
    assert png_header(out / "grey16.png") == (20, 24, 16, 0)
    with Image.open(out / "photo.jpg") as photo:
        assert (photo.format, photo.size, photo.mode) == ("JPEG", (20, 24), "RGB")
    alpha = np.asarray(Image.open(out / "rgba.png"))[..., 3]
    assert (alpha[:6] == 0).all(), "rows far from the edge of the transparent half stay clear"
    assert alpha[14:].any()
    assert "summary: 5 done, 0 skipped, 0 failed" in ran.stdout
    assert leftovers(tmp_path) == []


def test_sixteen_bit_rgb_stays_sixteen_bit(tmp_path, capsys, models):
    source = tmp_path / "deep.png"
    write_image(source, noise((8, 9, 3), np.uint16), bit_depth=16)
    target = tmp_path / "deep-x2.png"

    ran = run_cli(capsys, "sr", str(source), str(target), "--weights", str(models["sr2"]))

    assert ran.code == 0, ran.stderr
    assert png_header(target) == (18, 16, 16, 2)


def test_outscale_resizes_the_network_result(tmp_path, capsys, models):
    source = save_png(tmp_path / "small.png", noise((10, 8, 3)))

    ran = run_cli(capsys, "sr", str(source), str(tmp_path / "out"), "--weights",
                  str(models["sr2"]), "--outscale", "3", "--ext", "webp", "--suffix", "_x3")

    assert ran.code == 0, ran.stderr
    with Image.open(tmp_path / "out" / "small_x3.webp") as result:
        assert (result.format, result.size) == ("WEBP", (24, 30))


def test_default_output_folder_and_weight_map(tmp_path, capsys, models, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_png(tmp_path / "a.png", noise((10, 8, 3)))

    ran = run_cli(capsys, "sr", "a.png", "--weights", str(models["sr2"]), "--save-weight-map")

    assert ran.code == 0, ran.stderr
    assert png_header(tmp_path / "adacode-sr" / "a.png")[:2] == (16, 20)
    weights = np.asarray(Image.open(tmp_path / "adacode-sr" / "a-weights.png"))
    assert weights.shape == (20, 16, 3)
    assert len(np.unique(weights.reshape(-1, 3), axis=0)) > 1, "a map, not a blank picture"


def test_existing_outputs_are_skipped_unless_overwrite(tmp_path, capsys, models):
    source = save_png(tmp_path / "a.png", noise((8, 8, 3)))
    out = tmp_path / "out"
    assert run_cli(capsys, "sr", str(source), str(out), "-w", str(models["sr2"])).code == 0
    (out / "a.png").write_bytes(b"sentinel")

    skipped = run_cli(capsys, "sr", str(source), str(out), "-w", str(models["sr2"]))

    assert skipped.code == 0
    assert "skipped" in skipped.stdout and "--overwrite" in skipped.stdout
    assert (out / "a.png").read_bytes() == b"sentinel"

    replaced = run_cli(capsys, "sr", str(source), str(out), "-w", str(models["sr2"]),
                       "--overwrite")

    assert replaced.code == 0
    assert png_header(out / "a.png")[:2] == (16, 16)


def test_an_input_is_never_overwritten(tmp_path, capsys, models):
    source = save_png(tmp_path / "a.png", noise((8, 8, 3)))
    before = source.read_bytes()

    ran = run_cli(capsys, "sr", str(source), str(tmp_path), "-w", str(models["sr2"]),
                  "--overwrite")

    assert ran.code == 2
    assert "overwrite the input" in ran.stderr
    assert source.read_bytes() == before


def test_json_lines_and_failures_counted(tmp_path, capsys, models):
    inputs = tmp_path / "in"
    save_png(inputs / "good.png", noise((8, 8, 3)))
    (inputs / "broken.png").write_bytes((inputs / "good.png").read_bytes()[:50])

    ran = run_cli(capsys, "sr", str(inputs), str(tmp_path / "out"), "-w", str(models["sr2"]),
                  "--json")

    assert ran.code == 1
    records = [json.loads(line) for line in ran.stdout.splitlines()]
    by_name = {Path(record["input"]).name: record for record in records}
    assert set(by_name) == {"good.png", "broken.png"}
    assert by_name["good.png"]["status"] == "done"
    assert by_name["good.png"]["error"] is None
    assert Path(by_name["good.png"]["output"]).is_file()
    assert by_name["broken.png"]["status"] == "failed"
    assert "broken.png" in by_name["broken.png"]["error"]
    assert all({"input", "output", "status", "seconds", "error"} <= set(r) for r in records)
    assert "failed: " in ran.stderr and "Traceback" not in ran.stderr


def test_quiet_prints_only_failures(tmp_path, capsys, models):
    inputs = tmp_path / "in"
    save_png(inputs / "good.png", noise((8, 8, 3)))
    (inputs / "empty.png").write_bytes(b"")

    ran = run_cli(capsys, "sr", str(inputs), str(tmp_path / "out"), "-w", str(models["sr2"]),
                  "-q")

    assert ran.code == 1
    assert ran.stdout == ""
    assert "empty.png: empty file" in ran.stderr


def test_task_or_scale_mismatch_is_a_setup_error(tmp_path, capsys, models):
    source = save_png(tmp_path / "a.png", noise((8, 8, 3)))

    wrong_task = run_cli(capsys, "sr", str(source), str(tmp_path / "o1"), "-w",
                         str(models["inpaint"]))
    wrong_scale = run_cli(capsys, "sr", str(source), str(tmp_path / "o2"), "-w",
                          str(models["sr2"]), "--scale", "4")

    assert wrong_task.code == 2
    assert "holds an inpainting model, but `adacode sr` needs a super-resolution model" in (
        wrong_task.stderr)
    assert wrong_scale.code == 2
    assert "holds a super-resolution x2 model, but `adacode sr` needs a super-resolution x4 " \
        "model" in wrong_scale.stderr
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_paste_back_keeps_pixels_outside_the_hole_bit_identical(tmp_path, capsys, models):
    image = noise((16, 16, 3), np.uint16)
    write_image(tmp_path / "photo.png", image, bit_depth=16)
    holes = np.zeros((16, 16), dtype=np.uint8)
    holes[5:9, 6:10] = 255
    save_png(tmp_path / "mask.png", holes)

    ran = run_cli(capsys, "inpaint", str(tmp_path / "photo.png"), str(tmp_path / "out"),
                  "--mask", str(tmp_path / "mask.png"), "--dilate", "1",
                  "-w", str(models["inpaint"]))

    assert ran.code == 0, ran.stderr
    result = read_image(tmp_path / "out" / "photo.png")
    assert result.bit_depth == 16
    hole = np.zeros((16, 16), dtype=bool)
    hole[4:10, 5:11] = True  # the mask grown by one pixel
    assert np.array_equal(result.rgb[~hole], image[~hole])
    assert not np.array_equal(result.rgb[hole], image[hole])


def test_no_paste_back_returns_the_network_output(tmp_path, capsys, models):
    image = noise((16, 16, 3))
    save_png(tmp_path / "photo.png", image)
    holes = np.zeros((16, 16), dtype=np.uint8)
    holes[:4, :4] = 255
    save_png(tmp_path / "mask.png", holes)

    ran = run_cli(capsys, "inpaint", str(tmp_path / "photo.png"), str(tmp_path / "out"),
                  "--mask", str(tmp_path / "mask.png"), "--no-paste-back",
                  "-w", str(models["inpaint"]))

    assert ran.code == 0, ran.stderr
    result = np.asarray(Image.open(tmp_path / "out" / "photo.png"))
    assert not np.array_equal(result[8:, 8:], image[8:, 8:])


def test_masks_are_matched_by_stem(tmp_path, capsys, models):
    images = {name: noise((16, 16, 3), seed=seed) for seed, name in enumerate(("a", "b"))}
    for name, pixels in images.items():
        save_png(tmp_path / "in" / f"{name}.png", pixels)
    regions = {"a": (slice(0, 4), slice(0, 4)), "b": (slice(10, 16), slice(8, 16))}
    for name, region in regions.items():
        mask = np.zeros((16, 16), dtype=np.uint8)
        mask[region] = 255
        save_png(tmp_path / "masks" / f"{name}.png", mask)

    ran = run_cli(capsys, "inpaint", str(tmp_path / "in"), str(tmp_path / "out"),
                  "--mask", str(tmp_path / "masks"), "-w", str(models["inpaint"]))

    assert ran.code == 0, ran.stderr
    for name, region in regions.items():
        result = np.asarray(Image.open(tmp_path / "out" / f"{name}.png"))
        changed = (result != images[name]).any(axis=2)
        expected = np.zeros((16, 16), dtype=bool)
        expected[region] = True
        assert changed.any()
        assert not changed[~expected].any(), f"{name}: only its own mask's hole may change"


def test_holes_reach_the_network_pure_white(tmp_path):
    mask = np.zeros((6, 6), dtype=np.uint8)
    mask[2:4, 2:4] = 1
    save_png(tmp_path / "m.png", mask)
    image = LoadedImage(noise((6, 6, 3), np.uint16), None, False, 16, None, None, "PNG")
    task = Inpainting(tmp_path / "m.png", dilate=0, paste_back=True, resize_mask=False)

    network_input = task.prepare(tmp_path / "x.png", image).network_input

    assert (network_input[2:4, 2:4] == 65535).all()
    assert (network_input[:2] != 65535).any()


def test_mask_of_another_size_fails_unless_resized(tmp_path, capsys, models):
    save_png(tmp_path / "photo.png", noise((16, 16, 3)))
    mask = np.zeros((8, 8), dtype=np.uint8)
    mask[:2, :2] = 255
    save_png(tmp_path / "mask.png", mask)
    args = ["inpaint", str(tmp_path / "photo.png"), str(tmp_path / "out"),
            "--mask", str(tmp_path / "mask.png"), "-w", str(models["inpaint"])]

    refused = run_cli(capsys, *args)  # it fits no input: refused before the model loads
    resized = run_cli(capsys, *args, "--resize-mask")
    save_png(tmp_path / "both" / "photo.png", noise((16, 16, 3)))
    save_png(tmp_path / "both" / "thumb.png", noise((8, 8, 3)))
    mixed = run_cli(capsys, "inpaint", str(tmp_path / "both"), str(tmp_path / "mixed"),
                    *args[3:])  # it fits one input: the other fails on its own

    assert refused.code == 2 and "--resize-mask" in refused.stderr
    assert resized.code == 0, resized.stderr
    assert png_header(tmp_path / "out" / "photo.png")[:2] == (16, 16)
    assert mixed.code == 1 and "--resize-mask" in mixed.stderr
    assert sorted(p.name for p in (tmp_path / "mixed").iterdir()) == ["thumb.png"]


def test_recon_prints_the_psnr_of_each_reconstruction(tmp_path, capsys, models):
    image = noise((16, 16, 3))
    save_png(tmp_path / "a.png", image)

    ran = run_cli(capsys, "recon", str(tmp_path / "a.png"), str(tmp_path / "out"),
                  "-w", str(models["recon"]), "--json")

    assert ran.code == 0, ran.stderr
    [record] = [json.loads(line) for line in ran.stdout.splitlines()]
    result = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    weights = np.array([65.481, 128.553, 24.966]) / 255  # the Y of adacode eval, 4 px border
    diff = (result[4:-4, 4:-4].astype(np.float64) - image[4:-4, 4:-4]) @ weights
    assert record["psnr"] == pytest.approx(10 * np.log10(255**2 / np.mean(diff**2)), abs=1e-3)


def test_stop_request_interrupts_without_partial_files(tmp_path, capsys, models, monkeypatch):
    for index in range(3):
        save_png(tmp_path / "in" / f"{index}.png", noise((8, 8, 3), seed=index))
    calls = []

    def stop_after_first_check(self: StopRequest) -> bool:
        calls.append(1)
        return len(calls) > 1

    monkeypatch.setattr(StopRequest, "__call__", stop_after_first_check)

    ran = run_cli(capsys, "sr", str(tmp_path / "in"), str(tmp_path / "out"),
                  "-w", str(models["sr2"]))

    assert ran.code == 130
    assert "summary:" in ran.stdout
    written = sorted((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else []
    assert len(written) < 3
    assert leftovers(tmp_path) == []
    for path in written:
        assert png_header(path)[:2] == (16, 16), "anything written is complete"


def test_nothing_to_restore_is_a_usage_error(tmp_path, capsys, models):
    (tmp_path / "notes.txt").write_text("not an image")

    ran = run_cli(capsys, "sr", str(tmp_path), str(tmp_path / "out"), "-w", str(models["sr2"]))

    assert ran.code == 2
    assert ran.stderr.startswith("error: ") and len(ran.stderr.strip().splitlines()) == 1


def test_bad_scale_is_a_usage_error(tmp_path, capsys, models):
    save_png(tmp_path / "a.png", noise((8, 8, 3)))

    ran = run_cli(capsys, "sr", str(tmp_path / "a.png"), str(tmp_path / "out"), "--scale", "3",
                  "-w", str(models["sr2"]))

    assert ran.code == 2
    assert "--outscale" in ran.stderr


def test_offline_without_cached_weights_is_a_setup_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ADACODE_HOME", str(tmp_path / "home"))
    save_png(tmp_path / "a.png", noise((8, 8, 3)))

    ran = run_cli(capsys, "sr", str(tmp_path / "a.png"), str(tmp_path / "out"), "--offline")

    assert ran.code == 2
    assert "offline" in ran.stderr and "Traceback" not in ran.stderr


def test_results_inside_the_input_folder_are_not_restored_again(tmp_path, capsys, models):
    photos = tmp_path / "photos"
    save_png(photos / "a.png", noise((8, 8, 3)))
    args = ["sr", str(photos), str(photos / "out"), "-w", str(models["sr2"]), "--recursive"]
    assert run_cli(capsys, *args).code == 0

    again = run_cli(capsys, *args, "--overwrite")

    assert again.code == 0, again.stderr
    assert "1 done" in again.stdout
    assert not (photos / "out" / "out").exists()


def test_a_one_pixel_image_works(tmp_path, capsys, models):
    save_png(tmp_path / "dot.png", noise((1, 1, 3)))

    ran = run_cli(capsys, "sr", str(tmp_path / "dot.png"), str(tmp_path / "out"),
                  "-w", str(models["sr2"]))

    assert ran.code == 0, ran.stderr
    assert png_header(tmp_path / "out" / "dot.png") == (2, 2, 8, 2)


def test_verbose_shows_the_traceback_of_a_failure(tmp_path, capsys, models):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")

    ran = run_cli(capsys, "sr", str(tmp_path / "in"), str(tmp_path / "out"),
                  "-w", str(models["sr2"]), "-v")

    assert ran.code == 1
    assert "Traceback" in ran.stderr and "failed: " in ran.stderr


def test_each_image_is_reported_when_its_file_is_written(tmp_path, capsys, models, monkeypatch):
    from adacode_cli.cli.report import Reporter
    from adacode_cli.engine.restorer import Restorer

    for index in range(3):
        save_png(tmp_path / "in" / f"{index}.png", noise((8, 8, 3), seed=index))
    events: list[str] = []
    real_restore, real_finish = Restorer.restore, Reporter.finish_image

    def restore(self, image, **options):
        result = real_restore(self, image, **options)
        # Give the writer of the previous image time to write and report it (a tiny model
        # restores faster than a PNG is written); a report held back until this restore
        # returns never comes, and the order below shows it.
        done = events.count("restored")
        deadline = time.monotonic() + 10
        while done and f"reported {done - 1}.png" not in events and time.monotonic() < deadline:
            time.sleep(0.01)
        events.append("restored")
        return result

    def finish_image(self, outcome, failure=None):
        assert outcome.output is not None and outcome.output.is_file()
        events.append(f"reported {outcome.input.name}")
        return real_finish(self, outcome, failure)

    monkeypatch.setattr(Restorer, "restore", restore)
    monkeypatch.setattr(Reporter, "finish_image", finish_image)

    ran = run_cli(capsys, "sr", str(tmp_path / "in"), str(tmp_path / "out"),
                  "-w", str(models["sr2"]))

    assert ran.code == 0, ran.stderr
    # not one image late: image k is reported before image k+1 has been restored
    assert events.index("reported 0.png") < events.index("restored", 1)
    assert events.index("reported 1.png") < len(events) - 1 - events[::-1].index("restored")
    assert "0.000 output MP/s" not in ran.stdout and "0 output MP/s" not in ran.stdout


def test_unreadable_folder_entries_are_reported_as_skipped(tmp_path, capsys, models):
    folder = tmp_path / "in"
    save_png(folder / "good.png", noise((8, 8, 3)))
    (folder / "dangling.png").symlink_to(folder / "gone.png")
    os.mkfifo(folder / "pipe.png")
    (folder / "dir.png").mkdir()

    ran = run_cli(capsys, "sr", str(folder), str(tmp_path / "out"), "-w", str(models["sr2"]),
                  "--json")

    assert ran.code == 0, ran.stderr
    records = {Path(r["input"]).name: r for r in map(json.loads, ran.stdout.splitlines())}
    assert records["good.png"]["status"] == "done"
    assert records["dangling.png"]["reason"] == "a broken symbolic link"
    assert records["pipe.png"]["reason"] == "a FIFO (named pipe)"
    assert records["dir.png"]["status"] == "skipped"
    assert "1 done, 3 skipped, 0 failed" in ran.stderr


def test_statistics_option_reaches_the_engine(tmp_path, capsys, models):
    """`--statistics tile` normalises each tile by itself (the official behaviour) and so
    differs from the default image-wide statistics on the same tiles; `exact` is the default."""
    source = save_png(tmp_path / "in.png", noise((96, 96, 3), seed=5))
    outputs = {}
    for mode in ("auto", "exact", "tile"):
        target = tmp_path / f"{mode}.png"
        ran = run_cli(capsys, "sr", str(source), str(target), "--weights", str(models["sr2"]),
                      "--tile", "64", "--tile-overlap", "32", "--statistics", mode)
        assert ran.code == 0, ran.stderr
        outputs[mode] = np.asarray(Image.open(target)).astype(int)
    assert np.array_equal(outputs["auto"], outputs["exact"])
    assert np.abs(outputs["tile"] - outputs["exact"]).max() > 2
