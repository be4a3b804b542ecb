"""Clock trust for a Pi without a real-time clock.

The agent keeps a *floor*: a time known to have passed. It comes from the persisted last known
good time, from the cloud's signed `issued_at`, and from the system clock while that is
synchronised, and it advances with the monotonic clock in between, so it keeps moving even when the
system clock is frozen or thrown back.

Policy for deciding on codes (documented in ARCHITECTURE.md):
- Decisions use `now() = max(system time, floor)`. A clock that went back below the floor can
  therefore never make an expired code valid again.
- A lock's clock that this agent set (Nuki time sync) also raises the floor when it is plausible
  (see `observe_lock`); it never makes the clock trusted.
- The clock is *trusted* when the kernel (or systemd-timesyncd) says it is synchronised, or when a
  signed cloud time from this boot agrees with it, and it is not behind the floor. Events carry
  `clock_trusted`; reported state carries the whole status.
- With `untrusted = "honour"` (the default) time-limited codes are still decided at `now()` while
  the clock is untrusted, so a guest arriving after a power cut during an internet outage gets in;
  the worst case is a code that expired during the outage itself working until the clock is
  confirmed. With `untrusted = "deny"` time-limited codes are refused until the clock is trusted
  (permanent codes keep working).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

BACKWARD_TOLERANCE_S = 2.0  # NTP slews and small steps are normal; more than this is a jump back
CLOUD_SKEW_TOLERANCE_S = 300.0  # a signed issued_at may be this much ahead of real time (skew)
CLOUD_AGREEMENT_S = 300.0  # system time within this of a fresh cloud time counts as checked
TIME_ERROR = 5  # adjtimex(2): the kernel's clock is not synchronised
_TIMEX_BUFFER = 512  # larger than struct timex on every Linux ABI; modes (first field) = 0: read
TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")
SYNC_CHECK_INTERVAL_S = 10.0  # the OS's verdict is asked at most this often (not per keypress)
LOCK_SKEW_TOLERANCE_S = 3600.0  # a lock's RTC, set by us, drifts far less than this in a month
LOCK_SYNC_MAX_AGE_S = 30 * 86400.0  # a lock's clock counts only this long after we last set it


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, loaded once (find_library runs a subprocess: never on a hot path)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    except OSError:
        return None


def system_clock_synchronized() -> bool | None:
    """Whether the system says the clock is synchronised; None where it cannot tell."""
    if TIMESYNCD_FLAG.exists():  # systemd-timesyncd touches it after its first good sync
        return True
    libc = _libc()
    if libc is None:
        return None
    try:
        buffer = ctypes.create_string_buffer(_TIMEX_BUFFER)
        state = int(libc.adjtimex(buffer))
    except AttributeError:
        return None
    if state < 0:  # e.g. refused by a seccomp filter (systemd's ProtectClock=)
        return None
    return state != TIME_ERROR


class Clock:
    """Wall time, a floor of known-passed time, and how far we trust the wall."""

    def __init__(
        self,
        last_good: float | None = None,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        synchronized: Callable[[], bool | None] = system_clock_synchronized,
        sync_check_interval_s: float = SYNC_CHECK_INTERVAL_S,
    ) -> None:
        self._wall = wall
        self._mono = monotonic
        self._synchronized = synchronized
        self._sync_check_interval_s = sync_check_interval_s
        self._floor_base = last_good or 0.0
        self._mono_base = monotonic()
        self._cloud_checked = False
        self._synced: tuple[float, bool] | None = None  # (when asked, the OS's answer)
        self.cloud_offset_s: float | None = None

    @property
    def last_good(self) -> float:
        """The floor: a time known to have passed (persist this); 0 before we know any."""
        if not self._floor_base:
            return 0.0
        return self._floor_base + (self._mono() - self._mono_base)

    def _raise_floor(self, ts: float) -> None:
        if ts > self.last_good:
            self._floor_base, self._mono_base = ts, self._mono()

    def now(self) -> float:
        """The time to decide with: never earlier than the floor."""
        return max(self._wall(), self.last_good)

    @property
    def synchronized(self) -> bool:
        """Whether the system clock has been confirmed (by the OS or by a signed cloud time)."""
        if self._cloud_checked:
            return True
        now = self._mono()
        if self._synced is None or now - self._synced[0] >= self._sync_check_interval_s:
            self._synced = (now, bool(self._synchronized()))
        return self._synced[1]

    @property
    def behind(self) -> bool:
        """Whether the system clock is behind a time we know has passed."""
        return self._wall() < self.last_good - BACKWARD_TOLERANCE_S

    @property
    def trusted(self) -> bool:
        """Synchronised and not behind the floor."""
        return self.synchronized and not self.behind

    def advance(self) -> float:
        """Raise the floor to the system time when that is trusted; returns the floor."""
        if self.trusted:
            self._raise_floor(self._wall())
        return self.last_good

    def observe_cloud(self, issued_at: datetime, *, fresh: bool = False) -> None:
        """Cross-check with a time the cloud signed.

        Any signed time is a lower bound of real time (allowing for the cloud's own skew); a
        `fresh` one (a command valid for minutes, not a retained document that may be old) also
        confirms the system clock when the two agree.
        """
        cloud = issued_at.timestamp()
        self.cloud_offset_s = self._wall() - cloud
        self._raise_floor(cloud - CLOUD_SKEW_TOLERANCE_S)
        if fresh and abs(self.cloud_offset_s) <= CLOUD_AGREEMENT_S:
            self._cloud_checked = True

    def observe_lock(self, lock_time: datetime, set_at: float) -> bool:
        """Cross-check with the clock of a lock this agent set at `set_at` (from a trusted clock).

        A Pi without an RTC can boot into the past with no network to correct it (fake-hwclock
        restores the last shutdown time); the lock kept counting on its battery. While the system
        clock is not trusted, the lock's time less an hour raises the floor (never the other way,
        never "trusted") when it is plausible: not before the moment we set it, and within a
        month of it (a lock whose battery died restarts its clock from zero). Returns whether it
        was used.
        """
        at = lock_time.timestamp()
        if self.trusted or not set_at or not set_at <= at <= set_at + LOCK_SYNC_MAX_AGE_S:
            return False
        self._raise_floor(at - LOCK_SKEW_TOLERANCE_S)
        return True

    @staticmethod
    def utc(ts: float) -> datetime:
        """A Unix time as an aware UTC datetime."""
        return datetime.fromtimestamp(ts, UTC)
