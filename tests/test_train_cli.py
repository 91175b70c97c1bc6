"""`adacode train stageN --help`: every stage offers the common flags, each with its help."""

from __future__ import annotations

import pytest

from process_helpers import run_adacode, torch_blocked

WIDE = {"COLUMNS": "200"}  # one line per option, so each help text reads whole
COMMON = {
    "--output": "Run folder (created; --resume continues it).",
    "--config": "TOML config (see `adacode train config STAGE`).",
    "--preset": "official (the paper's recipe) | tiny (CPU-sized).",
    "--iters": "Total iterations.",
    "--batch-size": "Images per batch per process.",
    "--seed": "Seed of initialisation, data order and degradations.",
    "--val": "Held-out HQ images validated every val.every iterations.",
    "--resume": "Continue the run in --output from its checkpoint.",
    "--no-perceptual": "Train without the LPIPS loss.",
    "--no-gan": "Train without the GAN loss / discriminator.",
    "--device": "auto | cpu | cuda | cuda:N | mps.",
    "--precision": "fp32 | bf16 | fp16 (autocast).",
    "--workers": "DataLoader workers per process.",
    "--offline": "Never download weights (also ADACODE_OFFLINE=1).",
    "--set": "Override any key: --set optim.lr_g=2e-4 (repeatable).",
}
OWN = {
    "stage1": ("--data", "--category", "--no-semantic"),
    "stage2": ("--data", "--codebooks"),
    "stage3": ("--task", "--scale", "--data", "--lq", "--init", "--init-d", "--val-lq"),
}


def option_lines(stage: str) -> dict[str, str]:
    """Option name -> its help line, from the real `--help` output."""
    result = run_adacode("train", stage, "--help", env=WIDE)
    assert result.returncode == 0, result.stderr
    lines = {}
    for line in result.stdout.splitlines():
        words = line.strip("│ *").split()
        if words and words[0].startswith("--"):
            lines[words[0]] = line
    return lines


@pytest.mark.parametrize("stage", sorted(OWN))
def test_each_stage_lists_the_common_options_and_its_own(stage: str) -> None:
    lines = option_lines(stage)
    for name, text in COMMON.items():
        assert text in lines[name], name
    assert set(lines) == {*COMMON, *OWN[stage], "--help"}


@pytest.mark.parametrize("stage", ["stage2", "stage3"])
def test_no_semantic_is_refused_where_there_is_no_semantic_loss(stage: str, tmp_path) -> None:
    result = run_adacode("train", stage, "--output", str(tmp_path / "run"), "--no-semantic")
    assert result.returncode == 2
    assert "No such option: --no-semantic" in result.stderr
    assert not (tmp_path / "run").exists()


def test_config_mistakes_are_one_line_before_torch(tmp_path) -> None:
    env = torch_blocked(tmp_path / "blocker")
    files = {"broken": "[train\n", "bad-value": '[train]\niters = "x"\n',
             "unknown-key": "[train]\nnosuch = 1\n", "unknown-section": "[nosect]\na = 1\n"}
    for name, text in files.items():
        (tmp_path / f"{name}.toml").write_text(text)
    base = ("train", "stage1", "--output", str(tmp_path / "run"), "--data", str(tmp_path))
    cases = {
        ("--preset", "huge"): "unknown preset 'huge'",
        ("--config", str(tmp_path / "absent.toml")): "absent.toml: cannot read",
        ("--config", str(tmp_path / "broken.toml")): "broken.toml: invalid TOML",
        ("--config", str(tmp_path / "bad-value.toml")): "train.iters: 'x' is not a valid int",
        ("--config", str(tmp_path / "unknown-key.toml")): "'train.nosuch' is not a stage-1",
        ("--config", str(tmp_path / "unknown-section.toml")): "unknown config key 'nosect.a'",
        ("--set", "train.iters=abc"): "train.iters: 'abc' is not a valid int",
        ("--device", "gpu"): "train.device must be auto, cpu, cuda, cuda:N or mps, not 'gpu'",
        ("--precision", "fp64"): "train.precision must be one of fp32, bf16, fp16",
        ("--iters", "-5"): "train.iters must be positive",
    }
    for options, message in cases.items():
        result = run_adacode(*base, *options, env=env)
        assert result.returncode == 2, (options, result.stderr)
        assert result.stderr.count("\n") == 1 and message in result.stderr, (options, result.stderr)
    shown = run_adacode("train", "config", "stage3", "--preset", "tiny", env=env)
    assert shown.returncode == 0 and "[loss]" in shown.stdout, shown.stderr
    assert not (tmp_path / "run").exists()


def test_path_mistakes_are_one_line_before_torch(tmp_path, models) -> None:
    env = torch_blocked(tmp_path / "blocker")
    (tmp_path / "data").mkdir()
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "notes.pth").write_text("not weights")
    run, data, nowhere = str(tmp_path / "run"), str(tmp_path / "data"), str(tmp_path / "nowhere")
    stage3 = ("stage3", "--output", run, "--data", data)
    recon = ("--init", str(models["recon"]))
    cases = {
        ("stage1", "--output", run): "no training images: pass --data DIR",
        ("stage1", "--output", run, "--data", nowhere): f"--data {nowhere}: no such folder",
        ("stage1", "--output", run, "--data", str(tmp_path / "a-file")): "is a file, not a folder",
        ("stage1", "--output", run, "--data", data, "--val", nowhere): "no such folder",
        ("stage1", "--output", str(tmp_path / "a-file"), "--data", data):
            "a-file: is a file, but a run is a folder",
        ("stage2", "--output", run, "--data", data): "stage 2 needs the stage-1 codebooks",
        ("stage2", "--output", run, "--data", data, "--codebooks", nowhere):
            "no such run folder or weights file",
        ("stage2", "--output", run, "--data", data, "--codebooks", str(tmp_path / "notes.pth")):
            "notes.pth: truncated or not a weights file",
        stage3: "stage 3 starts from a stage-2 network",
        (*stage3, "--init", "nosuch"): "--init nosuch: no such run, weights file or registry",
        (*stage3, "--init", str(models["sr2"])): "is a sr network; stage 3 needs a stage-2",
        (*stage3, *recon, "--lq", nowhere): f"--lq {nowhere}: no such folder",
        (*stage3, *recon, "--init-d", str(tmp_path / "notes.pth")): "not a weights file",
    }
    for args, message in cases.items():
        result = run_adacode("train", *args, "--preset", "tiny", env=env)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and message in result.stderr, (args, result.stderr)
    assert not (tmp_path / "run").exists()


def test_export_mistakes_are_one_line_before_torch(tmp_path) -> None:
    env = torch_blocked(tmp_path / "blocker")
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "a-file").write_text("not a run")
    out = str(tmp_path / "out.safetensors")
    cases = {
        (str(tmp_path / "nowhere"), out): "nowhere: no such folder",
        (str(tmp_path / "a-file"), out): "a-file: is a file, not a folder",
        (str(run), str(tmp_path / "out.txt")): "out.txt: name the output *.safetensors",
        (str(run), out, "--official-keys"): "out.safetensors: name the output *.pth",
        (str(run), out, "--checkpoint", "first"): "unknown checkpoint 'first'",
    }
    for args, message in cases.items():
        result = run_adacode("train", "export", *args, env=env)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and message in result.stderr, (args, result.stderr)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file", "blocker", "run"]
