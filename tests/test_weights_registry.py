"""The registry file: the packaged entries, validation of test registries, names and mirrors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from adacode_cli.errors import WeightsError
from adacode_cli.weights.registry import download_url, load_registry, validate_name
from weights_helpers import entry, write_registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

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


def test_the_one_registry_is_the_root_file_and_the_wheel_carries_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ADACODE_REGISTRY", raising=False)
    root = Path(__file__).resolve().parents[1]
    assert not (root / "src" / "adacode_cli" / "weights.json").exists()  # no second copy
    raw = json.loads((root / "weights.json").read_text())
    assert load_registry().names == [model["name"] for model in raw["models"]]
    wheel = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    included = wheel["targets"]["wheel"]["force-include"]
    assert included == {"weights.json": "adacode_cli/weights.json"}


def test_defaults_are_explicit_per_task_and_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADACODE_REGISTRY", raising=False)
    registry = load_registry()
    chosen = {(e.task, e.scale): e.name for e in registry.entries.values() if e.default}
    assert chosen == {("sr", 2): "sr-x2", ("sr", 4): "sr-x4", ("inpaint", 1): "inpaint",
                      ("recon", 1): "recon"}


def test_a_second_model_for_a_task_and_scale_keeps_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sr = [entry("sr-a", "adacode", "a.pth", task="sr", scale=4),
          entry("sr-b", "adacode", "b.pth", task="sr", scale=4, default=True),
          entry("sr-c", "adacode", "c.pth", task="sr", scale=4)]
    monkeypatch.setenv("ADACODE_REGISTRY", str(write_registry(tmp_path / "r.json", sr)))
    from adacode_cli.weights.api import _default_name

    assert _default_name(load_registry(), "sr", 4) == "sr-b"
    assert _default_name(load_registry(), "sr", None) == "sr-b"  # the task's only default


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ([entry("a", "adacode", "a.pth", task="sr", scale=4, default=True),
          entry("b", "adacode", "b.pth", task="sr", scale=4, default=True)],
         "'a' and 'b' are both the default for sr x4"),
        ([entry("v", "loss-network", "v.pth", default=True)], "invalid default"),
        ([{**entry("a", "adacode", "a.pth", task="sr", scale=4), "default": "yes"}],
         "invalid default"),
    ],
)
def test_bad_defaults_are_refused(tmp_path: Path, models: list[dict], message: str) -> None:
    with pytest.raises(WeightsError, match=message):
        load_registry(write_registry(tmp_path / "r.json", models))


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


def test_a_model_names_its_discriminator_in_the_registry(tmp_path: Path) -> None:
    """Stage 3 finds the discriminator published with a registry model from its entry (the
    official `recon` names `recon-d`); a name that is not a discriminator entry is refused."""
    assert load_registry().get("recon").discriminator == "recon-d"
    generator = {**entry("g", "adacode", "g.pth", task="recon", scale=1), "discriminator": "d"}
    good = [generator, entry("d", "discriminator", "d.pth", task="recon", scale=1)]
    assert load_registry(write_registry(tmp_path / "good.json", good)).get("g").discriminator == "d"
    for partner in ([], [entry("d", "loss-network", "d.pth")]):
        with pytest.raises(WeightsError, match="'g' names 'd' as its discriminator"):
            load_registry(write_registry(tmp_path / "bad.json", [generator, *partner]))
