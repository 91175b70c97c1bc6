"""Folder restores overlap decoding and encoding with compute, and one bad file skips alone."""

from __future__ import annotations

import threading

import pytest

from adacode_cli.engine.pipeline import Job, run_jobs
from adacode_cli.errors import ImageError


def test_next_image_decodes_and_previous_encodes_while_the_model_runs() -> None:
    loaded = [threading.Event() for _ in range(3)]
    saved = [threading.Event() for _ in range(3)]
    written: list[int] = []

    def make(i: int) -> Job[int, int]:
        def load() -> int:
            loaded[i].set()
            return i

        def save(result: int) -> None:
            written.append(result)
            saved[i].set()

        return Job(load, save, name=f"img{i}")

    def process(i: int) -> int:
        if i + 1 < 3:  # the next decode happens while this one computes
            assert loaded[i + 1].wait(5)
        if i > 0:  # and the previous result is written meanwhile
            assert saved[i - 1].wait(5)
        return i * 10

    outcomes = run_jobs([make(i) for i in range(3)], process)
    assert written == [0, 10, 20]
    assert [o.job.name for o in outcomes] == ["img0", "img1", "img2"]
    assert all(o.error is None for o in outcomes)


def test_a_user_error_skips_one_job_and_the_rest_go_on() -> None:
    written: list[str] = []

    def bad_load() -> str:
        raise ImageError("cannot decode broken.png")

    def bad_save(result: str) -> None:
        raise ImageError("disk full")

    jobs = [
        Job(lambda: "a", written.append, "a"),
        Job(bad_load, written.append, "broken"),
        Job(lambda: "c", bad_save, "c"),
        Job(lambda: "d", written.append, "d"),
    ]
    reported = []
    outcomes = run_jobs(jobs, str.upper, on_outcome=reported.append)
    assert written == ["A", "D"]
    assert [str(o.error) if o.error else None for o in outcomes] == [
        None, "cannot decode broken.png", "disk full", None,
    ]
    assert reported == outcomes


def test_a_bug_stops_the_run_after_the_save_in_flight() -> None:
    written: list[int] = []

    def process(i: int) -> int:
        if i == 1:
            raise ZeroDivisionError("bug")
        return i

    jobs = [Job(lambda i=i: i, written.append) for i in range(4)]
    with pytest.raises(ZeroDivisionError):
        run_jobs(jobs, process)
    assert written == [0]
