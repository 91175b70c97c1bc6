"""The check before torch loads reads the same network from a file's header as the loader does
from its tensors, and never runs code from a pickle."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from adacode_cli.errors import CheckpointError
from adacode_cli.model.checkpoint import read_checkpoint
from adacode_cli.weights.header import held_config
from cli_restore_helpers import save_tiny_model

TASKS = [("sr", 2), ("sr", 4), ("inpaint", 1), ("recon", 1), ("vqgan", 1)]


@pytest.mark.parametrize(("task", "scale"), TASKS)
def test_every_format_gives_the_loaders_config(tmp_path, make_official_pth, task, scale):
    ours = save_tiny_model(tmp_path / "ours.safetensors", task, scale)
    official = make_official_pth(task, scale)
    legacy = tmp_path / "legacy.pth"
    torch.save(torch.load(official, weights_only=True), legacy,
               _use_new_zipfile_serialization=False)
    foreign = tmp_path / "foreign.safetensors"
    save_file(torch.load(official, weights_only=True)["params"], foreign)
    renamed = tmp_path / "really-safetensors.pth"  # the content decides, as for the loader
    renamed.write_bytes(ours.read_bytes())

    for path in (ours, official, legacy, foreign, renamed):
        held = held_config(path)
        assert held == read_checkpoint(path)[0], path
        assert (held.task, held.scale) == (task, scale)


def _zip_pth(path: Path, pickled: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/version", "3\n")
    return path


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("code ran",))


def test_a_pickle_with_code_is_left_to_the_loader_and_never_run(tmp_path, capsys):
    evil = _zip_pth(tmp_path / "evil.pth", pickle.dumps({"params": {"w": _Evil()}}, protocol=2))
    legacy_evil = tmp_path / "legacy-evil.pth"
    legacy_evil.write_bytes(pickle.dumps({"w": _Evil()}, protocol=2))
    not_tensors = _zip_pth(tmp_path / "numbers.pth", pickle.dumps({"params": {"w": 1}}))

    for path in (evil, legacy_evil, not_tensors):
        assert held_config(path) is None  # torch.load(weights_only=True) gives the verdict
    assert "code ran" not in capsys.readouterr().out


def test_a_pickle_of_tensors_of_another_network_is_named(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"params": {"conv.weight": torch.zeros(2, 3)}}, path)

    with pytest.raises(CheckpointError, match=r"other\.pth: not an AdaCode network"):
        held_config(path)
    with pytest.raises(CheckpointError, match=r"other\.pth: not an AdaCode network"):
        read_checkpoint(path)
