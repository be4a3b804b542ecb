"""PIN rules and code windows: pure functions, no database."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from sync_protocol.models import LockKind

PIN_LENGTH = 6  # generated PINs: what every lock kind accepts
PIN_DIGITS = "123456789"  # the Nuki Keypad has no 0 key
FORBIDDEN_PREFIX = "12"  # Nuki refuses codes starting with 12
MIN_PIN_LENGTH = 4  # the shortest any lock kind accepts; chosen PINs are checked per property
MAX_PIN_LENGTH = 12
MAX_PIN_ATTEMPTS = 200  # ~470k PINs; running out means something is badly wrong


class NoFreePin(RuntimeError):
    """Every attempt hit a PIN already in use."""


@dataclass(frozen=True, slots=True)
class PinRule:
    """One rule a lock kind imposes on PINs; `broken(pin)` is True when the PIN breaks it."""

    name: str
    broken: Callable[[str], bool]


def _weak(pin: str) -> bool:
    """One digit repeated, or a straight run up or down (123456, 987654)."""
    if not (pin.isascii() and pin.isdigit()):
        return False
    if len(set(pin)) == 1:
        return True
    steps = {int(b) - int(a) for a, b in pairwise(pin)}
    return steps in ({1}, {-1})


COMMON_RULES = (
    PinRule("digits only (0-9)", lambda pin: not (pin.isascii() and pin.isdigit())),
    PinRule("not one repeated digit or a straight run like 345678 (too easy to guess)", _weak),
)
RULES: dict[LockKind, tuple[PinRule, ...]] = {
    LockKind.NUKI: (
        PinRule("Nuki Keypad: exactly 6 digits", lambda pin: len(pin) != 6),
        PinRule("Nuki Keypad: no 0 (the keypad has no 0 key)", lambda pin: "0" in pin),
        PinRule(
            f"Nuki Keypad: must not start with {FORBIDDEN_PREFIX}",
            lambda pin: pin.startswith(FORBIDDEN_PREFIX),
        ),
    ),
    LockKind.UNIFI: (
        PinRule("UniFi Access readers: 4 to 8 digits", lambda pin: not 4 <= len(pin) <= 8),
    ),
    LockKind.RELAY: (
        PinRule("Kasify keypad: 4 to 12 digits", lambda pin: not 4 <= len(pin) <= 12),
    ),
}


def pin_problems(pin: str, kinds: Iterable[LockKind] = tuple(LockKind)) -> list[str]:
    """Every rule `pin` breaks for locks of these kinds (all kinds when none are given)."""
    wanted = set(kinds) or set(LockKind)
    rules = [*COMMON_RULES]
    for kind in LockKind:
        if kind in wanted:
            rules.extend(RULES[kind])
    return [rule.name for rule in rules if rule.broken(pin)]


def pin_problem(pin: str, kinds: Iterable[LockKind] = tuple(LockKind)) -> str | None:
    """The first rule `pin` breaks, or None if every lock of these kinds accepts it."""
    problems = pin_problems(pin, kinds)
    return problems[0] if problems else None


def generate_pin(taken: Collection[str], choice: Callable[[str], str] = secrets.choice) -> str:
    """A random PIN every lock kind accepts, not weak and not in `taken`.

    Drawn from `secrets` digit by digit, so nothing about a booking (phone, dates) predicts it.
    """
    for _ in range(MAX_PIN_ATTEMPTS):
        pin = "".join(choice(PIN_DIGITS) for _ in range(PIN_LENGTH))
        if pin not in taken and not pin_problems(pin):
            return pin
    raise NoFreePin(f"no free PIN after {MAX_PIN_ATTEMPTS} attempts ({len(taken)} in use)")


def overlaps(
    a_start: datetime | None,
    a_end: datetime | None,
    b_start: datetime | None,
    b_end: datetime | None,
) -> bool:
    """Whether two half-open windows share an instant; None means unbounded."""
    a_before_b_ends = a_start is None or b_end is None or a_start < b_end
    b_before_a_ends = b_start is None or a_end is None or b_start < a_end
    return a_before_b_ends and b_before_a_ends


def instants(day: date, clock: time, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Both readings of a local time (they differ only in a DST gap or overlap), in UTC."""
    first = datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)
    second = datetime.combine(day, clock, tzinfo=zone).replace(fold=1).astimezone(UTC)
    return min(first, second), max(first, second)


def code_window(
    *,
    timezone: str,
    check_in: date,
    check_out: date,
    check_in_time: time,
    check_out_time: time,
    early_minutes: int,
    late_minutes: int,
) -> tuple[datetime, datetime]:
    """A guest code's window in UTC, from local check-in (less the early buffer) to check-out.

    Times are read in the property's zone on the given dates, so the window follows DST. A local
    time that occurs twice (clocks going back) or never (clocks going forward) is read to the
    guest's advantage: the earlier instant for the start, the later one for the end.
    """
    zone = ZoneInfo(timezone)
    start, _ = instants(check_in, check_in_time, zone)
    _, end = instants(check_out, check_out_time, zone)
    return start - timedelta(minutes=early_minutes), end + timedelta(minutes=late_minutes)


def local_instant(value: datetime, timezone: str, *, late: bool = False) -> datetime:
    """An aware UTC instant; a naive `value` is read as local time in `timezone`.

    A naive time in a DST gap or overlap reads as the earlier instant, or the later with `late`.
    """
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    early_at, late_at = instants(value.date(), value.time(), ZoneInfo(timezone))
    return late_at if late else early_at


def local_date(value: datetime, timezone: str) -> date:
    """The calendar date of an instant at the property."""
    return value.astimezone(ZoneInfo(timezone)).date()
