"""Fixtures of the weights tests, loaded with `pytest_plugins = ["weights_fixtures"]`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from weights_helpers import (
    FixtureServer,
    default_entries,
    default_files,
    serve,
    write_registry,
)


@pytest.fixture
def weights_server() -> Iterator[FixtureServer]:
    with serve(FixtureServer(files=default_files())) as running:
        yield running


@pytest.fixture
def weights_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weights_server: FixtureServer
) -> Path:
    """Test registry, a fresh cache, the mirror on the loopback server; returns the cache root."""
    registry = write_registry(tmp_path / "registry.json", default_entries())
    for name in ("ADACODE_OFFLINE", "ADACODE_MAX_DOWNLOAD_BYTES", "HTTP_PROXY", "http_proxy",
                 "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("ADACODE_REGISTRY", str(registry))
    monkeypatch.setenv("ADACODE_HOME", str(cache))
    monkeypatch.setenv("ADACODE_MIRROR", weights_server.url)
    monkeypatch.setenv("ADACODE_RETRY_BACKOFF", "0")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return cache
