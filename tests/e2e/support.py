"""Waiting for a condition in the end-to-end tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
POLL_S = 0.1


def until(fetch: Callable[[], T], check: Callable[[T], bool], timeout_s: float = 30.0) -> T:
    """Fetch until `check` holds; fail with the last value after `timeout_s` (a bound only)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = fetch()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout_s} s; last value: {value}")
        time.sleep(POLL_S)
