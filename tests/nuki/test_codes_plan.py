"""Keypad code planning, sans-IO: rules, windows, adoption, removal, expiry, fingerprints."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.locks.nuki.codes import OPEN_START, fingerprint, pin_rule_error, plan, window_for
from agent.locks.nuki.keypad_messages import KeypadCode, TimeWindow
from agent.locks.nuki.store import MappedCode
from tests.nuki.support import code

KEY = b"k" * 32
NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("pin", "reason"),
    [
        ("345678", None),
        ("34567", "exactly 6 digits"),
        ("3456789", "exactly 6 digits"),
        ("34567a", "exactly 6 digits"),
        ("345670", "digit 0"),
        ("128456", 'start with "12"'),
    ],
)
def test_pin_rules_of_the_lock(pin: str, reason: str | None) -> None:
    error = pin_rule_error(pin)
    if reason is None:
        assert error is None
    else:
        assert error is not None
        assert reason in error


def test_windows_follow_the_code() -> None:
    assert window_for(code("a", "345678")) == TimeWindow()
    limited = window_for(code("a", "345678", start=NOW, end=NOW + 3600))
    assert limited.time_limited
    assert limited.allowed_from == datetime.fromtimestamp(NOW, UTC)
    assert limited.allowed_until == datetime.fromtimestamp(NOW + 3600, UTC)
    assert window_for(code("a", "345678", end=NOW)).allowed_from == OPEN_START


def test_a_fresh_lock_gets_every_valid_code_in_the_order_they_are_needed() -> None:
    desired = [
        code("late", "345678", start=NOW + 7200, end=NOW + 9000),
        code("now", "456789", start=NOW - 60, end=NOW + 3600),
        code("bad", "120000"),
        code("gone", "567891", end=NOW - 1),
    ]
    work = plan(desired, {}, [], now=NOW, key=KEY)
    assert [w.code_id for w in work.additions] == ["now", "late"]
    assert set(work.invalid) == {"bad"}
    assert work.expired == {"gone"}


def test_mapped_codes_are_kept_updated_or_removed_and_foreign_codes_left_alone() -> None:
    desired = [code("same", "345678"), code("changed", "456789", end=NOW + 60)]
    on_lock = [
        KeypadCode(1, 345678, "same", True, TimeWindow()),
        KeypadCode(2, 456789, "changed", True, TimeWindow()),
        KeypadCode(3, 567891, "removed", True, TimeWindow()),
        KeypadCode(4, 678912, "the host's own", True, TimeWindow()),
    ]
    mapping = {
        "same": MappedCode(1, "x"),
        "changed": MappedCode(2, "y"),
        "removed": MappedCode(3, "z"),
        "vanished": MappedCode(9, "w"),
    }
    work = plan(desired, mapping, on_lock, now=NOW, key=KEY)
    assert work.in_place == {"same"}
    assert [(w.code_id, keypad_id) for w, keypad_id in work.updates] == [("changed", 2)]
    assert work.removals == [("removed", 3)]
    assert work.forgotten == {"vanished"}
    assert work.additions == []


def test_an_unmapped_code_of_ours_is_adopted_not_added_twice() -> None:
    desired = [code("c1", "345678", label="Guest Ada")]
    on_lock = [KeypadCode(7, 345678, "Guest Ada", True, TimeWindow())]
    work = plan(desired, {}, on_lock, now=NOW, key=KEY)
    assert work.adopted["c1"].keypad_id == 7
    assert work.in_place == {"c1"}
    assert work.additions == []


def test_fingerprints_depend_on_everything_set_and_hide_the_pin() -> None:
    window = TimeWindow()
    a = fingerprint(KEY, 345678, "n", window)
    assert a != fingerprint(KEY, 345679, "n", window)
    assert a != fingerprint(KEY, 345678, "m", window)
    assert a != fingerprint(b"o" * 32, 345678, "n", window)
    assert "345678" not in a
