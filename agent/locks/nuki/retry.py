"""Retry and reconnect policy for Nuki locks, kept apart from the client that obeys it.

Errors sort into: retry now (a lost or mangled frame), new challenge (BAD_NONCE, once), back off
(BUSY), reconnect (the link failed; quickly, a few times), give up and tell the user (a rejected
PIN, a lockout, anything the lock refuses for good).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Final

from agent.locks.nuki.const import ErrorCode
from agent.locks.nuki.errors import (
    FrameError,
    NukiLockError,
    NukiTransportError,
    ReplayedFrame,
)

QUICK_RETRY_DELAY_S: Final = 0.1  # connect/write failures: retry about 100 ms later
QUICK_ATTEMPTS: Final = 3
BUSY_ATTEMPTS: Final = 5
BUSY_BASE_S: Final = 0.5  # the motor of another action runs for ~2-4 s
BACKOFF_CAP_S: Final = 8.0
RECONNECT_BASE_S: Final = 1.0  # background work (codes, refresh) after a failed connection
RECONNECT_CAP_S: Final = 300.0  # a lock out of range is asked at most every 5 minutes
JITTER: Final = 0.2  # ±20 % so several locks do not retry in step


class Decision(Enum):
    """What to do after an error."""

    IGNORE = auto()  # a replayed frame: drop it, keep waiting
    RETRY_NOW = auto()
    NEW_CHALLENGE = auto()
    BACK_OFF = auto()
    RECONNECT = auto()
    GIVE_UP = auto()


STOP_CODES: Final = frozenset(
    {ErrorCode.BAD_PIN, ErrorCode.TOO_MANY_PIN_ATTEMPTS, ErrorCode.NOT_AUTHORIZED,
     ErrorCode.INVALID_AUTH_ID}
)  # fmt: skip


def classify(error: BaseException) -> Decision:
    """Sort an error into a decision."""
    if isinstance(error, ReplayedFrame):
        return Decision.IGNORE
    if isinstance(error, NukiLockError):
        if error.code == ErrorCode.BAD_NONCE:
            return Decision.NEW_CHALLENGE
        if error.code == ErrorCode.BUSY:
            return Decision.BACK_OFF
        return Decision.GIVE_UP
    if isinstance(error, FrameError):
        return Decision.RETRY_NOW
    if isinstance(error, NukiTransportError):
        return Decision.RECONNECT
    return Decision.GIVE_UP


def jittered(delay: float, rng: random.Random, jitter: float = JITTER) -> float:
    """delay ± jitter."""
    return max(0.0, delay * (1.0 + rng.uniform(-jitter, jitter)))


@dataclass
class RetryPolicy:
    """How often and how long to retry one operation."""

    quick_attempts: int = QUICK_ATTEMPTS
    quick_delay_s: float = QUICK_RETRY_DELAY_S
    busy_attempts: int = BUSY_ATTEMPTS
    busy_base_s: float = BUSY_BASE_S
    cap_s: float = BACKOFF_CAP_S
    nonce_retries: int = 1  # BAD_NONCE: fetch a new challenge and retry once
    rng: random.Random = field(default_factory=random.Random)

    def busy_delay(self, attempt: int) -> float:
        """Capped, jittered exponential wait before the attempt-th retry after BUSY (0-based)."""
        return jittered(min(self.cap_s, self.busy_base_s * 2**attempt), self.rng)

    def quick_delay(self) -> float:
        """Wait before a quick retry."""
        return jittered(self.quick_delay_s, self.rng)


@dataclass
class Backoff:
    """Capped jittered exponential backoff for background reconnects; reset on success."""

    base_s: float = RECONNECT_BASE_S
    cap_s: float = RECONNECT_CAP_S
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay(self) -> float:
        """Record a failure; return how long to wait before the next attempt."""
        delay = min(self.cap_s, self.base_s * 2 ** min(self.failures, 32))
        self.failures += 1
        return jittered(delay, self.rng)

    def reset(self) -> None:
        """The last attempt worked."""
        self.failures = 0
