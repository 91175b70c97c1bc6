"""The one stop request of every long loop: flag first, KeyboardInterrupt on a second Ctrl-C or
when the grace period runs out."""

from __future__ import annotations

import os
import signal
import time

import pytest

from adacode_cli.interrupt import StopRequest, sigterm_as_interrupt


def busy(seconds: float, stop: StopRequest | None = None) -> None:
    """A loop that checks nothing but the clock (and `stop`, if given)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (stop is not None and stop()):
        pass


def test_first_press_only_asks_and_the_second_stops_at_once() -> None:
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        busy(0.2)
        assert stop() and stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            busy(5)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_step_without_stop_checks_is_stopped_after_the_grace() -> None:
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), StopRequest(grace=0.2) as stop:
        os.kill(os.getpid(), signal.SIGINT)
        busy(10)
    assert stop.requested and time.monotonic() - started < 5


def test_a_loop_that_checks_returns_without_escalation() -> None:
    with StopRequest(grace=0.3) as stop:
        os.kill(os.getpid(), signal.SIGINT)
        busy(10, stop)
    busy(0.5)  # the grace timer was cancelled: nothing arrives after the block
    assert stop.requested


def test_grace_zero_stops_at_once_and_sets_the_flag() -> None:
    with pytest.raises(KeyboardInterrupt), StopRequest(grace=0) as stop:
        os.kill(os.getpid(), signal.SIGINT)
        busy(10)
    assert stop.requested


def test_disabled_leaves_ctrl_c_alone() -> None:
    with StopRequest(enabled=False) as stop:
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert not stop()


def test_an_acknowledged_stop_may_wind_down_past_the_grace() -> None:
    with StopRequest(grace=0.2) as stop:
        os.kill(os.getpid(), signal.SIGINT)
        busy(10, stop)
        stop.acknowledge()  # e.g. a video closing its last segment
        busy(0.6)
    assert stop.requested
    with pytest.raises(KeyboardInterrupt), StopRequest(grace=0.2) as stop:
        os.kill(os.getpid(), signal.SIGINT)
        busy(10, stop)
        stop.acknowledge()
        os.kill(os.getpid(), signal.SIGINT)  # a second press still stops at once
        busy(5)


def test_sigterm_is_a_second_ctrl_c_outside_a_clean_stop() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        busy(5)
    assert signal.getsignal(signal.SIGTERM) is previous


def test_sigterm_asks_a_clean_stop_and_never_escalates_where_the_block_saves() -> None:
    """Training: SIGTERM (a time limit, torchrun passing a Ctrl-C on) asks for the clean stop
    that saves the run; the SIGINT and SIGTERM a terminal's Ctrl-C gives a torchrun worker
    are one request; only a second Ctrl-C stops at once."""
    previous = signal.getsignal(signal.SIGTERM)
    with sigterm_as_interrupt():
        with StopRequest(terminate=True) as stop:
            os.kill(os.getpid(), signal.SIGTERM)
            busy(0.2)
            assert stop.requested
            os.kill(os.getpid(), signal.SIGTERM)
            busy(0.2)
        with StopRequest(terminate=True) as stop:
            os.kill(os.getpid(), signal.SIGINT)  # the terminal's Ctrl-C, then torchrun's SIGTERM
            os.kill(os.getpid(), signal.SIGTERM)
            busy(0.2)
            assert stop.requested
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
                busy(5)
    assert signal.getsignal(signal.SIGTERM) is previous


def test_without_escalation_a_repeated_ctrl_c_is_the_same_request() -> None:
    """A torchrun worker: the terminal's Ctrl-C and torchrun passing it on are one press."""
    with StopRequest(terminate=True, escalate=False) as stop:
        for _ in range(3):
            os.kill(os.getpid(), signal.SIGINT)
            busy(0.1)
        assert stop.requested
