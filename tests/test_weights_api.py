"""resolve_weights: what restoration commands call for `--weights NAME|PATH`."""

from __future__ import annotations

from pathlib import Path

import pytest

from adacode_cli.errors import WeightsError
from adacode_cli.weights.api import resolve_weights
from weights_helpers import SR_FILE, FixtureServer

pytest_plugins = ["weights_fixtures"]


def test_no_spec_picks_the_task_default(weights_env: Path, weights_server: FixtureServer) -> None:
    path = resolve_weights("", task="sr", scale=4, quiet=True)
    assert path == weights_env / "weights" / "tiny-sr.safetensors" and path.is_file()
    assert resolve_weights(None, task="sr", scale=4) == path
    assert len(weights_server.gets(SR_FILE)) == 1


def test_no_default_without_a_scale_lists_the_names(weights_env: Path) -> None:
    with pytest.raises(WeightsError, match="tiny-sr, tiny-sr2"):
        resolve_weights(None, task="sr")
    with pytest.raises(WeightsError, match="no single default"):
        resolve_weights(None, task="inpaint")


def test_registry_name_must_fit_the_task(weights_env: Path) -> None:
    assert resolve_weights("tiny-sr", task="sr", scale=4, quiet=True).is_file()
    with pytest.raises(WeightsError, match="do not fit sr x2"):
        resolve_weights("tiny-sr", task="sr", scale=2)
    with pytest.raises(WeightsError, match=r"\(a loss network\) do not fit sr x4.*needs a "
                       r"super-resolution x4 model"):
        resolve_weights("loss-a", task="sr", scale=4)
    with pytest.raises(WeightsError, match=r"'disc' \(a discriminator\) do not fit recon: "
                       r"`adacode recon` needs a stage-2 reconstruction model"):
        resolve_weights("disc", task="recon")
    assert resolve_weights("loss-a", quiet=True).name == "loss-a.safetensors"  # no task: any


def test_a_second_model_does_not_change_the_default(
    weights_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from weights_helpers import default_entries, entry, write_registry

    extra = entry("tiny-sr-alt", "adacode", "alt.pth", task="sr", scale=4)
    registry = write_registry(tmp_path / "more.json", [*default_entries(), extra])
    monkeypatch.setenv("ADACODE_REGISTRY", str(registry))
    assert resolve_weights(None, task="sr", scale=4, quiet=True).name == "tiny-sr.safetensors"


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_existing_weights_file_is_returned_as_is(
    weights_env: Path, weights_server: FixtureServer, tmp_path: Path, suffix: str
) -> None:
    own = tmp_path / f"mine{suffix}"
    own.write_bytes(b"the caller loads it")
    assert resolve_weights(str(own), task="sr", scale=4) == own
    assert not weights_server.requests


@pytest.mark.parametrize("spec", ["no-such-model", "missing.safetensors", "notes.txt"])
def test_anything_else_lists_the_valid_names(
    weights_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not weights")
    with pytest.raises(WeightsError, match=r"tiny-sr, tiny-sr2\) nor an existing"):
        resolve_weights(spec, task="sr", scale=4)
