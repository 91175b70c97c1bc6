"""The registry file: the packaged entries, validation of test registries, names and mirrors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adacode_cli.errors import WeightsError
from adacode_cli.weights.registry import download_url, load_registry, validate_name
from weights_helpers import entry, write_registry

RELEASE = "https://github.com/kechunl/AdaCode/releases/download/v0-pretrain_models/"


def test_packaged_registry_lists_the_official_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADACODE_REGISTRY", raising=False)
    registry = load_registry()
    assert registry.names == [
        "sr-x2", "sr-x4", "inpaint", "recon", "recon-d", "vgg19", "vgg16", "lpips-vgg"
    ]
    files = {name: e.file_name for name, e in registry.entries.items()}
    assert files["sr-x2"] == "AdaCode_SR_X2_model_g.pth"
    assert files["recon"] == "AdaCode_S2_model_g.pth"
    assert files["recon-d"] == "AdaCode_S2_model_d.pth"
    for e in registry.entries.values():
        if e.source.startswith("AdaCode"):
            assert e.url == RELEASE + e.file_name
            assert (e.sha256, e.license) == (None, "MIT")
    assert registry.entries["recon-d"].kind == "discriminator"
    for name in ("vgg19", "vgg16"):
        vgg = registry.entries[name]
        assert vgg.kind == "loss-network" and vgg.license == "BSD-3-Clause"
        assert vgg.sha256_prefix and vgg.sha256_prefix in vgg.file_name
        assert vgg.note and "ImageNet" in vgg.note
    assert registry.entries["lpips-vgg"].license == "BSD-2-Clause"


def test_repo_file_and_packaged_file_are_the_same() -> None:
    root = Path(__file__).resolve().parents[1]
    packaged = root / "src" / "adacode_cli" / "weights.json"
    assert json.loads(packaged.read_text()) == json.loads((root / "weights.json").read_text())


@pytest.mark.parametrize("name", ["../etc", "Sr-x4", "a/b", "", "a.b", "-x", "x" * 65, "a b"])
def test_names_are_validated(name: str) -> None:
    with pytest.raises(WeightsError, match="invalid weights name"):
        validate_name(name)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"url": "http://weights.invalid/x.pth"}, "must be https"),
        ({"sha256": "abc"}, "sha256"),
        ({"kind": "other"}, "kind"),
        ({"name": "../x"}, "name"),
        ({"size": -1}, "size"),
        ({"extra": 1}, "unknown fields"),
    ],
)
def test_bad_registry_entries_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: dict, message: str
) -> None:
    bad = {**entry("x", "loss-network", "x.pth"), **change}
    monkeypatch.setenv("ADACODE_REGISTRY", str(write_registry(tmp_path / "r.json", [bad])))
    with pytest.raises(WeightsError, match=message):
        load_registry()


def test_duplicate_names_and_missing_file_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    twice = [entry("x", "loss-network", "x.pth")] * 2
    with pytest.raises(WeightsError, match="duplicate"):
        load_registry(write_registry(tmp_path / "r.json", twice))
    monkeypatch.setenv("ADACODE_REGISTRY", str(tmp_path / "missing.json"))
    with pytest.raises(WeightsError, match="cannot read the weights registry"):
        load_registry()


def test_unknown_name_lists_the_valid_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADACODE_REGISTRY", raising=False)
    with pytest.raises(WeightsError, match="valid names are sr-x2, sr-x4"):
        load_registry().get("sr-x8")


def test_mirror_replaces_the_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADACODE_REGISTRY", raising=False)
    sr = load_registry().get("sr-x4")
    monkeypatch.delenv("ADACODE_MIRROR", raising=False)
    assert download_url(sr) == sr.url
    monkeypatch.setenv("ADACODE_MIRROR", "http://lan.example:8080/adacode/")
    assert download_url(sr) == "http://lan.example:8080/adacode/AdaCode_SR_X4_model_g.pth"
    monkeypatch.setenv("ADACODE_MIRROR", "ftp://lan.example/")
    with pytest.raises(WeightsError, match="ADACODE_MIRROR must be an http"):
        download_url(sr)
