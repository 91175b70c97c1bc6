"""Exact statistics under a memory limit: registers spill to disk and give the in-memory output;
spill files never outlive a restore; an image that cannot fit is refused before any work; every
phase honours a stop request."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from adacode_cli.engine import memory, parking
from adacode_cli.engine.overlap import tile_grid
from adacode_cli.engine.restorer import InsufficientMemoryError, RestoreInterrupted, Restorer
from adacode_cli.errors import ImageError
from engine_helpers import photo_like, tiny_restorer

SIZE, TILE, OVERLAP = 150, 96, 32


@pytest.fixture
def spill_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private temporary folder, and a process that looks empty to the memory budget."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(memory, "process_resident", lambda: 0)
    return tmp_path


def _tight(statistics: str = "auto") -> Restorer:
    """A restorer whose limit leaves room for a tile but only half the parked registers."""
    restorer = tiny_restorer("sr", 2, tile=TILE, tile_overlap=OVERLAP, statistics=statistics)
    roomy = restorer.plan(SIZE, SIZE)
    costs = restorer._memory_profile()
    covered = len(tile_grid(restorer.config, (160, 160), TILE, OVERLAP)) * TILE * TILE
    parked = costs.parked_bytes(covered, roomy.exact_segments)
    restorer.options.memory_limit = (restorer._fixed_bytes(SIZE, SIZE)
                                     + costs.stream_bytes(TILE * TILE) + parked // 2)
    return restorer


def _spill_folders(root: Path) -> list[Path]:
    return list(root.glob(f"{parking.SPILL_PREFIX}*"))


def _spill_files(root: Path) -> list[Path]:
    return [p for p in root.glob(f"{parking.SPILL_PREFIX}*/*") if p.is_file()]


def test_spilled_registers_give_the_in_memory_output_and_are_removed(spill_root: Path) -> None:
    image = photo_like(SIZE, SIZE)
    in_memory = tiny_restorer("sr", 2, tile=TILE, tile_overlap=OVERLAP).restore(
        image, with_weight_map=True)
    restorer = _tight()
    plan = restorer.plan(SIZE, SIZE)
    assert plan.parking == "disk" and plan.whole_latent  # the latent gathered from spilled tiles
    seen: list[int] = []

    def on_disk() -> bool:
        seen.append(sum(path.stat().st_size for path in _spill_files(spill_root)))
        return False

    spilled = restorer.restore(image, with_weight_map=True, should_stop=on_disk)
    # read batches are deleted at once: the disk holds about one segment's registers, within
    # what the free-space check asked for
    assert 0 < max(seen) <= plan.spill_bytes and not _spill_folders(spill_root)
    # spilling is silent: the same notices as in memory (the small tiles' seam notice), none
    # about estimated statistics
    assert spilled.notices == in_memory.notices
    assert not any("statistics" in notice for notice in spilled.notices)
    assert spilled.tiles == in_memory.tiles == 4
    assert np.abs(spilled.image.astype(int) - in_memory.image).max() <= 1
    assert np.allclose(spilled.weight_map, in_memory.weight_map, atol=1e-5)


def test_spill_files_are_removed_after_an_error_or_a_stop(spill_root: Path) -> None:
    restorer = _tight()

    def broken(module: torch.nn.Module, args: tuple[torch.Tensor]) -> None:
        raise RuntimeError("broken convolution")

    hook = restorer.network.out_conv.register_forward_pre_hook(broken)
    with pytest.raises(RuntimeError, match="broken convolution"):
        restorer.restore(photo_like(SIZE, SIZE))
    assert not _spill_folders(spill_root)
    hook.remove()
    checks: list[int] = []
    with pytest.raises(RestoreInterrupted):
        restorer.restore(photo_like(SIZE, SIZE), should_stop=lambda: (
            checks.append(len(_spill_files(spill_root))) or len(checks) > 6))
    assert checks[-1] > 0 and not _spill_folders(spill_root)


def test_a_short_disk_is_one_line_per_image_error_before_any_work(
    spill_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parking.shutil, "disk_usage",
                        lambda path: SimpleNamespace(total=10**9, used=10**9, free=1000))
    restorer = _tight()
    calls: list[int] = []
    restorer.network.multiscale_encoder.in_conv.register_forward_pre_hook(
        lambda module, args: calls.append(1))
    with pytest.raises(parking.DiskSpaceError, match="GB of temporary disk space") as caught:
        restorer.restore(photo_like(SIZE, SIZE))
    assert isinstance(caught.value, ImageError) and "\n" not in str(caught.value)
    assert calls == [] and not _spill_folders(spill_root)


def test_a_disk_that_fills_up_while_spilling_is_one_line_and_leaves_nothing(
    spill_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The free-space check passed, then another writer took the space: the restore fails
    with one line naming the folder (not a bare errno), and the spill folder goes."""
    written: list[Path] = []

    def filling(path: Path, mode: str = "r", *args: object, **kwargs: object):
        if "w" in mode and len(written) >= 3:  # a few batches fit, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        written.append(Path(path))
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(parking, "open", filling, raising=False)
    with pytest.raises(parking.DiskSpaceError, match="temporary disk filled up") as caught:
        _tight().restore(photo_like(SIZE, SIZE))
    assert isinstance(caught.value, ImageError) and "\n" not in str(caught.value)
    assert str(spill_root) in str(caught.value)
    assert written and not _spill_folders(spill_root)


