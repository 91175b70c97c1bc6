"""Official .pth and our safetensors: strict, safe, self-describing."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from adacode_cli.errors import CheckpointError
from adacode_cli.model.checkpoint import (
    convert_checkpoint,
    load_network,
    read_checkpoint,
    save_safetensors,
)
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.padding import restore_whole
from process_helpers import run_adacode


def _restore(path: Path, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return restore_whole(load_network(path), x)[0]


@pytest.mark.parametrize(("task", "scale"), [("sr", 2), ("sr", 4), ("inpaint", 1), ("recon", 1)])
def test_convert_keeps_outputs_and_config(make_official_pth, tmp_path, task, scale) -> None:
    pth = make_official_pth(task, scale)
    out = tmp_path / "model.safetensors"
    config = convert_checkpoint(pth, out)
    assert config == AdaCodeConfig.tiny(task, scale)
    assert read_checkpoint(out)[0] == config
    x = torch.rand(1, 3, 19, 26, generator=torch.Generator().manual_seed(1))
    assert torch.equal(_restore(pth, x), _restore(out, x))


def test_stray_keys_and_derived_buffers_are_dropped(make_official_pth, tmp_path) -> None:
    pth = make_official_pth("sr", 4)
    state = torch.load(pth, weights_only=True)["params"]
    state["contrast_cri.negatives_mask"] = torch.ones(16, 16)
    state["sft_fusion_group.0.weight"] = torch.ones(3)
    state["multiscale_encoder.upsampler.0.weight"] = torch.ones(3)
    state["weight_predictor.blocks.0.swin_blks.0.residual_group.blocks.1.attn_mask"] = torch.ones(1)
    torch.save({"params": state}, pth)
    config, clean = read_checkpoint(pth)
    assert config.scale == 4
    assert not any(k.startswith(("contrast_cri", "sft_", "multiscale_encoder.up")) for k in clean)


def test_missing_tensor_is_named(make_official_pth) -> None:
    pth = make_official_pth("sr", 2)
    state = torch.load(pth, weights_only=True)["params"]
    del state["decoder_group.1.block.2.conv.2.weight"]
    torch.save({"params": state}, pth)
    with pytest.raises(CheckpointError, match=r"decoder_group\.1\.block\.2\.conv\.2\.weight"):
        load_network(pth)


def test_misshaped_tensor_is_named(make_official_pth) -> None:
    pth = make_official_pth("inpaint", 1)
    state = torch.load(pth, weights_only=True)["params"]
    state["out_conv.weight"] = torch.zeros(3, 32, 5, 5)
    torch.save({"params": state}, pth)
    with pytest.raises(CheckpointError, match=r"out_conv\.weight.*shape"):
        load_network(pth)


class _Payload:
    def __reduce__(self):  # pragma: no cover - never executed by a safe loader
        return (print, ("owned",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_code_carrying_pickle_is_refused(tmp_path) -> None:
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"params": _Payload()}, handle)
    with pytest.raises(CheckpointError, match="refused"):
        read_checkpoint(path)


def test_truncated_files(make_official_pth, tmp_path) -> None:
    pth = make_official_pth("sr", 4)
    data = pth.read_bytes()
    pth.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        read_checkpoint(pth)
    config = AdaCodeConfig.tiny("sr", 4)
    ours = tmp_path / "ours.safetensors"
    from adacode_cli.model.networks import build_network

    save_safetensors(ours, config, build_network(config).state_dict())
    ours.write_bytes(ours.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="truncated"):
        read_checkpoint(ours)


def test_wrong_architecture(tmp_path) -> None:
    path = tmp_path / "disc.pth"
    torch.save({"params": {"conv0.weight": torch.zeros(64, 3, 3, 3)}}, path)
    with pytest.raises(CheckpointError, match="not an AdaCode network"):
        read_checkpoint(path)


def test_cli_convert_and_info(make_official_pth, tmp_path) -> None:
    pth = make_official_pth("sr", 2)
    out = tmp_path / "m.safetensors"
    done = run_adacode("convert", str(pth), str(out))
    assert done.returncode == 0, done.stderr
    assert out.is_file()
    shown = run_adacode("info", str(out))
    assert shown.returncode == 0
    assert "sr" in shown.stdout and "x2" in shown.stdout and "parameters" in shown.stdout
    as_json = run_adacode("info", str(pth), "--json")
    assert '"scale": 2' in as_json.stdout


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04broken"])
def test_cli_bad_files_exit_2_without_traceback(tmp_path, content) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(content)
    for args in (("info", str(bad)), ("convert", str(bad), str(tmp_path / "o.safetensors"))):
        done = run_adacode(*args)
        assert done.returncode == 2
        assert "Traceback" not in done.stderr
        assert done.stderr.strip().count("\n") == 0 and "bad.pth" in done.stderr
    assert not list(tmp_path.glob("*.safetensors")) and not list(tmp_path.glob(".adacode-tmp-*"))


def test_cli_verbose_shows_traceback(tmp_path) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"junk")
    done = run_adacode("-v", "info", str(bad))
    assert done.returncode == 2 and "Traceback" in done.stderr
