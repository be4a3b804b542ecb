"""The door decision: windows, lock scope, malformed entries, and PIN MACs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.access import AccessState, DenyReason, pin_mac
from agent.clock import Clock
from agent.store import StoredCode, StoredLock

KEY = b"k" * 32
T0 = 1_800_000_000.0
LOCK = StoredLock("front", "relay", "keypad", "Front", {})
BACK = StoredLock("back", "relay", "keypad2", "Back", {})


def _code(
    code_id: str,
    pin: str,
    starts: float | None,
    ends: float | None,
    locks: tuple[str, ...] = ("front",),
) -> StoredCode:
    return StoredCode(code_id, "guest", pin_mac(KEY, pin), starts, ends, locks, "b", None, "")


def _state(*codes: StoredCode) -> AccessState:
    state = AccessState(KEY)
    state.replace([LOCK, BACK], codes)
    return state


def test_valid_code_inside_its_window_opens() -> None:
    state = _state(_code("c1", "345678", T0, T0 + 3600))
    decision = state.decide("345678", "front", T0 + 10)
    assert decision.granted
    assert decision.code is not None
    assert decision.code.id == "c1"


@pytest.mark.parametrize(
    ("entry", "lock", "now", "reason"),
    [
        ("345679", "front", T0 + 10, DenyReason.UNKNOWN_CODE),
        ("345678", "front", T0 - 1, DenyReason.NOT_YET_VALID),
        ("345678", "front", T0 + 3600, DenyReason.EXPIRED),  # the end is exclusive
        ("345678", "back", T0 + 10, DenyReason.WRONG_LOCK),
        ("345678", None, T0 + 10, DenyReason.NO_LOCK),
        ("34", "front", T0 + 10, DenyReason.MALFORMED),
        ("3456789012345", "front", T0 + 10, DenyReason.MALFORMED),
        ("34567a", "front", T0 + 10, DenyReason.MALFORMED),
    ],
)
def test_refusals_say_why(entry: str, lock: str | None, now: float, reason: DenyReason) -> None:
    decision = _state(_code("c1", "345678", T0, T0 + 3600)).decide(entry, lock, now)
    assert not decision.granted
    assert decision.reason is reason


def test_same_pin_in_two_windows_uses_the_current_one() -> None:
    state = _state(
        _code("old", "345678", T0 - 7200, T0 - 3600),
        _code("new", "345678", T0, T0 + 3600),
    )
    decision = state.decide("345678", "front", T0 + 5)
    assert decision.granted
    assert decision.code is not None
    assert decision.code.id == "new"
    late = state.decide("345678", "front", T0 + 4000)
    assert late.reason is DenyReason.EXPIRED


def test_permanent_codes_have_no_window() -> None:
    assert _state(_code("m", "456789", None, None)).decide("456789", "front", T0).granted


def test_a_clock_that_jumped_back_cannot_revive_an_expired_code() -> None:
    wall = [T0 + 7200.0]
    clock = Clock(wall=lambda: wall[0], synchronized=lambda: True)
    clock.advance()
    wall[0] = T0 + 100  # the Pi rebooted without network and its clock is behind
    state = _state(_code("c1", "345678", T0, T0 + 3600))
    assert not clock.trusted
    assert state.decide("345678", "front", clock.now()).reason is DenyReason.EXPIRED


@given(st.text(alphabet="0123456789", min_size=4, max_size=12))
def test_only_the_exact_pin_opens(entry: str) -> None:
    state = _state(_code("c1", "345678", T0, T0 + 3600))
    assert state.decide(entry, "front", T0 + 1).granted == (entry == "345678")


def test_macs_depend_on_the_key() -> None:
    assert pin_mac(KEY, "345678") != pin_mac(b"x" * 32, "345678")
    assert b"345678" not in pin_mac(KEY, "345678")
