"""ReconnectPolicy: capped exponential backoff with jitter, one log line per outage."""

from __future__ import annotations

import errno
import logging

import pytest

from firmware_bridge.errors import PortError
from firmware_bridge.reconnect import ReconnectPolicy, ReconnectState

MISSING = PortError("/dev/ttyACM0", "cannot open: no such file", errno=errno.ENOENT)
DENIED = PortError("/dev/ttyACM0", "cannot open: permission denied", errno=errno.EACCES)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_up_to_the_cap_without_jitter() -> None:
    policy = ReconnectPolicy(initial_delay_s=0.1, max_delay_s=1.0, jitter=0.0)
    delays = [policy.failed(MISSING) for _ in range(6)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


@pytest.mark.parametrize(("draw", "factor"), [(0.0, 0.8), (0.5, 1.0), (1.0, 1.2)])
def test_jitter_spreads_delays_by_the_configured_fraction(draw: float, factor: float) -> None:
    policy = ReconnectPolicy(initial_delay_s=1.0, jitter=0.2, rng=lambda: draw)
    assert policy.failed(MISSING) == pytest.approx(factor)


def test_an_outage_is_logged_once_and_its_end_too(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="firmware_bridge.reconnect")
    clock = Clock()
    policy = ReconnectPolicy(clock=clock)
    for _ in range(5):
        policy.failed(MISSING)
        clock.now += 1.0
    policy.opened("/dev/ttyACM0")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "port missing: keypad unplugged" in messages[0]
    assert messages[1] == "keypad port /dev/ttyACM0 back after 5.0 s and 5 failed attempts"
    assert policy.state is ReconnectState.OPEN


def test_a_new_cause_is_logged_and_a_new_outage_restarts_the_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="firmware_bridge.reconnect")
    policy = ReconnectPolicy(initial_delay_s=0.1, jitter=0.0)
    policy.failed(MISSING)
    policy.failed(MISSING)
    policy.failed(DENIED)
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.ERROR]
    assert "dialout group" in caplog.records[1].getMessage()
    policy.opened("/dev/ttyACM0")
    policy.lost()
    assert policy.failed(MISSING) == pytest.approx(0.1)
    assert len(caplog.records) == 3
