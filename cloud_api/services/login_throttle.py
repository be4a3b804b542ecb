"""Slow down password guessing: failed logins are counted per account and client address.

Counts live in the process (one API process per deployment is the design; several processes
each count on their own). A login that succeeds clears its account's count from that address.
An account is refused from one address after `per_address` failures there within the window,
and from everywhere after `per_account` failures in all, so spreading guesses over many
addresses does not help much either; the price is that someone guessing hard enough can keep a
host waiting for the window, never lock them out for longer.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from cloud_api.errors import TooManyRequests

PER_ADDRESS = 10  # failures of one account from one address within the window
PER_ACCOUNT = 50  # failures of one account from any address within the window
WINDOW_S = 15 * 60.0
PRUNE_AT = 10_000  # keys held before stale ones are dropped


class LoginThrottle:
    """Sliding-window counts of failed logins."""

    def __init__(
        self,
        *,
        per_address: int = PER_ADDRESS,
        per_account: int = PER_ACCOUNT,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = {"address": per_address, "account": per_account}
        self._window_s = window_s
        self._clock = clock
        self._failures: dict[tuple[str, ...], deque[float]] = {}

    @staticmethod
    def _keys(email: str, address: str) -> dict[str, tuple[str, ...]]:
        account = email.strip().lower()
        return {"address": ("address", account, address), "account": ("account", account)}

    def check(self, email: str, address: str) -> None:
        """Raise TooManyRequests (with the seconds to wait) when this login must not be tried."""
        now = self._clock()
        wait = 0.0
        for kind, key in self._keys(email, address).items():
            failures = self._recent(key, now)
            limit = self._limits[kind]
            if len(failures) >= limit:
                wait = max(wait, failures[-limit] + self._window_s - now)
        if wait > 0:
            minutes = max(1, math.ceil(wait / 60))
            raise TooManyRequests(
                f"too many failed logins for this account; try again in {minutes} minute"
                + ("s" if minutes > 1 else ""),
                retry_after_s=math.ceil(wait),
            )

    def failed(self, email: str, address: str) -> None:
        """Count a failed login."""
        now = self._clock()
        if len(self._failures) >= PRUNE_AT:
            self._prune(now)
        for key in self._keys(email, address).values():
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, email: str, address: str) -> None:
        """The password was right: forget this address's failures for the account."""
        self._failures.pop(self._keys(email, address)["address"], None)

    def _recent(self, key: tuple[str, ...], now: float) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self._window_s:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def _prune(self, now: float) -> None:
        for key in list(self._failures):
            self._recent(key, now)
