"""Keypad lockout rules and clock trust, with injected time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.access import AccessState, DenyReason, pin_mac
from agent.clock import (
    BACKWARD_TOLERANCE_S,
    CLOUD_SKEW_TOLERANCE_S,
    LOCK_SKEW_TOLERANCE_S,
    SYNC_CHECK_INTERVAL_S,
    Clock,
)
from agent.keypad_lockout import (
    FAILURE_WINDOW_S,
    MAX_LOCKOUT_S,
    KeypadLockout,
    LockoutState,
)
from agent.store import StoredCode, StoredLock

T0 = 1_800_000_000.0


def _fail(lockout: KeypadLockout, times: list[float]) -> list[float | None]:
    return [lockout.failure(t) for t in times]


def test_five_wrong_codes_in_five_minutes_lock_for_thirty_seconds() -> None:
    lockout = KeypadLockout()
    results = _fail(lockout, [T0 + i * 50 for i in range(5)])
    assert results == [None, None, None, None, 30.0]
    assert lockout.remaining(T0 + 200) == 30.0
    assert lockout.remaining(T0 + 230) == 0.0


def test_spread_out_failures_never_lock() -> None:
    lockout = KeypadLockout()
    results = _fail(lockout, [T0 + i * (FAILURE_WINDOW_S / 4 + 1) for i in range(20)])
    assert results == [None] * 20


def test_each_further_failure_doubles_up_to_fifteen_minutes() -> None:
    lockout = KeypadLockout()
    now = T0
    durations = []
    for _ in range(5 + 8):
        duration = lockout.failure(now)
        if duration:
            durations.append(duration)
            now += duration  # the next wrong code right after the lockout ends
        else:
            now += 1
    assert durations == [30, 60, 120, 240, 480, MAX_LOCKOUT_S, MAX_LOCKOUT_S, MAX_LOCKOUT_S, 900]


def test_a_valid_code_resets_everything() -> None:
    lockout = KeypadLockout()
    _fail(lockout, [T0, T0 + 1, T0 + 2, T0 + 3])
    lockout.success()
    assert _fail(lockout, [T0 + 4, T0 + 5, T0 + 6, T0 + 7]) == [None] * 4


def test_five_quiet_minutes_end_the_escalation() -> None:
    lockout = KeypadLockout()
    _fail(lockout, [T0 + i for i in range(5)])
    later = T0 + 5 + FAILURE_WINDOW_S + 31
    assert lockout.failure(later) is None  # starts counting afresh


def test_the_end_of_a_lockout_is_reported_once_with_the_refused_entries() -> None:
    lockout = KeypadLockout()
    _fail(lockout, [T0 + i for i in range(5)])
    lockout.refuse()
    lockout.refuse()
    assert lockout.end_notice(T0 + 10) is None  # still locked
    assert lockout.end_notice(T0 + 40) == 2
    assert lockout.end_notice(T0 + 41) is None


@given(st.text(max_size=200))
def test_unreadable_stored_state_starts_afresh(text: str) -> None:
    state = LockoutState.from_json(text)
    assert isinstance(state, LockoutState)


def test_state_round_trips() -> None:
    lockout = KeypadLockout()
    _fail(lockout, [T0 + i for i in range(5)])
    restored = KeypadLockout(LockoutState.from_json(lockout.state.to_json()))
    assert restored.remaining(T0 + 10) == pytest.approx(lockout.remaining(T0 + 10))


class FakeTime:
    """Wall and monotonic clocks a test can move independently."""

    def __init__(self) -> None:
        self.wall = T0
        self.mono = 1000.0
        self.synced: bool | None = True

    def clock(self, last_good: float | None = None) -> Clock:
        return Clock(
            last_good,
            wall=lambda: self.wall,
            monotonic=lambda: self.mono,
            synchronized=lambda: self.synced,
        )

    def run(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def test_the_floor_follows_trusted_time_and_keeps_moving_when_the_wall_jumps_back() -> None:
    t = FakeTime()
    clock = t.clock()
    assert clock.last_good == 0.0
    clock.advance()
    assert clock.last_good == T0
    t.run(100)
    t.wall -= 3600  # the system clock was thrown back an hour
    assert clock.behind
    assert not clock.trusted
    assert clock.advance() == pytest.approx(T0 + 100)  # not lowered, not raised from the wall
    t.run(50)
    assert clock.now() == pytest.approx(T0 + 150)  # the floor moved on with monotonic time


def test_a_reboot_without_network_starts_from_the_persisted_floor() -> None:
    t = FakeTime()
    t.synced = False
    t.wall = T0 - 86_400  # a Pi without RTC woke up with yesterday's time
    t.mono = 5.0
    clock = t.clock(last_good=T0)
    assert not clock.trusted
    assert clock.now() == T0
    t.run(60)
    assert clock.now() == pytest.approx(T0 + 60)


def test_a_forward_jump_on_an_unsynchronised_clock_does_not_raise_the_floor() -> None:
    t = FakeTime()
    clock = t.clock(last_good=T0)
    t.synced = False
    t.run(SYNC_CHECK_INTERVAL_S)  # long enough for the OS's verdict to be read again
    t.wall += 10 * 86_400
    clock.advance()
    assert clock.last_good == pytest.approx(T0 + SYNC_CHECK_INTERVAL_S)
    t.synced = True
    t.run(SYNC_CHECK_INTERVAL_S)
    t.wall -= 10 * 86_400  # corrected back: must not look "behind" a bogus floor
    assert not clock.behind
    assert clock.trusted


def test_signed_cloud_time_is_a_lower_bound_and_fresh_agreement_confirms_the_clock() -> None:
    t = FakeTime()
    t.synced = False
    clock = t.clock()
    old = datetime.fromtimestamp(T0 - 7200, UTC)
    clock.observe_cloud(old)  # a retained document: only a lower bound
    assert clock.last_good == pytest.approx(T0 - 7200 - CLOUD_SKEW_TOLERANCE_S)
    assert not clock.synchronized
    clock.observe_cloud(datetime.fromtimestamp(T0 - 1, UTC), fresh=True)
    assert clock.synchronized
    assert clock.trusted
    t.wall = T0 - 3 * 86_400  # then the wall is set back days: behind the cloud's time
    assert clock.behind
    assert not clock.trusted
    assert clock.now() >= T0 - 1 - CLOUD_SKEW_TOLERANCE_S


def test_a_lock_clock_we_set_raises_the_floor_of_a_pi_booted_into_the_past() -> None:
    t = FakeTime()
    t.synced = False  # no network after the power cut: nothing confirms the clock
    t.wall = T0 - 21 * 86_400  # fake-hwclock restored the time of the last shutdown
    clock = t.clock()
    set_at = T0 - 2 * 86_400  # we set the lock's clock two days ago, from a trusted clock
    assert clock.observe_lock(datetime.fromtimestamp(T0, UTC), set_at)
    assert clock.now() == pytest.approx(T0 - LOCK_SKEW_TOLERANCE_S)
    assert clock.behind  # the dashboard shows the clock as untrusted
    assert not clock.trusted


@pytest.mark.parametrize(
    ("lock_at", "set_at", "why"),
    [
        (T0 - 3 * 86_400, T0 - 2 * 86_400, "the lock's clock is before we set it"),
        (T0 + 40 * 86_400, T0 - 2 * 86_400, "more than a month after we set it"),
        (T0, 0.0, "we never set this lock's clock"),
    ],
)
def test_an_implausible_lock_clock_is_ignored(lock_at: float, set_at: float, why: str) -> None:
    t = FakeTime()
    t.synced = False
    t.wall = T0 - 21 * 86_400
    clock = t.clock()
    assert not clock.observe_lock(datetime.fromtimestamp(lock_at, UTC), set_at), why
    assert clock.now() == t.wall


def test_a_trusted_clock_does_not_listen_to_a_lock() -> None:
    t = FakeTime()
    clock = t.clock()
    clock.advance()
    assert not clock.observe_lock(datetime.fromtimestamp(T0 + 20 * 86_400, UTC), T0 - 86_400)
    assert clock.now() == pytest.approx(T0)


def test_the_os_is_asked_about_synchronisation_at_most_once_per_interval() -> None:
    t = FakeTime()
    asked: list[float] = []

    def synchronized() -> bool:
        asked.append(t.mono)
        return True

    clock = Clock(None, wall=lambda: t.wall, monotonic=lambda: t.mono, synchronized=synchronized)
    for _ in range(1000):  # a keypress storm
        assert clock.trusted
        t.run(0.001)
    assert len(asked) == 1
    t.run(SYNC_CHECK_INTERVAL_S)
    assert clock.trusted
    assert len(asked) == 2


@pytest.mark.parametrize("jump", [-BACKWARD_TOLERANCE_S / 2, BACKWARD_TOLERANCE_S / 2])
def test_small_steps_are_not_jumps(jump: float) -> None:
    t = FakeTime()
    clock = t.clock()
    clock.advance()
    t.wall += jump
    assert clock.trusted


def test_untrusted_policy_deny_keeps_only_permanent_codes() -> None:
    key = b"k" * 32
    state = AccessState(key)
    state.replace(
        [StoredLock("front", "relay", "keypad", "", {})],
        [
            StoredCode(
                "guest", "guest", pin_mac(key, "345678"), T0, T0 + 3600, ("front",), None, None, ""
            ),
            StoredCode(
                "owner", "manager", pin_mac(key, "456789"), None, None, ("front",), None, None, ""
            ),
        ],
    )
    assert state.decide("345678", "front", T0 + 1).granted
    refused = state.decide("345678", "front", T0 + 1, time_limited=False)
    assert refused.reason is DenyReason.CLOCK_UNTRUSTED
    assert state.decide("456789", "front", T0 + 1, time_limited=False).granted
