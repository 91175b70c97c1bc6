"""Fixtures shared across the suite: small official-format checkpoints.

Plain helpers (the CLI runner, fixture paths) live in `process_helpers.py`: conftest holds only
pytest fixtures, so no test imports it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from cli_restore_helpers import tiny_models


@pytest.fixture
def make_official_pth(tmp_path: Path) -> Callable[..., Path]:
    """Write a tiny network in the official `{'params': state_dict}` .pth format."""
    import torch

    from adacode_cli.model.config import AdaCodeConfig
    from adacode_cli.model.networks import build_network

    def make(task: str = "sr", scale: int = 4, seed: int = 0, name: str | None = None) -> Path:
        torch.manual_seed(seed)
        network = build_network(AdaCodeConfig.tiny(task, scale))  # type: ignore[arg-type]
        path = tmp_path / (name or f"tiny-{task}-x{scale}.pth")
        torch.save({"params": network.state_dict()}, path)
        return path

    return make


@pytest.fixture(autouse=True)
def _private_cache_root(tmp_path_factory: pytest.TempPathFactory,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep what runs store in the cache root (memory profiles) out of the user's cache folder;
    tests that need their own root set ADACODE_HOME again."""
    if "ADACODE_HOME" not in os.environ:
        monkeypatch.setenv("ADACODE_HOME", str(tmp_path_factory.getbasetemp() / "cache-root"))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random sr x2, inpaint and recon models, saved once per test module."""
    return tiny_models(tmp_path_factory.mktemp("models"))
