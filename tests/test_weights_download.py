"""ensure_weights against a real loopback HTTP server: cache, convert, resume, retry, verify."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from adacode_cli.errors import CheckpointError, WeightsError
from adacode_cli.weights.api import ensure_weights
from adacode_cli.weights.cache import CachePaths, read_record
from weights_helpers import (
    DISC_FILE,
    LOSS_FILE,
    SR_FILE,
    FixtureServer,
    cache_files,
    default_entries,
    disc_bytes,
    entry,
    loss_bytes,
    sha256,
    sr_bytes,
    write_registry,
)

pytest_plugins = ["weights_fixtures"]


def _registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *entries: dict) -> None:
    monkeypatch.setenv("ADACODE_REGISTRY", str(write_registry(tmp_path / "r2.json", [*entries])))


def test_download_converts_and_caches(weights_env: Path, weights_server: FixtureServer) -> None:
    path = ensure_weights("loss-a", quiet=True)
    assert path == weights_env / "weights" / "loss-a.safetensors"
    expected = torch.load(io.BytesIO(loss_bytes()), weights_only=True)
    loaded = load_file(path)
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)
    record = read_record(CachePaths.for_model("loss-a"))
    assert record is not None
    assert record.url == f"{weights_server.url}/{LOSS_FILE}"
    assert record.download_sha256 == sha256(loss_bytes())
    assert record.safetensors_sha256 == sha256(path.read_bytes())
    assert record.checksum == "sha256" and record.tool_version and record.downloaded_at
    assert cache_files(weights_env) == ["loss-a.json", "loss-a.safetensors"]
    assert ensure_weights("loss-a", quiet=True) == path
    assert len(weights_server.gets(LOSS_FILE)) == 1  # the second call read the cache only


def test_adacode_checkpoint_is_converted_by_the_model_core(weights_env: Path) -> None:
    path = ensure_weights("tiny-sr", quiet=True)
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    assert (metadata["format"], metadata["task"], metadata["scale"]) == ("adacode", "sr", "4")
    assert cache_files(weights_env) == ["tiny-sr.json", "tiny-sr.safetensors"]  # .pth deleted
    record = read_record(CachePaths.for_model("tiny-sr"))
    assert record is not None and record.download_sha256 == sha256(sr_bytes())


def test_discriminator_keeps_its_keys(weights_env: Path) -> None:
    loaded = load_file(ensure_weights("disc", quiet=True))
    assert sorted(loaded) == ["conv0.bias", "conv0.weight"]


def test_dropped_connection_resumes_with_range(
    weights_env: Path, weights_server: FixtureServer
) -> None:
    weights_server.drop_after[LOSS_FILE] = 70_000
    ensure_weights("loss-a", quiet=True)
    first, second = weights_server.gets(LOSS_FILE)
    assert "Range" not in first.headers
    start = int(second.headers["Range"].removeprefix("bytes=").removesuffix("-"))
    assert 0 < start <= 70_000  # what reached the disk before the drop
    record = read_record(CachePaths.for_model("loss-a"))
    assert record is not None and record.download_sha256 == sha256(loss_bytes())


def test_partial_file_from_an_earlier_run_is_resumed(
    weights_env: Path, weights_server: FixtureServer
) -> None:
    paths = CachePaths.for_model("loss-a")
    paths.folder.mkdir(parents=True)
    paths.partial.write_bytes(loss_bytes()[:1234])
    ensure_weights("loss-a", quiet=True)
    (only,) = weights_server.gets(LOSS_FILE)
    assert only.headers["Range"] == "bytes=1234-"
    assert cache_files(weights_env) == ["loss-a.json", "loss-a.safetensors"]


def test_server_ignoring_range_restarts_the_file(
    weights_env: Path, weights_server: FixtureServer
) -> None:
    weights_server.ignore_range = True
    paths = CachePaths.for_model("loss-a")
    paths.folder.mkdir(parents=True)
    paths.partial.write_bytes(b"stale bytes that must not survive")
    ensure_weights("loss-a", quiet=True)
    assert weights_server.gets(LOSS_FILE)[0].headers["Range"] == "bytes=33-"
    record = read_record(paths)
    assert record is not None and record.download_sha256 == sha256(loss_bytes())


def test_server_errors_are_retried(weights_env: Path, weights_server: FixtureServer) -> None:
    weights_server.failures[LOSS_FILE] = [500, 503]
    ensure_weights("loss-a", quiet=True)
    assert len(weights_server.gets(LOSS_FILE)) == 3


def test_retries_give_up_with_one_line(weights_env: Path, weights_server: FixtureServer) -> None:
    weights_server.failures[LOSS_FILE] = [502] * 10
    with pytest.raises(WeightsError, match=r"HTTP 502.*gave up after 5 attempts") as caught:
        ensure_weights("loss-a", quiet=True)
    assert "\n" not in str(caught.value) and "ADACODE_MIRROR" in str(caught.value)
    assert cache_files(weights_env) == []


def test_404_names_the_url_and_the_mirror_variable(
    weights_env: Path, weights_server: FixtureServer
) -> None:
    del weights_server.files[LOSS_FILE]
    with pytest.raises(WeightsError) as caught:
        ensure_weights("loss-a", quiet=True)
    message = str(caught.value)
    assert f"{weights_server.url}/{LOSS_FILE}" in message and "404" in message
    assert "ADACODE_MIRROR" in message
    assert len(weights_server.gets(LOSS_FILE)) == 1  # not retried


@pytest.mark.parametrize("published", [{"sha": "0" * 64}, {"prefix": "00000000"}])
def test_wrong_checksum_leaves_nothing_cached(
    weights_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, published: dict
) -> None:
    _registry(tmp_path, monkeypatch, entry("loss-a", "loss-network", LOSS_FILE, **published))
    with pytest.raises(WeightsError, match=r"checksum mismatch for loss-a.*discarded"):
        ensure_weights("loss-a", quiet=True)
    assert cache_files(weights_env) == []


def test_prefix_checksum_is_recorded(weights_env: Path) -> None:
    ensure_weights("loss-b", quiet=True)
    record = read_record(CachePaths.for_model("loss-b"))
    assert record is not None and record.checksum == "sha256-prefix"


def test_unpublished_checksum_is_stored_then_enforced(
    weights_env: Path, weights_server: FixtureServer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = ensure_weights("disc", quiet=True)
    notice = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert len(notice) == 1
    assert "could not be verified against a published checksum" in notice[0]
    record = read_record(CachePaths.for_model("disc"))
    assert record is not None
    assert (record.checksum, record.download_sha256) == ("none", sha256(disc_bytes()))
    path.unlink()  # the record outlives the file: the next download must match it
    weights_server.files[DISC_FILE] = loss_bytes()
    with pytest.raises(WeightsError, match=r"checksum mismatch.*stored at the first download"):
        ensure_weights("disc", quiet=True)
    weights_server.files[DISC_FILE] = disc_bytes()
    ensure_weights("disc", quiet=True)
    assert "could not be verified" not in capsys.readouterr().err  # only the first time


def test_offline_uses_the_cache_and_never_the_network(
    weights_env: Path, weights_server: FixtureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = ensure_weights("loss-a", quiet=True)
    monkeypatch.setenv("ADACODE_OFFLINE", "1")
    assert ensure_weights("loss-a") == path
    with pytest.raises(WeightsError) as caught:
        ensure_weights("disc")
    assert "adacode weights download disc" in str(caught.value)
    assert "ADACODE_MIRROR" in str(caught.value)
    assert ensure_weights("disc", offline=False, quiet=True).is_file()  # the argument wins
    monkeypatch.delenv("ADACODE_OFFLINE")
    with pytest.raises(WeightsError, match="offline mode"):
        ensure_weights("tiny-sr", offline=True)
    assert not weights_server.gets(SR_FILE)


def test_size_caps(
    weights_env: Path, weights_server: FixtureServer, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADACODE_MAX_DOWNLOAD_BYTES", "1000")
    with pytest.raises(WeightsError, match="larger than 1000 bytes"):
        ensure_weights("loss-a", quiet=True)
    monkeypatch.delenv("ADACODE_MAX_DOWNLOAD_BYTES")
    weights_server.send_length = False  # the cap must also hold while streaming
    _registry(tmp_path, monkeypatch, entry("loss-a", "loss-network", LOSS_FILE, size=5000))
    with pytest.raises(WeightsError, match="larger than 5000 bytes"):
        ensure_weights("loss-a", quiet=True)
    assert cache_files(weights_env) == []


@pytest.mark.parametrize(
    ("mirror", "message"),
    [
        ("http://127.0.0.1:9", r"Connection refused by 127\.0\.0\.1"),  # discard port: refused
        ("http://nosuch.invalid", r"host name 'nosuch\.invalid' does not resolve"),  # RFC 6761
    ],
)
def test_errors_retrying_cannot_fix_fail_at_once(
    weights_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    mirror: str, message: str,
) -> None:
    monkeypatch.setenv("ADACODE_MIRROR", mirror)
    monkeypatch.setenv("ADACODE_RETRY_BACKOFF", "30")  # a retry would hang the test
    started = time.monotonic()
    with pytest.raises(WeightsError, match=message) as caught:
        ensure_weights("loss-a", quiet=True)
    assert time.monotonic() - started < 10
    assert "\n" not in str(caught.value) and "ADACODE_MIRROR" in str(caught.value)
    assert "retrying" not in capsys.readouterr().err


def test_each_retry_says_why(
    weights_env: Path, weights_server: FixtureServer, capsys: pytest.CaptureFixture[str]
) -> None:
    weights_server.failures[LOSS_FILE] = [503, 500]
    weights_server.drop_after[LOSS_FILE] = 1000
    ensure_weights("loss-a", quiet=True)
    retries = [line for line in capsys.readouterr().err.splitlines() if "retrying" in line]
    assert retries == [
        "loss-a: HTTP 503 Service Unavailable (attempt 1 of 5); retrying in 0 s",
        "loss-a: HTTP 500 Internal Server Error (attempt 2 of 5); retrying in 0 s",
        "loss-a: connection broken mid-download (attempt 3 of 5); retrying in 0 s",
    ]


def test_plain_http_mirror_warns(
    weights_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ensure_weights("loss-a", quiet=True)
    assert "ADACODE_MIRROR uses plain http" in capsys.readouterr().err


def test_proxy_from_the_environment_is_used(
    weights_env: Path, weights_server: FixtureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADACODE_MIRROR", "http://mirror.invalid/weights")
    monkeypatch.setenv("HTTP_PROXY", weights_server.url)  # the fixture server plays the proxy
    monkeypatch.setenv("NO_PROXY", "")
    ensure_weights("loss-a", quiet=True)
    (request,) = weights_server.gets(LOSS_FILE)
    assert request.path == f"http://mirror.invalid/weights/{LOSS_FILE}"


def test_unwritable_cache_is_a_clear_error(weights_env: Path, tmp_path: Path) -> None:
    # Tests run as root, which ignores permission bits: a cache under a regular file cannot be
    # created by anyone.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(WeightsError, match="cannot write to the weights cache") as caught:
        ensure_weights("loss-a", cache_dir=blocker / "cache", quiet=True)
    assert "--cache-dir" in str(caught.value)


def test_record_is_plain_json(weights_env: Path) -> None:
    ensure_weights("loss-a", quiet=True)
    data = json.loads((weights_env / "weights" / "loss-a.json").read_text())
    assert set(data) >= {"url", "download_sha256", "safetensors_sha256", "downloaded_at",
                         "tool_version"}


def test_default_entries_cover_every_kind() -> None:
    assert {e["kind"] for e in default_entries()} == {"adacode", "discriminator", "loss-network"}


def test_unusable_download_is_discarded(weights_env: Path, weights_server: FixtureServer) -> None:
    weights_server.files[SR_FILE] = disc_bytes()  # a valid state dict, but not an AdaCode network
    with pytest.raises(CheckpointError, match=r"tiny-sr: the file from .* is unusable"):
        ensure_weights("tiny-sr", quiet=True)
    assert cache_files(weights_env) == []
