"""Splitting one restoration job over several processes: who restores which image, and one report.

A process's place in the job comes from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) or
from `--shard K/N` (job arrays, no launcher). Shares are balanced by pixel count, read from the
image headers, so a folder mixing thumbnails and 8K photos does not leave one rank with all the
work: images are dealt largest first to the least loaded share (longest-processing-time-first),
then each share runs in sorted order. Everything here is plain Python (no torch), so it is cheap
to import and easy to test; `scaleout_job` does the talking between processes.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adacode_cli.cli.report import ImageOutcome
from adacode_cli.errors import AdaCodeError
from adacode_cli.images.outputs import PlannedImage

# What an image costs besides its pixels (decode, encode, a network call, Python overhead),
# in pixels: about a 128 x 128 image; a file whose header cannot be read costs only this.
PER_IMAGE_COST = 128 * 128


@dataclass(frozen=True)
class Placement:
    """This process's rank among `world_size` processes, and among the `local_world_size` of
    its machine; `launched` is True under torchrun."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    launched: bool = False


def torchrun_placement(environ: Mapping[str, str] | None = None) -> Placement:
    """Where torchrun put this process (one process alone when WORLD_SIZE is unset or 1)."""
    env = os.environ if environ is None else environ
    world = int(env.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Placement()
    return Placement(
        rank=int(env["RANK"]),
        world_size=world,
        local_rank=int(env.get("LOCAL_RANK", "0")),
        local_world_size=int(env.get("LOCAL_WORLD_SIZE", "1")),
        launched=True,
    )


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """`K/N` (1 <= K <= N) as (K, N); None for no `--shard`. Anything else is a usage error."""
    if text is None:
        return None
    number, slash, count = text.partition("/")
    if slash and number.strip().isdigit() and count.strip().isdigit():
        k, n = int(number), int(count)
        if 1 <= k <= n:
            return k, n
    raise AdaCodeError(
        f"--shard {text}: expected K/N with 1 <= K <= N, e.g. --shard 2/8 "
        "(SLURM: --shard $((SLURM_ARRAY_TASK_ID + 1))/$SLURM_ARRAY_TASK_COUNT with --array=0-7)"
    )


def balanced_shares(costs: Sequence[int], parts: int) -> list[list[int]]:
    """Split item indices into `parts` shares of about equal total cost, each in index order.

    Largest first to the least loaded share (ties: the lower index, the lower share), so the
    result depends only on `costs`: every process computes the same split.
    """
    loads = [(0, share) for share in range(parts)]
    shares: list[list[int]] = [[] for _ in range(parts)]
    for index in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        load, share = heapq.heappop(loads)
        shares[share].append(index)
        heapq.heappush(loads, (load + costs[index], share))
    return [sorted(share) for share in shares]


def pixel_cost(path: Path, video: bool = False) -> int:
    """What restoring `path` costs, from its header alone: its pixels (a video's: every
    frame's) plus `PER_IMAGE_COST`."""
    from adacode_cli.errors import ImageError
    from adacode_cli.images.decode import read_size

    try:
        if video:
            from adacode_cli.video.probe import header_pixels

            return header_pixels(path) + PER_IMAGE_COST
        width, height = read_size(path)
    except ImageError:  # video errors included
        return PER_IMAGE_COST  # it will fail quickly, and is reported then
    return width * height + PER_IMAGE_COST


def job_costs(plan: Sequence[PlannedImage], *, skip_existing: bool) -> list[int]:
    """The cost of each planned image or video; one whose files exist costs nothing when the
    batch will skip it (`skip_existing`)."""
    return [
        0 if skip_existing and planned.existing else pixel_cost(planned.source, planned.is_video)
        for planned in plan
    ]


def shard_of_plan(plan: list[PlannedImage], shard: tuple[int, int]) -> list[PlannedImage]:
    """The images `--shard K/N` restores. Costs ignore existing outputs: array tasks start at
    different times, and the split must not depend on what the others have already written."""
    number, count = shard
    if number > len(plan):  # more shares than images: the last ones are empty
        return []
    # Shares past the images' count stay empty: only as many as there are images are made, so
    # an absurd N (--shard 1/100000000) costs no memory.
    shares = balanced_shares(job_costs(plan, skip_existing=False), min(count, len(plan)))
    return [plan[index] for index in shares[number - 1]]


def outcome_record(outcome: ImageOutcome) -> dict[str, Any]:
    """What the summary needs of one outcome, as JSON-ready values (sent between ranks)."""
    return {
        "input": str(outcome.input),
        "output": None if outcome.output is None else str(outcome.output),
        "status": outcome.status,
        "seconds": outcome.seconds,
        "error": outcome.error,
        "measures": outcome.measures,
        "output_pixels": outcome.output_pixels,
        "reason": outcome.reason,
    }


def outcome_from_record(record: Mapping[str, Any]) -> ImageOutcome:
    """The inverse of `outcome_record` (warnings were already shown by the rank that had them)."""
    output = record["output"]
    return ImageOutcome(
        Path(record["input"]),
        None if output is None else Path(output),
        record["status"],
        seconds=record["seconds"],
        error=record["error"],
        measures=dict(record["measures"]),
        output_pixels=record["output_pixels"],
        reason=record["reason"],
    )


def merge_outcomes(per_rank: Sequence[Sequence[ImageOutcome]]) -> list[ImageOutcome]:
    """Every rank's outcomes as one list in input order, for one summary of the whole job."""
    merged = [outcome for outcomes in per_rank for outcome in outcomes]
    return sorted(merged, key=lambda outcome: str(outcome.input))
