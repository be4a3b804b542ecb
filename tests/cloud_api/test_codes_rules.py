"""PIN rules and code windows, as pure functions."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_api.codes import (
    PIN_DIGITS,
    NoFreePin,
    code_window,
    generate_pin,
    overlaps,
    pin_problem,
)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@given(st.integers(), st.sets(st.text(PIN_DIGITS, min_size=6, max_size=6), max_size=500))
def test_generated_pins_follow_the_rules_and_avoid_taken_ones(seed: int, taken: set[str]) -> None:
    pin = generate_pin(taken, choice=random.Random(seed).choice)
    assert pin_problem(pin) is None
    assert len(pin) == 6
    assert set(pin) <= set("123456789")
    assert not pin.startswith("12")
    assert pin not in taken


def _run_or_repeat(pin: str) -> bool:
    if not (pin.isascii() and pin.isdigit()):
        return False
    steps = {int(b) - int(a) for a, b in pairwise(pin)}
    return len(set(pin)) == 1 or steps in ({1}, {-1})


@given(st.text(max_size=8))
def test_pin_problem_accepts_exactly_the_keypad_pins(pin: str) -> None:
    valid = len(pin) == 6 and all(c in "123456789" for c in pin) and not pin.startswith("12")
    valid = valid and not _run_or_repeat(pin)
    assert (pin_problem(pin) is None) == valid


def test_generated_pin_with_the_system_random_source() -> None:
    pins = {generate_pin(set()) for _ in range(200)}
    assert all(pin_problem(p) is None for p in pins)
    assert len(pins) > 190  # ~472k possibilities: repeats in 200 draws are rare


def test_no_free_pin_is_an_error_not_a_loop() -> None:
    with pytest.raises(NoFreePin):
        generate_pin({"111111"}, choice=lambda _digits: "1")


def test_overlaps_treats_none_as_unbounded_and_windows_as_half_open() -> None:
    a, b, c = _utc("2030-01-01T00:00"), _utc("2030-01-02T00:00"), _utc("2030-01-03T00:00")
    assert overlaps(a, c, b, None)
    assert not overlaps(a, b, b, c)  # touching windows do not overlap
    assert overlaps(None, None, a, b)
    assert not overlaps(b, c, None, a)


def _window(
    zone: str, day_in: date, day_out: date, t_in: time, t_out: time, early: int = 0, late: int = 0
) -> tuple[datetime, datetime]:
    return code_window(
        timezone=zone,
        check_in=day_in,
        check_out=day_out,
        check_in_time=t_in,
        check_out_time=t_out,
        early_minutes=early,
        late_minutes=late,
    )


def test_window_follows_dst_in_both_directions() -> None:
    spring = _window("Europe/Madrid", date(2025, 3, 28), date(2025, 4, 1), time(15), time(11))
    assert spring == (_utc("2025-03-28T14:00"), _utc("2025-04-01T09:00"))
    autumn = _window("Europe/Madrid", date(2025, 10, 24), date(2025, 10, 28), time(15), time(11))
    assert autumn == (_utc("2025-10-24T13:00"), _utc("2025-10-28T10:00"))


def test_buffers_are_real_minutes_across_the_dst_jump() -> None:
    # Check-in 04:00 CEST on the day clocks jump at 02:00 CET; 3 h early is 00:00 CET (23:00Z).
    start, _ = _window(
        "Europe/Madrid", date(2025, 3, 30), date(2025, 3, 31), time(4), time(11), early=180
    )
    assert start == _utc("2025-03-29T23:00")


def test_local_times_in_a_gap_or_overlap_favour_the_guest() -> None:
    # 02:30 does not exist in Madrid on 2025-03-30: start at the earlier reading (01:30 CET).
    madrid = "Europe/Madrid"
    start, _ = _window(madrid, date(2025, 3, 30), date(2025, 3, 31), time(2, 30), time(11))
    assert start == _utc("2025-03-30T00:30")
    # 02:30 happens twice on 2025-10-26: start at the first, end at the second.
    start, _ = _window(madrid, date(2025, 10, 26), date(2025, 10, 27), time(2, 30), time(11))
    assert start == _utc("2025-10-26T00:30")
    _, end = _window(madrid, date(2025, 10, 25), date(2025, 10, 26), time(15), time(2, 30))
    assert end == _utc("2025-10-26T01:30")
