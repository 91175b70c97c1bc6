"""One restoration job over several processes, at run time: shares, one count, one summary.

Ranks talk only through torchrun's key-value store (the TCPStore every torchrun job already has),
never through a collective backend: a job exchanges a few small messages (the shares, a finished
count, each rank's outcomes), so no NCCL communicator takes GPU memory, and a rank that finishes
early waits without a collective timeout. Rank 0 reads the image headers of the work left (an
existing output costs nothing, so a rerun balances only what remains) and publishes the shares
before any rank writes; it then shows the job's progress and, once every rank has published its
outcomes, the job's summary. `--shard K/N` uses the same split with no store at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from adacode_cli.cli.report import FAILED, ImageOutcome
from adacode_cli.cli.scaleout import (
    Placement,
    balanced_shares,
    job_costs,
    merge_outcomes,
    outcome_from_record,
    outcome_record,
    parse_shard,
    shard_of_plan,
    torchrun_placement,
)
from adacode_cli.errors import AdaCodeError
from adacode_cli.images.inputs import Skipped
from adacode_cli.images.outputs import PlannedImage

# Rank 0 may read many headers before the others get their shares.
SETUP_TIMEOUT = timedelta(hours=1)
POLL_SECONDS = 0.25
# An interrupted rank 0 waits this long for the other ranks' outcomes (they got the signal too).
INTERRUPTED_GRACE_SECONDS = 5.0


@dataclass
class JobResult:
    """What a process reports and exits with: the outcomes it shows (rank 0: the whole job's)
    and whether the job was interrupted or had a failed image."""

    outcomes: list[ImageOutcome]
    interrupted: bool
    failed: bool


class ScaleoutJob:
    """This process's part of a restoration job: alone, a `--shard`, or a torchrun rank."""

    def __init__(self, placement: Placement, shard: tuple[int, int] | None) -> None:
        self.placement = placement
        self.shard = shard
        self.total = 0  # images in the whole job (of this shard), known after `share`
        self._store: Any = None
        self._finished = 0

    @property
    def is_main(self) -> bool:
        """The process that shows progress and the summary."""
        return self.placement.rank == 0

    def json_fields(self) -> dict[str, object]:
        """Added to every `--json` line, so records from many processes can be told apart."""
        fields: dict[str, object] = {}
        if self.placement.launched:
            fields["rank"] = self.placement.rank
        if self.shard is not None:
            fields["shard"] = f"{self.shard[0]}/{self.shard[1]}"
        return fields

    def share(
        self, plan: list[PlannedImage], skipped: list[Skipped], *, overwrite: bool
    ) -> tuple[list[PlannedImage], list[Skipped]]:
        """The images this process restores, in input order, and the skipped entries it
        reports (all of them on the first share, none elsewhere)."""
        if self.shard is not None:
            plan = shard_of_plan(plan, self.shard)
            skipped = skipped if self.shard[0] == 1 else []
        self.total = len(plan) + len(skipped)
        if not self.placement.launched:
            return plan, skipped
        self._store = _job_store(self.placement)
        if self.is_main:
            costs = job_costs(plan, skip_existing=not overwrite)
            shares = balanced_shares(costs, self.placement.world_size)
            self._store.set("shares", json.dumps({"images": len(plan), "shares": shares}))
        published = json.loads(self._store.get("shares"))
        if published["images"] != len(plan):
            raise AdaCodeError(
                f"rank {self.placement.rank} sees {len(plan)} images, rank 0 saw "
                f"{published['images']}: every node must see the same input folder"
            )
        mine = [plan[index] for index in published["shares"][self.placement.rank]]
        return mine, skipped if self.is_main else []

    def count_finished(self) -> int:
        """Count one finished image; the number finished in the whole job so far."""
        if self._store is None:
            self._finished += 1
            return self._finished
        return int(self._store.add("finished", 1))

    @contextlib.contextmanager
    def live_progress(self, show_finished: Callable[[int], None]) -> Iterator[None]:
        """On rank 0 of a torchrun job, keep the job's finished count on display, also while
        rank 0 itself is busy with a large image (a thread reads the store's count)."""
        if self._store is None or not self.is_main:
            yield
            return
        store = self._store.clone()  # a connection of the thread's own
        finished = threading.Event()

        def poll() -> None:
            with contextlib.suppress(RuntimeError):  # the store is gone: the job is ending
                while not finished.wait(POLL_SECONDS):
                    show_finished(int(store.add("finished", 0)))

        thread = threading.Thread(target=poll, name="adacode-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            finished.set()
            thread.join()

    def gather(self, outcomes: list[ImageOutcome], interrupted: bool) -> JobResult:
        """The job's result: on rank 0 every rank's outcomes, elsewhere this rank's own, and on
        every rank the job's interrupted and failed flags, so that all exit with its code
        (torchrun holds a node that succeeded until the others do; a failed image on one node
        must fail them all)."""
        failed = any(outcome.status == FAILED for outcome in outcomes)
        if self._store is None:
            return JobResult(outcomes, interrupted, failed)
        records = [outcome_record(outcome) for outcome in outcomes]
        self._store.set(f"outcomes/{self.placement.rank}",
                        json.dumps({"interrupted": interrupted, "outcomes": records}))
        if not self.is_main:  # rank 0 publishes the verdict once it has read every outcome
            verdict = self._wait_for(["verdict"], patient=not interrupted)
            if not verdict:
                return JobResult(outcomes, True, failed)
            return JobResult(outcomes, verdict[0]["interrupted"], verdict[0]["failed"])
        keys = [f"outcomes/{rank}" for rank in range(self.placement.world_size)]
        published = self._wait_for(keys, patient=not interrupted)
        merged = merge_outcomes([[outcome_from_record(record) for record in entry["outcomes"]]
                                 for entry in published])
        result = JobResult(
            merged,
            len(published) < len(keys) or any(entry["interrupted"] for entry in published),
            any(outcome.status == FAILED for outcome in merged),
        )
        verdict = {"interrupted": result.interrupted, "failed": result.failed}
        self._store.set("verdict", json.dumps(verdict))
        return result

    def _wait_for(self, keys: list[str], *, patient: bool) -> list[dict[str, Any]]:
        """The values of `keys` once all are set; unless `patient`, only those set within a
        grace period (the ranks of an interrupted job were all told to stop)."""
        deadline = time.monotonic() + INTERRUPTED_GRACE_SECONDS
        while not self._store.check(keys) and (patient or time.monotonic() < deadline):
            time.sleep(POLL_SECONDS)
        return [json.loads(self._store.get(key)) for key in keys if self._store.check([key])]


def join_job(shard_text: str | None, device: str) -> ScaleoutJob:
    """This process's place in the job, checked before any work (a bad `--shard` is a usage
    error); under torchrun, `--device auto` or `cuda` means this rank's GPU, cuda:LOCAL_RANK."""
    shard = parse_shard(shard_text)
    placement = torchrun_placement()
    if placement.launched and device.strip().lower() in ("auto", "cuda"):
        _use_local_gpu(placement)
    return ScaleoutJob(placement, shard)


def _use_local_gpu(placement: Placement) -> None:
    """Make cuda:LOCAL_RANK the current device, which the engine's `auto` and `cuda` pick.
    More processes than GPUs on a machine is a usage error on every rank alike."""
    import torch

    if not torch.cuda.is_available():
        return
    count = torch.cuda.device_count()
    if placement.local_world_size > count:
        raise AdaCodeError(
            f"{placement.local_world_size} processes on this machine but {count} CUDA "
            f"device(s): use --nproc-per-node {count} (or --device cuda:N to share one GPU)"
        )
    torch.cuda.set_device(placement.local_rank)


def _job_store(placement: Placement) -> Any:
    """torchrun's key-value store, under a prefix of this attempt (torchrun may restart
    workers, and a restart must not read the last attempt's keys)."""
    import torch.distributed as dist

    store, _, _ = next(dist.rendezvous(
        "env://", rank=placement.rank, world_size=placement.world_size, timeout=SETUP_TIMEOUT
    ))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return dist.PrefixStore(f"adacode-restore/{attempt}/", store)

