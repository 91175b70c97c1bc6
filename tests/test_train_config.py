"""Training configs: the official recipe, the printed TOML, --config files and --set overrides."""

from __future__ import annotations

import sys

import pytest

from adacode_cli.train.config import (
    ConfigError,
    apply_overrides,
    config_from_file,
    preset,
    render_toml,
    validate,
)
from process_helpers import run_adacode


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_official_preset_is_the_papers_recipe(stage: int) -> None:
    config = preset(stage, "official")
    assert config.data.gt_size == 256 and config.data.batch_size == 8
    assert (config.optim.lr_g, config.optim.lr_d) == (1e-4, 4e-4)
    assert config.optim.betas == [0.9, 0.99] and config.optim.gamma == 1.0
    loss = config.loss
    assert (loss.pixel, loss.perceptual, loss.gan, loss.codebook) == (1.0, 1.0, 0.1, 1.0)
    assert config.train.iters == (73500 if stage == 1 else 730000)
    if stage == 1:
        assert loss.semantic == 0.1 and config.network.codebook_size == 512
    if stage == 3:
        assert (loss.before_quant, loss.after_quant, loss.contrast) == (0.0, 1.0, 1.0)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is Python 3.11+")
@pytest.mark.parametrize("stage", [1, 2, 3])
@pytest.mark.parametrize("name", ["official", "tiny"])
def test_printed_toml_reads_back_to_the_same_config(tmp_path, stage: int, name: str) -> None:
    config = preset(stage, name)
    path = tmp_path / "config.toml"
    path.write_text(render_toml(config))
    assert config_from_file(stage, path) == config


def test_config_file_values_and_overrides_apply_in_order(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('preset = "tiny"\n[optim]\nlr_g = 0.002\nmilestones = [10, 20]\n')
    config = config_from_file(1, path)
    assert config.preset == "tiny" and config.data.gt_size == 64
    assert config.optim.lr_g == 0.002 and config.optim.milestones == [10, 20]
    apply_overrides(config, ["optim.lr_g=2e-4", "data.flip=false", "optim.betas=[0.5, 0.9]"])
    assert config.optim.lr_g == 2e-4 and config.data.flip is False
    assert config.optim.betas == [0.5, 0.9]


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("optim.lr=1", r"'optim.lr' is not a stage-1 setting; valid keys of \[optim\]: optim.lr_g"),
        ("loss.contrast=1", "not a stage-1 setting"),
        ("nothing=1", "unknown config key"),
        ("train.iters=many", "not a valid int"),
        ("data.flip=maybe", "not a valid bool"),
        ("optim.lr_g", "expected section.key=value"),
    ],
)
def test_bad_overrides_name_the_problem(assignment: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        apply_overrides(preset(1, "tiny"), [assignment])


def test_validation_refuses_crops_that_do_not_fit_the_latent_windows() -> None:
    config = preset(1, "tiny")
    apply_overrides(config, ["data.gt_size=72"])
    with pytest.raises(ConfigError, match="multiple of 64"):
        validate(config)


def test_config_of_another_stage_is_refused(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(render_toml(preset(3, "tiny")))
    with pytest.raises(ConfigError, match="stage-3 config, not stage 1"):
        config_from_file(1, path)


def test_config_command_prints_a_documented_file() -> None:
    result = run_adacode("train", "config", "stage3", "--preset", "tiny")
    assert result.returncode == 0, result.stderr
    assert "[loss]\n" in result.stdout and "contrast = 1.0" in result.stdout
    assert "# Contrastive loss" in result.stdout
    bad = run_adacode("train", "config", "stage4")
    assert bad.returncode == 2 and "unknown stage" in bad.stderr
