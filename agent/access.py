"""The door decision for a typed code: pure, fast, no I/O."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from agent.store import StoredCode, StoredLock

MIN_CODE_DIGITS = 4
MAX_CODE_DIGITS = 12


def pin_mac(key: bytes, pin: str) -> bytes:
    """The keyed MAC under which a PIN is cached; the PIN itself is never stored."""
    return hmac.new(key, pin.encode("ascii"), hashlib.sha256).digest()


class DenyReason(StrEnum):
    """Why a typed code did not open the door."""

    MALFORMED = "malformed_entry"
    UNKNOWN_CODE = "unknown_code"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    WRONG_LOCK = "wrong_lock"
    NO_LOCK = "no_lock"
    CLOCK_UNTRUSTED = "clock_untrusted"  # a time-limited code while the clock is unconfirmed
    LOCKED_OUT = "locked_out"  # the keypad refuses entries after repeated wrong codes


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for one typed code."""

    granted: bool
    reason: DenyReason | None = None
    code: StoredCode | None = None


def well_formed(entry: str) -> bool:
    """Whether a keypad entry could be a PIN at all."""
    return MIN_CODE_DIGITS <= len(entry) <= MAX_CODE_DIGITS and entry.isascii() and entry.isdigit()


# When several codes share a PIN (non-overlapping windows), report the most telling refusal.
_PRECEDENCE = (
    DenyReason.WRONG_LOCK,
    DenyReason.CLOCK_UNTRUSTED,
    DenyReason.NOT_YET_VALID,
    DenyReason.EXPIRED,
)


class AccessState:
    """The applied locks and codes, indexed by PIN MAC for the decision path."""

    def __init__(self, pin_key: bytes) -> None:
        self._pin_key = pin_key
        self._by_mac: dict[bytes, tuple[StoredCode, ...]] = {}
        self._locks: dict[str, StoredLock] = {}
        self.codes: tuple[StoredCode, ...] = ()

    def replace(self, locks: Iterable[StoredLock], codes: Iterable[StoredCode]) -> None:
        """Swap in a newly applied desired state (atomically, from the loop's point of view)."""
        by_mac: dict[bytes, list[StoredCode]] = {}
        all_codes = tuple(codes)
        for code in all_codes:
            by_mac.setdefault(code.pin_mac, []).append(code)
        self._by_mac = {mac: tuple(group) for mac, group in by_mac.items()}
        self._locks = {lock.id: lock for lock in locks}
        self.codes = all_codes

    @property
    def locks(self) -> tuple[StoredLock, ...]:
        """The locks this gateway drives."""
        return tuple(self._locks.values())

    def locks_for(self, kind: str, ref: str) -> tuple[StoredLock, ...]:
        """Locks of one kind bound to one device reference (e.g. the keypad's relay)."""
        return tuple(x for x in self._locks.values() if x.kind == kind and x.ref == ref)

    def decide(
        self, entry: str, lock_id: str | None, now: float, *, time_limited: bool = True
    ) -> Decision:
        """Whether `entry`, typed at a keypad opening `lock_id`, opens it at time `now`.

        With `time_limited=False` (the clock cannot be trusted and the site chose to deny) only
        codes without a window open the door.
        """
        if not well_formed(entry):
            return Decision(False, DenyReason.MALFORMED)
        if lock_id is None:
            return Decision(False, DenyReason.NO_LOCK)
        mac = pin_mac(self._pin_key, entry)
        candidates = self._by_mac.get(mac, ())
        refusals: list[tuple[DenyReason, StoredCode]] = []
        for code in candidates:
            if not hmac.compare_digest(code.pin_mac, mac):
                continue
            if lock_id not in code.lock_ids:
                refusals.append((DenyReason.WRONG_LOCK, code))
            elif not time_limited and (code.starts_at is not None or code.ends_at is not None):
                refusals.append((DenyReason.CLOCK_UNTRUSTED, code))
            elif code.starts_at is not None and now < code.starts_at:
                refusals.append((DenyReason.NOT_YET_VALID, code))
            elif code.ends_at is not None and now >= code.ends_at:
                refusals.append((DenyReason.EXPIRED, code))
            else:
                return Decision(True, None, code)
        if not refusals:
            return Decision(False, DenyReason.UNKNOWN_CODE)
        reason, code = min(refusals, key=lambda r: _PRECEDENCE.index(r[0]))
        return Decision(False, reason, code)
