"""Keypad lockout: after repeated wrong codes the keypad refuses every entry for a while.

Five wrong codes within five minutes lock the keypad for 30 s; each further wrong code after a
lockout (before five quiet minutes have passed since the last failure or lockout) locks it again
for twice as long, up to 15 min. A
valid code resets everything. Entries typed during a lockout are refused without being checked, so
guessing cannot continue, and are only counted. The state is a small JSON value persisted after
every change, so a restart does not lift a lockout.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

LOCKOUT_AFTER = 5  # wrong codes ...
FAILURE_WINDOW_S = 300.0  # ... within this many seconds
FIRST_LOCKOUT_S = 30.0
MAX_LOCKOUT_S = 900.0


@dataclass
class LockoutState:
    """Everything the lockout remembers."""

    failures: list[float] = field(default_factory=list)  # times of recent wrong codes
    strikes: int = 0  # lockouts since the last valid code or quiet period
    locked_until: float = 0.0
    refused: int = 0  # entries refused during the current lockout
    ended_noticed: bool = True  # whether the end of the last lockout has been reported

    def to_json(self) -> str:
        """Serialise for the store."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> LockoutState:
        """Restore from the store; anything unreadable starts afresh."""
        if not text:
            return cls()
        try:
            raw = json.loads(text)
            return cls(
                failures=[float(t) for t in raw["failures"]],
                strikes=int(raw["strikes"]),
                locked_until=float(raw["locked_until"]),
                refused=int(raw["refused"]),
                ended_noticed=bool(raw.get("ended_noticed", True)),
            )
        except (ValueError, KeyError, TypeError):
            return cls()


class KeypadLockout:
    """The lockout rule for one keypad; `now` is always passed in (decision time)."""

    def __init__(self, state: LockoutState | None = None) -> None:
        self.state = state or LockoutState()

    def remaining(self, now: float) -> float:
        """Seconds until the keypad accepts entries again (0 when it does)."""
        return max(0.0, self.state.locked_until - now)

    def refuse(self) -> None:
        """Count an entry typed during a lockout."""
        self.state.refused += 1

    def success(self) -> None:
        """A valid code: forget every failure and strike."""
        self.state = LockoutState()

    def failure(self, now: float) -> float | None:
        """Record a wrong code; return the lockout it starts (seconds), or None."""
        st = self.state
        last_activity = max([st.locked_until, *st.failures])
        if now - last_activity >= FAILURE_WINDOW_S:
            st.strikes = 0  # five quiet minutes (after the last lockout) end the escalation
        st.failures = [t for t in st.failures if now - t < FAILURE_WINDOW_S]
        st.failures.append(now)
        if st.strikes == 0 and len(st.failures) < LOCKOUT_AFTER:
            return None
        duration: float = min(FIRST_LOCKOUT_S * 2.0**st.strikes, MAX_LOCKOUT_S)
        st.strikes += 1
        st.locked_until = now + duration
        st.refused = 0
        st.ended_noticed = False
        return duration

    def end_notice(self, now: float) -> int | None:
        """Once a lockout is over: how many entries it refused (reported once), else None."""
        st = self.state
        if st.ended_noticed or now < st.locked_until:
            return None
        st.ended_noticed = True
        return st.refused