def test_an_image_that_cannot_fit_is_refused_before_any_work(spill_root: Path) -> None:
    restorer = tiny_restorer("sr", 4, memory_limit=400 * 2**20)
    assert restorer.memory_estimate(100, 100).fits
    estimate = restorer.memory_estimate(3000, 3000)
    assert not estimate.fits and estimate.needed > 400 * 2**20
    calls: list[int] = []
    restorer.network.multiscale_encoder.in_conv.register_forward_pre_hook(
        lambda module, args: calls.append(1))
    with pytest.raises(InsufficientMemoryError,
                       match=r"^needs about \d+\.\d GB of memory, \d+\.\d GB available$") as caught:
        restorer.restore(np.zeros((3000, 3000, 3), np.uint8))
    assert caught.value.exit_code == 1 and isinstance(caught.value, ImageError)
    assert calls == []


@pytest.mark.parametrize("phase", ["whole", "layered", "estimate", "spill"])
def test_every_phase_stops_at_its_next_check(phase: str, spill_root: Path) -> None:
    """A stop requested during the run ends it at the next step or batch: the network runs
    at most one more step after the request."""
    if phase == "whole":
        restorer = tiny_restorer("sr", 2, tile=0)
    elif phase == "layered":
        restorer = tiny_restorer("sr", 2, tile=TILE, tile_overlap=OVERLAP)
    else:
        restorer = _tight("estimate" if phase == "estimate" else "auto")
    plan = restorer.plan(SIZE, SIZE)
    assert (plan.estimate_scale is not None) == (phase == "estimate")
    assert (plan.parking == "disk") == (phase == "spill")
    steps: list[str] = []
    for name, module in restorer.network.named_modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_pre_hook(lambda module, args, name=name: steps.append(name))
    requested: list[int] = []

    def stop() -> bool:
        if len(steps) >= 3 and not requested:
            requested.append(len(steps))
        return bool(requested)

    with pytest.raises(RestoreInterrupted):
        restorer.restore(photo_like(SIZE, SIZE), should_stop=stop)
    total_convs = sum(isinstance(m, torch.nn.Conv2d) for m in restorer.network.modules())
    assert len(steps) < requested[0] + total_convs // 2
    assert not _spill_folders(spill_root)


def test_a_stop_inside_a_swin_stack_is_honoured_before_the_next_swin_block() -> None:
    """A Swin stack is one step of the graph and runs long on large images: the stop request
    is checked before each of its blocks."""
    from adacode_cli.model.swin import SwinBlock

    restorer = tiny_restorer("sr", 2, tile=0)
    started: list[int] = []
    for module in restorer.network.modules():
        if isinstance(module, SwinBlock):
            module.register_forward_pre_hook(lambda module, args: started.append(1))
    with pytest.raises(RestoreInterrupted):
        restorer.restore(photo_like(64, 64), should_stop=lambda: bool(started))
    assert len(started) == 1
