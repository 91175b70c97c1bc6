"""Splitting a restoration job: pixel-balanced shares, `--shard K/N` job arrays, placements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adacode_cli.cli.scaleout import (
    PER_IMAGE_COST,
    Placement,
    balanced_shares,
    job_costs,
    parse_shard,
    torchrun_placement,
)
from adacode_cli.errors import AdaCodeError
from adacode_cli.images.outputs import PlannedImage
from cli_restore_helpers import noise, run_cli, save_png, save_tiny_model
from scaleout_helpers import mixed_folder


@pytest.fixture(scope="module")
def sr_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("model") / "model.safetensors", "sr", 2)


def test_shares_cover_every_item_once_and_balance_the_cost() -> None:
    costs = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 100, 1, 1, 1, 1, 1, 1, 1]
    for parts in (1, 2, 3, 5, 25):
        shares = balanced_shares(costs, parts)
        assert len(shares) == parts
        assert sorted(i for share in shares for i in share) == list(range(len(costs)))
        assert all(share == sorted(share) for share in shares)
    first, second = balanced_shares(costs, 2)
    assert {12} <= set(first) and len(first) == 1  # the big one alone; the rest elsewhere
    assert balanced_shares(costs, 2) == [first, second]  # the same split in every process


def test_costs_come_from_headers_and_skip_existing_outputs(tmp_path: Path) -> None:
    big = save_png(tmp_path / "big.png", noise((60, 50, 3)))
    (tmp_path / "broken.png").write_bytes(b"garbage")
    done = tmp_path / "out.png"
    done.write_bytes(b"exists")
    plan = [PlannedImage(big, tmp_path / "a.png"),
            PlannedImage(tmp_path / "broken.png", tmp_path / "b.png"),
            PlannedImage(big, done, existing=(done,))]
    assert job_costs(plan, skip_existing=True) == [
        3000 + PER_IMAGE_COST, PER_IMAGE_COST, 0]
    assert job_costs(plan, skip_existing=False)[2] == 3000 + PER_IMAGE_COST


def test_a_video_weighs_its_frames_so_long_videos_go_to_different_ranks(tmp_path: Path) -> None:
    """A video used to cost as much as one small image, so one rank could be handed every long
    video of a job while the others idled."""
    pytest.importorskip("imageio_ffmpeg")
    from video_helpers import make_clip

    clips = [make_clip(tmp_path / f"clip{index}.mp4", frames=36, size=(64, 48), audio=False)
             for index in range(2)]
    image = save_png(tmp_path / "still.png", noise((60, 50, 3)))
    work = tmp_path / "work"
    plan = [PlannedImage(clips[0], tmp_path / "o0.mp4", work_folder=work),
            PlannedImage(clips[1], tmp_path / "o1.mp4", work_folder=work),
            *[PlannedImage(image, tmp_path / f"o{index}.png") for index in range(2, 8)]]
    costs = job_costs(plan, skip_existing=False)
    assert costs[:2] == [64 * 48 * 36 + PER_IMAGE_COST] * 2
    assert costs[2] == 3000 + PER_IMAGE_COST
    first, second = balanced_shares(costs, 2)
    assert (0 in first) != (1 in first) and (0 in second) != (1 in second)


@pytest.mark.parametrize("text", ["0/2", "3/2", "2", "a/b", "1/0", "-1/2", "1/2/3"])
def test_bad_shard_is_a_usage_error(text: str) -> None:
    with pytest.raises(AdaCodeError, match="--shard"):
        parse_shard(text)


def test_placement_from_torchrun_environment() -> None:
    assert torchrun_placement({}) == Placement()
    assert torchrun_placement({"WORLD_SIZE": "1", "RANK": "0"}) == Placement()
    environment = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    assert torchrun_placement(environment) == Placement(3, 4, 1, 2, launched=True)


@pytest.mark.parametrize("count", [1, 2, 3])
def test_shards_cover_the_folder_exactly_once(tmp_path, capsys, sr_model, count) -> None:
    names = mixed_folder(tmp_path / "in")
    seen: list[str] = []
    for number in range(1, count + 1):
        ran = run_cli(capsys, "sr", str(tmp_path / "in"), str(tmp_path / "out"), "--shard",
                      f"{number}/{count}", "--json", "-w", str(sr_model), "--device", "cpu")
        records = [json.loads(line) for line in ran.stdout.splitlines()]
        assert {record["shard"] for record in records} <= {f"{number}/{count}"}
        assert ran.code == (1 if any(r["status"] == "failed" for r in records) else 0)
        seen += [Path(record["input"]).name for record in records]
    assert sorted(seen) == names
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        name for name in names if name != "bad.png"]


def test_shard_usage_error_exits_2_before_any_work(tmp_path, capsys, sr_model) -> None:
    mixed_folder(tmp_path / "in")
    ran = run_cli(capsys, "sr", str(tmp_path / "in"), str(tmp_path / "out"), "--shard", "3/2",
                  "-w", str(sr_model))
    assert ran.code == 2
    assert "--shard 3/2" in ran.stderr
    assert not (tmp_path / "out").exists()
