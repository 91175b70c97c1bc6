"""Official .pth and our safetensors: strict, safe, self-describing."""

from __future__ import annotations

import os
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
from process_helpers import run_adacode, torch_blocked


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
    env = torch_blocked(tmp_path / "blocker")  # the header tells: torch is not even imported
    for args in (("info", str(bad)), ("convert", str(bad), str(tmp_path / "o.safetensors"))):
        done = run_adacode(*args, env=env)
        assert done.returncode == 2
        assert "Traceback" not in done.stderr
        assert done.stderr.strip().count("\n") == 0 and "bad.pth" in done.stderr
    assert not list(tmp_path.glob("*.safetensors")) and not list(tmp_path.glob(".adacode-tmp-*"))


def test_cli_verbose_shows_traceback(tmp_path) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"junk")
    done = run_adacode("-v", "info", str(bad))
    assert done.returncode == 2 and "Traceback" in done.stderr


class _Code:
    def __reduce__(self):  # pragma: no cover - never executed by a safe loader
        return (os.system, ("echo owned",))


def _bad_weights(kind: str, folder: Path, make_official_pth) -> Path:
    """One member of each class of weights file we must refuse with one named line."""
    path = folder / f"w-{kind}.pth"
    if kind == "folder":
        path = folder / "w.safetensors"
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "io-error":  # a file every read of which fails, even for root
        path.symlink_to("/proc/self/mem")
    elif kind == "legacy-code":  # the non-zip format: torch warns before refusing it
        torch.save({"params": _Code()}, path, _use_new_zipfile_serialization=False)
    elif kind == "protocol-4-code":
        path.write_bytes(pickle.dumps({"params": _Code()}, protocol=4))
    elif kind == "garbage":
        path.write_bytes(bytes(range(256)) * 10)
    elif kind == "foreign":
        torch.save({"params": {"conv0.weight": torch.zeros(8, 3, 3, 3)}}, path)
    elif kind == "one-dimensional":
        state = torch.load(make_official_pth("sr", 4), weights_only=True)["params"]
        state["multiscale_encoder.in_conv.weight"] = torch.zeros(7)
        torch.save({"params": state}, path)
    elif kind == "misshaped-safetensors":
        from safetensors.torch import save_file

        path = folder / "w.safetensors"
        state = torch.load(make_official_pth("sr", 4), weights_only=True)["params"]
        state["out_conv.weight"] = torch.zeros(3, 32, 5, 5)
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


BAD_KINDS = ["folder", "fifo", "io-error", "legacy-code", "protocol-4-code", "garbage", "foreign",
             "one-dimensional", "misshaped-safetensors"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_weights_files_are_one_named_line(make_official_pth, tmp_path, kind) -> None:
    bad = _bad_weights(kind, tmp_path, make_official_pth)
    commands = [("info", str(bad))]
    if kind in ("garbage", "misshaped-safetensors"):  # convert reads through the same code
        commands.append(("convert", str(bad), str(tmp_path / "o.safetensors")))
    for args in commands:
        done = run_adacode(*args, timeout=60)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
        assert str(bad) in done.stderr
    assert not (tmp_path / "o.safetensors").exists()


@pytest.mark.parametrize("kind", ["folder", "io-error", "misshaped-safetensors"])
def test_bad_weights_option_is_one_named_line(make_official_pth, tmp_path, kind) -> None:
    from PIL import Image

    bad = _bad_weights(kind, tmp_path, make_official_pth)
    image = tmp_path / "in.png"
    Image.new("RGB", (8, 8)).save(image)
    done = run_adacode("sr", str(image), str(tmp_path / "out.png"), "--weights", str(bad),
                       timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert str(bad) in done.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_weights_file_without_read_permission_is_one_line(make_official_pth) -> None:
    pth = make_official_pth("sr", 4)
    pth.chmod(0)
    done = run_adacode("info", str(pth))
    assert done.returncode == 2 and "Permission denied" in done.stderr
    assert done.stderr.count("\n") == 1


def test_a_model_for_another_task_is_refused_in_plain_words(make_official_pth, tmp_path) -> None:
    from PIL import Image

    inpaint = make_official_pth("inpaint", 1)
    image = tmp_path / "in.png"
    Image.new("RGB", (8, 8)).save(image)
    done = run_adacode("sr", str(image), str(tmp_path / "o.png"), "--scale", "2",
                       "--weights", str(inpaint))
    assert done.returncode == 2
    assert (f"{inpaint} holds an inpainting model, but `adacode sr` needs a "
            f"super-resolution x2 model") in done.stderr


def test_one_strict_check_serves_every_loader() -> None:
    from adacode_cli.model.checkpoint import check_state
    from adacode_cli.train import state_files

    expected = {"a": torch.zeros(2), "b": torch.zeros(3)}
    with pytest.raises(CheckpointError, match=r"^f\.pth: missing tensor 'b' \(1 missing"):
        check_state({"a": torch.zeros(2)}, expected, source="f.pth")
    with pytest.raises(CheckpointError, match=r"unexpected tensor 'c'"):
        check_state({**expected, "c": torch.zeros(1)}, expected)
    check_state({**expected, "head.w": torch.zeros(1)}, expected, allowed_extra=["head."])
    with pytest.raises(CheckpointError, match=r"^g\.pth: tensor 'b' has shape \(4,\)"):
        state_files.check_fits(Path("g.pth"), {"a": torch.zeros(2), "b": torch.zeros(4)},
                               expected)
