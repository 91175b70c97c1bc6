"""`adacode train stageN --help`: every stage offers the common flags, each with its help."""

from __future__ import annotations

import pytest

from process_helpers import run_adacode

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
