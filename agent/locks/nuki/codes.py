"""Keypad code reconciliation, sans-IO: desired codes + what the lock holds -> a plan.

Our codes are found on the lock through a persisted mapping (our code id -> keypad code id +
a keyed fingerprint of what we set). Codes on the lock that are not ours are never touched.
Removals go first (they free room), then updates, then additions in the order the codes are
needed; once the lock says it is full, the rest fail as "lock full" without further round trips.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from agent.locks.base import LockCode
from agent.locks.nuki.const import KEYPAD_NAME_LEN
from agent.locks.nuki.keypad_messages import KeypadCode, TimeWindow
from agent.locks.nuki.messages import pack_name
from agent.locks.nuki.store import MappedCode

OPEN_START: Final = datetime(2020, 1, 1, tzinfo=UTC)  # allowed_from of a code valid "from now"
FINGERPRINT_LABEL: Final = b"kasify/nuki-keypad-code/v1\x00"


def pin_rule_error(pin: str) -> str | None:
    """The lock's rule a PIN breaks (exactly 6 digits, no 0, not starting "12"), or None."""
    if len(pin) != 6 or not pin.isdigit():
        return "PIN must be exactly 6 digits"
    if "0" in pin:
        return "PIN must not contain the digit 0"
    if pin.startswith("12"):
        return 'PIN must not start with "12"'
    return None


def window_for(code: LockCode) -> TimeWindow:
    """The keypad window of a code: time limited when it has an end or a start."""
    if code.starts_at is None and code.ends_at is None:
        return TimeWindow()
    start = datetime.fromtimestamp(int(code.starts_at), UTC) if code.starts_at else OPEN_START
    end = datetime.fromtimestamp(int(code.ends_at), UTC) if code.ends_at is not None else None
    return TimeWindow(time_limited=True, allowed_from=start, allowed_until=end)


def keypad_name(code: LockCode) -> str:
    """The name shown in the Nuki app (≤ 20 bytes)."""
    label = code.label or code.code_id
    return pack_name(label, KEYPAD_NAME_LEN).rstrip(b"\x00").decode()


def fingerprint(key: bytes, pin: int, name: str, window: TimeWindow) -> str:
    """A keyed digest of what we set; says "unchanged" without storing the PIN."""
    data = FINGERPRINT_LABEL + struct.pack("<I", pin) + pack_name(name, KEYPAD_NAME_LEN)
    return hmac.new(key, data + window.to_bytes(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Wanted:
    """A desired code in the lock's terms."""

    code_id: str
    pin: int
    name: str
    window: TimeWindow
    fingerprint: str


@dataclass
class Plan:
    """What to do on the lock, and what is already known."""

    removals: list[tuple[str, int]] = field(default_factory=list)  # (our code id, keypad id)
    updates: list[tuple[Wanted, int]] = field(default_factory=list)
    additions: list[Wanted] = field(default_factory=list)
    adopted: dict[str, MappedCode] = field(default_factory=dict)  # found on the lock as they are
    in_place: set[str] = field(default_factory=set)  # already set as wanted
    invalid: dict[str, str] = field(default_factory=dict)  # code id -> why the lock refuses it
    expired: set[str] = field(default_factory=set)
    forgotten: set[str] = field(default_factory=set)  # mapped, but gone from the lock

    @property
    def work(self) -> int:
        """Operations the plan needs on the lock."""
        return len(self.removals) + len(self.updates) + len(self.additions)


def _matches(on_lock: KeypadCode, wanted: Wanted) -> bool:
    return (
        on_lock.code == wanted.pin
        and on_lock.name == wanted.name
        and on_lock.enabled
        and on_lock.window == wanted.window
    )


def plan(
    desired: Sequence[LockCode],
    mapping: Mapping[str, MappedCode],
    on_lock: Sequence[KeypadCode] | None,
    *,
    now: float,
    key: bytes,
) -> Plan:
    """Compare; on_lock None trusts the mapping's fingerprints (no list read)."""
    result = Plan()
    wanted: dict[str, Wanted] = {}
    for code in sorted(desired, key=lambda c: (c.starts_at or 0.0, c.code_id)):
        if code.ends_at is not None and code.ends_at <= now:
            result.expired.add(code.code_id)
            continue
        problem = pin_rule_error(code.pin)
        if problem is not None:
            result.invalid[code.code_id] = problem
            continue
        name, window = keypad_name(code), window_for(code)
        pin = int(code.pin)
        wanted[code.code_id] = Wanted(
            code.code_id, pin, name, window, fingerprint(key, pin, name, window)
        )
    held = {c.code_id: c for c in on_lock} if on_lock is not None else None
    for code_id, old in mapping.items():
        if code_id in wanted:
            continue
        if held is None or old.keypad_id in held:
            result.removals.append((code_id, old.keypad_id))
        else:
            result.forgotten.add(code_id)
    for code_id, want in wanted.items():
        mapped = mapping.get(code_id)
        if mapped is not None:
            if held is None:
                if mapped.fingerprint == want.fingerprint:
                    result.in_place.add(code_id)
                else:
                    result.updates.append((want, mapped.keypad_id))
                continue
            current = held.get(mapped.keypad_id)
            if current is not None:
                if _matches(current, want):
                    result.in_place.add(code_id)
                else:
                    result.updates.append((want, mapped.keypad_id))
                continue
            result.forgotten.add(code_id)
        adoptable = _find_adoptable(held, want, mapping) if held is not None else None
        if adoptable is not None:
            result.adopted[code_id] = MappedCode(adoptable.code_id, want.fingerprint)
            if not _matches(adoptable, want):
                result.updates.append((want, adoptable.code_id))
            else:
                result.in_place.add(code_id)
        else:
            result.additions.append(want)
    return result


def _find_adoptable(
    held: Mapping[int, KeypadCode], want: Wanted, mapping: Mapping[str, MappedCode]
) -> KeypadCode | None:
    """A code on the lock that is ours but unmapped (same PIN and name, e.g. after a lost file)."""
    mapped_ids = {m.keypad_id for m in mapping.values()}
    for code in held.values():
        if code.code_id not in mapped_ids and code.code == want.pin and code.name == want.name:
            return code
    return None
