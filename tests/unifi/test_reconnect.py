"""The reconnect policy: capped jittered backoff, errors sorted by what helps (injected clock)."""

from __future__ import annotations

import pytest

from agent.locks.unifi.errors import (
    CertificateRefused,
    ControllerFailure,
    ControllerUnreachable,
    NotConfigured,
    ScopeMissing,
    Throttled,
    TokenRejected,
)
from agent.locks.unifi.reconnect import Backoff, LinkState, ReconnectPolicy, Verdict, classify


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


DOWN = ControllerUnreachable("https://c:12445", "connection refused")


def test_backoff_doubles_up_to_the_cap_without_jitter() -> None:
    backoff = Backoff(0.5, 4.0, jitter=0.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


@pytest.mark.parametrize(("draw", "factor"), [(0.0, 0.8), (0.5, 1.0), (1.0, 1.2)])
def test_jitter_stays_within_twenty_percent(draw: float, factor: float) -> None:
    backoff = Backoff(1.0, 10.0, jitter=0.2, rng=lambda: draw)
    assert backoff.next_delay() == pytest.approx(factor)


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (DOWN, Verdict.BACK_OFF),
        (ControllerFailure("GET /doors", 503, None, None), Verdict.BACK_OFF),
        (Throttled("GET /doors", 429, None, None, 3.0), Verdict.BACK_OFF),
        (TokenRejected("GET /doors", 401, "CODE_ACCESS_TOKEN_INVALID", None), Verdict.NEEDS_USER),
        (ScopeMissing("GET /doors", 403, None, None, "view:space"), Verdict.NEEDS_USER),
        (CertificateRefused("https://c", "AA", "BB"), Verdict.NEEDS_USER),
        (NotConfigured("run kasify-agent unifi trust"), Verdict.NEEDS_USER),
    ],
)
def test_classification(error: Exception, verdict: Verdict) -> None:
    assert classify(error) is verdict


def test_an_outage_backs_off_and_a_healthy_session_starts_afresh() -> None:
    clock = FakeClock()
    policy = ReconnectPolicy(initial_s=1, max_s=8, jitter=0, healthy_s=60, clock=clock)
    assert [policy.failed(DOWN) for _ in range(5)] == [1, 2, 4, 8, 8]
    assert policy.state is LinkState.BACKING_OFF
    policy.connected()
    clock.now += 5  # a short-lived session does not reset the backoff …
    assert policy.failed(DOWN) == 8
    policy.connected()
    clock.now += 61  # … a healthy one does
    assert policy.failed(DOWN) == 1
    assert policy.last_error is not None
    assert "connection refused" in policy.last_error


def test_problems_that_need_a_person_wait_long_and_say_so() -> None:
    policy = ReconnectPolicy(initial_s=1, max_s=8, jitter=0, needs_user_s=300)
    token = TokenRejected("GET /doors", 401, "CODE_ACCESS_TOKEN_INVALID", "invalid")
    assert policy.failed(token) == 300
    assert policy.state is LinkState.NEEDS_USER
    assert policy.last_error is not None
    assert "UniFi Access API token" in policy.last_error


def test_throttling_waits_at_least_as_long_as_asked() -> None:
    policy = ReconnectPolicy(initial_s=1, max_s=8, jitter=0)
    assert policy.failed(Throttled("GET /doors", 429, None, None, 20.0)) == 20.0
    assert policy.failed(Throttled("GET /doors", 429, None, None, None)) == 2.0
