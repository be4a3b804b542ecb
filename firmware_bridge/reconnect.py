"""Reconnect policy for the keypad port: capped backoff with jitter, one log line per outage."""

from __future__ import annotations

import enum
import errno
import logging
import random
import time
from collections.abc import Callable
from typing import Final

from firmware_bridge.errors import PortError

__all__ = ["ReconnectPolicy", "ReconnectState"]

LOG = logging.getLogger(__name__)

RECONNECT_INITIAL_DELAY_S: Final = 0.1  # a re-enumerating USB CDC device is back within ~100 ms
RECONNECT_MAX_DELAY_S: Final = 5.0  # an unplugged keypad is found within 5 s of its return
RECONNECT_JITTER: Final = 0.2  # +-20 % so restarted agents do not probe in lockstep


class ReconnectState(enum.Enum):
    """Where the port is in its open/retry cycle."""

    IDLE = "idle"  # never opened yet
    OPEN = "open"
    BACKING_OFF = "backing_off"


def describe(error: PortError) -> tuple[int, str]:
    """Return a log level and a hint for an open failure."""
    if error.errno in (errno.EACCES, errno.EPERM):
        return logging.ERROR, "permission denied: is the agent's user in the dialout group?"
    if error.errno == errno.EBUSY:
        return logging.WARNING, "port busy: another process has it open"
    if error.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return logging.WARNING, "port missing: keypad unplugged or not enumerated yet"
    return logging.WARNING, "cannot open the port"


class ReconnectPolicy:
    """Decides how long to wait before reopening, and logs an outage once, not every retry."""

    def __init__(
        self,
        *,
        initial_delay_s: float = RECONNECT_INITIAL_DELAY_S,
        max_delay_s: float = RECONNECT_MAX_DELAY_S,
        jitter: float = RECONNECT_JITTER,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._initial = initial_delay_s
        self._max = max_delay_s
        self._jitter = jitter
        self._rng = rng
        self._clock = clock
        self.state = ReconnectState.IDLE
        self.attempts = 0  # failed opens in the current outage
        self._outage_started = 0.0
        self._logged_hint: str | None = None

    def failed(self, error: PortError) -> float:
        """Record a failed open; return the delay before the next attempt."""
        level, hint = describe(error)
        if self.state is not ReconnectState.BACKING_OFF:
            self._outage_started = self._clock()
            self.attempts = 0
            self._logged_hint = None
        if hint != self._logged_hint:  # once per outage, again only if the cause changes
            LOG.log(
                level,
                "keypad %s (%s); retrying with backoff up to %.0f s",
                error,
                hint,
                self._max,
            )
            self._logged_hint = hint
        self.state = ReconnectState.BACKING_OFF
        base = min(self._max, self._initial * 2.0**self.attempts)
        self.attempts += 1
        return base * (1.0 + self._jitter * (2.0 * self._rng() - 1.0))

    def opened(self, port: str) -> None:
        """Record a successful open."""
        if self.state is ReconnectState.BACKING_OFF:
            LOG.info(
                "keypad port %s back after %.1f s and %d failed attempts",
                port,
                self._clock() - self._outage_started,
                self.attempts,
            )
        self.state = ReconnectState.OPEN
        self.attempts = 0

    def lost(self) -> None:
        """Record that an open port went away; the next failure starts a new outage."""
        self.state = ReconnectState.IDLE
