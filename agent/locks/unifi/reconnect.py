"""When to try the controller again: capped jittered backoff, and errors sorted by what helps."""

from __future__ import annotations

import enum
import logging
import random
import time
from collections.abc import Callable
from typing import Final

from agent.locks.unifi.errors import (
    CertificateRefused,
    NotConfigured,
    ScopeMissing,
    Throttled,
    TokenRejected,
)

log = logging.getLogger(__name__)

RECONNECT_INITIAL_S: Final = 0.5  # a console that restarted its API service is back in seconds
RECONNECT_MAX_S: Final = 30.0  # a console back from a reboot is found within 30 s
RECONNECT_JITTER: Final = 0.2  # +-20 % so gateways behind one console do not retry in lockstep
NEEDS_USER_RETRY_S: Final = 300.0  # a refused token or certificate waits for a person: look rarely
HEALTHY_SESSION_S: Final = 60.0  # a link that held this long was fine: start the backoff afresh


class Verdict(enum.Enum):
    """What an error calls for."""

    BACK_OFF = "back_off"  # transport, 5xx, 429, lost heartbeat: the controller will be back
    NEEDS_USER = "needs_user"  # certificate, token, scope, configuration: a person must act


class LinkState(enum.Enum):
    """Where the link to the controller is."""

    IDLE = "idle"
    CONNECTED = "connected"
    BACKING_OFF = "backing_off"
    NEEDS_USER = "needs_user"


def classify(error: BaseException) -> Verdict:
    """Sort an error into back off / needs a person."""
    if isinstance(error, CertificateRefused | TokenRejected | ScopeMissing | NotConfigured):
        return Verdict.NEEDS_USER
    return Verdict.BACK_OFF


class Backoff:
    """Capped exponential delays with jitter."""

    def __init__(
        self,
        initial_s: float = RECONNECT_INITIAL_S,
        max_s: float = RECONNECT_MAX_S,
        jitter: float = RECONNECT_JITTER,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.jitter = jitter
        self._rng = rng
        self.attempts = 0

    def next_delay(self) -> float:
        """The next delay; each call doubles the base up to the cap."""
        base = min(self.max_s, self.initial_s * 2.0**self.attempts)
        self.attempts += 1
        return base * (1.0 + self.jitter * (2.0 * self._rng() - 1.0))

    def reset(self) -> None:
        """Start again from the initial delay."""
        self.attempts = 0


class ReconnectPolicy:
    """Decides the delay before the next attempt and logs each outage once."""

    def __init__(
        self,
        *,
        initial_s: float = RECONNECT_INITIAL_S,
        max_s: float = RECONNECT_MAX_S,
        jitter: float = RECONNECT_JITTER,
        needs_user_s: float = NEEDS_USER_RETRY_S,
        healthy_s: float = HEALTHY_SESSION_S,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backoff = Backoff(initial_s, max_s, jitter, rng)
        self._max = max_s
        self._needs_user = needs_user_s
        self._healthy = healthy_s
        self._clock = clock
        self.state = LinkState.IDLE
        self.last_error: str | None = None
        self._connected_at = 0.0
        self._logged: str | None = None

    @property
    def attempts(self) -> int:
        """Failures since the last healthy session."""
        return self._backoff.attempts

    def connected(self) -> None:
        """The link is up."""
        if self.state in (LinkState.BACKING_OFF, LinkState.NEEDS_USER):
            log.info("UniFi Access controller reachable again after %d attempts", self.attempts)
        self.state = LinkState.CONNECTED
        self._connected_at = self._clock()
        self.last_error = None
        self._logged = None

    def failed(self, error: BaseException) -> float:
        """A connect failed or a session ended with `error`; return seconds to wait."""
        if (
            self.state is LinkState.CONNECTED
            and self._clock() - self._connected_at >= self._healthy
        ):
            self._backoff.reset()
        self.last_error = str(error) or type(error).__name__
        verdict = classify(error)
        if verdict is Verdict.NEEDS_USER:
            self.state = LinkState.NEEDS_USER
            self._log(
                logging.ERROR, f"{self.last_error} (checking again every {self._needs_user:g} s)"
            )
            return self._needs_user
        self.state = LinkState.BACKING_OFF
        delay = self._backoff.next_delay()
        if isinstance(error, Throttled) and error.retry_after_s is not None:
            delay = max(delay, min(error.retry_after_s, self._needs_user))
        self._log(
            logging.WARNING, f"{self.last_error}; retrying with backoff up to {self._max:g} s"
        )
        return delay

    def _log(self, level: int, message: str) -> None:
        kind = message.split(":", 1)[0]
        if kind != self._logged:  # once per outage, again only when the cause changes
            log.log(level, "UniFi Access: %s", message)
            self._logged = kind
