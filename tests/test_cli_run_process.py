"""A restoration run as a process: Ctrl-C in every long phase, usage errors without torch,
stale temporary files of killed runs.

The Ctrl-C tests mark each phase on stderr through a `sitecustomize` module that wraps public
entry points (`Restorer.from_file`, `Restorer.restore`, `Reporter.tiles`) without changing what
they do; the model load is made long by loading the tiny model many times, the other phases by
a short wait in every convolution.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from adacode_cli.atomic import TEMP_PREFIX, remove_stale_temporaries
from cli_restore_helpers import leftovers, noise, save_png, save_tiny_model
from process_helpers import run_adacode, torch_blocked

PHASE_MARKERS = '''
import os, sys
if os.environ.get("ADACODE_TEST_PHASES"):
    from adacode_cli.cli.report import Reporter
    from adacode_cli.engine.restorer import Restorer
    real_from_file, real_restore, real_tiles = (
        Restorer.from_file.__func__, Restorer.restore, Reporter.tiles)
    def say(text):
        print(text, file=sys.stderr, flush=True)
    def from_file(cls, *args, **kwargs):
        say("PHASE load")
        for _ in range(int(os.environ["ADACODE_TEST_LOADS"])):
            real_from_file(cls, *args, **kwargs)
        return real_from_file(cls, *args, **kwargs)
    def restore(self, *args, **kwargs):
        say("PHASE restore")
        return real_restore(self, *args, **kwargs)
    def tiles(self, done, total):
        if done == 1:
            say("PHASE tiles")
        return real_tiles(self, done, total)
    Restorer.from_file = classmethod(from_file)
    Restorer.restore, Reporter.tiles = restore, tiles
    delay = float(os.environ.get("ADACODE_TEST_CONV_DELAY", "0"))
    if delay:  # a tiny model is fast: every convolution waits a little, so each phase is long
        import time, torch
        real_conv = torch.nn.Conv2d.forward
        def conv(self, x):
            time.sleep(delay)
            return real_conv(self, x)
        torch.nn.Conv2d.forward = conv
'''
SECONDS_TO_STOP = 8.0  # on a loaded 2-core CI machine; about 1-2 s when idle, exit included


@pytest.fixture(scope="module")
def sr_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("model") / "model.safetensors", "sr", 2)


def interrupt_at(marker: str, args: list[str], cwd: Path, loads: int = 0) -> tuple[int, float,
                                                                                     str, str]:
    """Run adacode, send SIGINT 0.5 s after `marker` appears on stderr; (exit code, seconds from
    the signal to the exit, stdout, stderr)."""
    shim = cwd / "shim"
    shim.mkdir(exist_ok=True)
    (shim / "sitecustomize.py").write_text(PHASE_MARKERS)
    env = {**os.environ, "ADACODE_TEST_PHASES": "1", "ADACODE_TEST_LOADS": str(loads),
           "ADACODE_TEST_CONV_DELAY": "0" if loads else "0.02",
           "PYTHONPATH": os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")]),
           "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "adacode_cli", *args], cwd=cwd, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if line.startswith(marker):
            break
    else:
        process.wait()
        pytest.fail(f"{marker} never came: {''.join(seen)}")
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    sent = time.perf_counter()
    out, err = process.communicate(timeout=120)
    return process.returncode, time.perf_counter() - sent, out, "".join(seen) + err


@pytest.mark.parametrize(("phase", "marker", "image_side", "options", "loads"), [
    ("model load", "PHASE load", 16, ["--tile", "0"], 10_000),
    ("whole-image run", "PHASE restore", 128, ["--tile", "0"], 0),
    ("statistics pass", "PHASE restore", 96, ["--tile", "32", "--batch-size", "1"], 0),
    ("tiled run", "PHASE tiles", 96, ["--tile", "32", "--batch-size", "1"], 0),
])
def test_ctrl_c_stops_every_phase_within_seconds(tmp_path, sr_model, phase, marker, image_side,
                                                 options, loads):
    save_png(tmp_path / "in" / "a.png", noise((image_side, image_side, 3)))

    code, seconds, out, err = interrupt_at(
        marker, ["sr", "in", "out", "-w", str(sr_model), *options], tmp_path, loads)

    assert code == 130, err
    assert seconds < SECONDS_TO_STOP, f"{phase}: {seconds:.1f} s"
    assert "Traceback" not in err
    if phase == "model load":
        assert err.rstrip().endswith("interrupted") and out == ""
    else:
        assert "interrupted, nothing written" in out and "summary:" in out
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    assert leftovers(tmp_path) == []


def test_usage_errors_are_reported_without_importing_torch(tmp_path, sr_model):
    env = torch_blocked(tmp_path / "blocker")
    image = save_png(tmp_path / "in" / "a.png", noise((8, 8, 3)))
    save_png(tmp_path / "in" / "a-weights.png", noise((8, 8, 3)))
    (tmp_path / "notes.txt").write_text("a file")
    (tmp_path / "masks").mkdir()
    save_png(tmp_path / "small.png", np.full((4, 4, 3), 255, np.uint8))
    weights = ["-w", str(sr_model)]
    cases = {
        ("sr", "nosuch.png"): "nosuch.png: no such file or folder",
        ("sr", str(image), "--weights", "nosuch"): "unknown weights 'nosuch'",
        ("sr", "in", "notes.txt", *weights): "notes.txt: is a file",
        ("sr", str(image), "out.txt", *weights): "out.txt: not an image file name",
        ("sr", "in", "o", "--suffix", "/../x", *weights): "may not contain path separators",
        ("sr", "in", "in", *weights): "would overwrite the input",
        ("sr", "in", "o", "--save-weight-map", *weights): "leave out --save-weight-map",
        ("inpaint", "in", "--mask", "masks", *weights): "no mask named after any input",
        ("inpaint", "in", "--mask", "notes.txt", *weights): "--mask notes.txt: not an image",
        ("inpaint", "in", "--mask", "small.png", *weights):
            "--mask small.png: the mask is 4x4 but no input is",
        ("sr", str(image), "--device", "gpu"): "Invalid value for '--device'",
    }
    for args, message in cases.items():
        started = time.perf_counter()
        ran = run_adacode(*args, env=env, cwd=tmp_path, timeout=60)
        assert ran.returncode == 2, (args, ran.stderr)
        assert message in " ".join(ran.stderr.split()), (args, ran.stderr)
        assert "Traceback" not in ran.stderr
        assert time.perf_counter() - started < 30  # no torch: about 0.3 s on an idle machine
    created = sorted(path.name for path in tmp_path.iterdir())
    assert created == ["blocker", "in", "masks", "notes.txt", "small.png"]


def test_options_that_would_change_nothing_are_refused_without_torch(tmp_path, sr_model):
    env = torch_blocked(tmp_path / "blocker")
    save_png(tmp_path / "in" / "a.png", noise((8, 8, 3)))
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "clip.mp4").write_bytes(b"planned by its name, never read")
    image_options = {
        ("--save-weight-map",): None,
        ("--crf", "20"): "--crf applies to videos, but no input is a video",
        ("--video-codec", "ffv1"): "--video-codec applies to videos, but no input is a video",
        ("--no-resume",): "--no-resume applies to videos, but no input is a video",
        ("--ext", "mkv"): "--ext mkv applies to videos, but no input is a video",
        ("--quality", "80"): "--quality sets the JPEG/WebP quality, but no result",
        ("--recursive",): "--recursive descends into folders, but in/a.png is a file",
        ("--tile", "0", "--tile-overlap", "8"): "--tile-overlap applies to tiles, but --tile 0",
        ("--tile", "0", "--statistics", "tile"): "--statistics tile applies to tiles, but",
    }
    video_options = {
        ("--save-weight-map",): "clips/clip.mp4: a video gets no weight map",
        ("--ext", "png"): "--ext png applies to images, but every input is a video",
        ("--quality", "80"): "--quality sets the JPEG/WebP quality, but no result",
        ("--ext", "mkv", "--video-codec", "ffv1", "--crf", "10"): "ffv1 is lossless",
    }
    cases = {("in/a.png", "o", *options): message for options, message in image_options.items()}
    cases |= {("clips", "o", *options): message for options, message in video_options.items()}
    cases[("in/a.png", "o.png", "--suffix", "_x")] = "--suffix '_x' is added to names made in"
    for args, message in cases.items():
        ran = run_adacode("sr", *args, "-w", str(sr_model), env=env, cwd=tmp_path, timeout=60)
        if message is None:  # applies: the run goes on to load the model (torch: refused)
            assert ran.returncode == 1 and "torch must not be imported" in ran.stderr
            continue
        assert ran.returncode == 2, (args, ran.stderr)
        assert ran.stderr.count("\n") == 1 and message in ran.stderr, (args, ran.stderr)
        assert ran.stderr.rstrip().endswith("leave it out") or "weight map" in message
    vqgan = save_tiny_model(tmp_path / "vqgan.safetensors", "vqgan", 1)  # one codebook
    ran = run_adacode("recon", "in/a.png", "o", "--save-weight-map", "-w", str(vqgan), env=env,
                      cwd=tmp_path, timeout=60)
    assert ran.returncode == 2 and "--save-weight-map would write nothing" in ran.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["blocker", "clips", "in",
                                                                "vqgan.safetensors"]


def broken_weights(folder: Path, sound: Path) -> dict[str, str]:
    """Files that are no weights files, named .safetensors: name -> the start of the verdict."""
    length = struct.Struct("<Q")
    data = sound.read_bytes()
    files = {
        "empty": (b"", "empty file, not a weights file"),
        "text": (b"not weights\n", "truncated or not a weights file"),
        "short": (data[:5], "truncated or not a weights file"),
        "bad-json": (length.pack(10) + b"{not json}", "truncated or not a safetensors file"),
        "long-header": (length.pack(10**9) + b'{"a": 1}', "truncated or not a safetensors file"),
        "cut-data": (data[:-100], "truncated or not a safetensors file"),
        "no-network": (length.pack(2) + b"{}", "not an AdaCode network"),
    }
    for name, (content, _) in files.items():
        (folder / f"{name}.safetensors").write_bytes(content)
    (folder / "folder.safetensors").mkdir()
    return {"folder": "is a folder, not a weights file",
            **{name: verdict for name, (_, verdict) in files.items()}}


def test_weights_errors_are_reported_without_importing_torch(tmp_path, sr_model,
                                                             make_official_pth):
    import torch
    from safetensors.torch import save_file

    env = torch_blocked(tmp_path / "blocker")
    image = save_png(tmp_path / "a.png", noise((8, 8, 3)))
    official = make_official_pth("sr", 4)  # zip format, as torch.save writes today
    legacy = tmp_path / "legacy-inpaint.pth"
    torch.save(torch.load(make_official_pth("inpaint", 1), weights_only=True), legacy,
               _use_new_zipfile_serialization=False)
    foreign = tmp_path / "foreign.safetensors"  # another tool's file: no config in its metadata
    save_file(torch.load(official, weights_only=True)["params"], foreign)
    unfit = {
        ("sr", "--scale", "2", "-w", str(official)):
            "holds a super-resolution x4 model, but `adacode sr` needs a super-resolution x2",
        ("sr", "--scale", "2", "-w", str(foreign)): "holds a super-resolution x4 model",
        ("sr", "-w", str(legacy)): "holds an inpainting model, but `adacode sr` needs a super",
        ("inpaint", "--mask", str(image), "-w", str(sr_model)):
            "holds a super-resolution x2 model, but `adacode inpaint` needs an inpainting model",
        ("recon", "-w", str(sr_model)): "needs a stage-2 reconstruction model",
    }
    broken = {("sr", "-w", f"{name}.safetensors"): f"{name}.safetensors: {verdict}"
              for name, verdict in broken_weights(tmp_path, sr_model).items()}
    for (command, *options), message in {**unfit, **broken}.items():
        ran = run_adacode(command, str(image), *options, env=env, cwd=tmp_path, timeout=60)
        assert ran.returncode == 2, (options, ran.stderr)
        assert ran.stderr.count("\n") == 1 and message in ran.stderr, (options, ran.stderr)
    assert not list(tmp_path.glob("adacode-*"))


def test_recon_into_its_own_folder_with_a_suffix(tmp_path):
    model = save_tiny_model(tmp_path / "recon.safetensors", "recon", 1)
    save_png(tmp_path / "same" / "a.png", noise((8, 8, 3)))

    first = run_adacode("recon", "same", "same", "--suffix", "_r", "-w", str(model), cwd=tmp_path)
    again = run_adacode("recon", "same", "same", "--suffix", "_r", "-w", str(model), cwd=tmp_path)

    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in (tmp_path / "same").iterdir()) == ["a.png", "a_r.png"]
    assert again.returncode == 0 and "1 skipped" in again.stdout  # a_r.png is not an input


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    ours = tmp_path / f"{TEMP_PREFIX}x-1-abc.png"  # our own process: still running
    ours.write_bytes(b"live")
    from adacode_cli.atomic import _HOST

    stale = tmp_path / f"{TEMP_PREFIX}{_HOST}-{dead.stdout.strip()}-abcdefgh.png"
    live = tmp_path / f"{TEMP_PREFIX}{_HOST}-{os.getpid()}-abcdefgh.png"
    other_host = tmp_path / f"{TEMP_PREFIX}elsewhere-{dead.stdout.strip()}-abcdefgh.png"
    for path in (stale, live, other_host):
        path.write_bytes(b"partial")

    assert remove_stale_temporaries(tmp_path) == [stale]
    assert live.exists() and other_host.exists() and ours.exists()


def test_a_killed_run_leaves_a_temporary_that_the_next_run_removes(tmp_path, sr_model):
    save_png(tmp_path / "in" / "a.png", noise((8, 8, 3)))
    script = (
        "import os, signal, sys\n"
        "from adacode_cli.atomic import atomic_path\n"
        "with atomic_path(sys.argv[1]) as temp:\n"
        "    temp.write_bytes(b'half an image')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "out" / "a.png")], check=False)
    assert len(leftovers(tmp_path / "out")) == 1

    ran = run_adacode("sr", "in", "out", "-w", str(sr_model), cwd=tmp_path)

    assert ran.returncode == 0, ran.stderr
    assert leftovers(tmp_path) == [] and (tmp_path / "out" / "a.png").is_file()
