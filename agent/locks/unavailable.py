"""A lock this gateway cannot drive (its integration is not configured): says so everywhere."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from agent.locks.base import (
    ActionOutcome,
    CodeState,
    LockAction,
    LockCode,
    LockSnapshot,
    LockUnreachable,
)
from sync_protocol.models import DeliveryState, LockKind

FIX = {
    LockKind.NUKI: "pair it with `kasify-agent nuki pair` and set [ble] in agent.toml",
    LockKind.UNIFI: "set [unifi] url and token in agent.toml and run `kasify-agent unifi trust`",
    LockKind.RELAY: "set [keypad] port and lock_ref in agent.toml",
}


class UnavailableLock:
    """Unreachable, refuses actions, reports every code as failed, with the fix in the text."""

    stores_codes = True

    def __init__(self, lock_id: str, kind: LockKind, why: str) -> None:
        self.lock_id = lock_id
        self.kind = kind
        self.reason = f"{why}: {FIX[kind]}"
        self._codes: tuple[str, ...] = ()

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""

    async def perform(self, action: LockAction) -> ActionOutcome:
        """Always refused."""
        raise LockUnreachable(self.lock_id, self.reason)

    def status(self) -> LockSnapshot:
        """Never reachable."""
        return LockSnapshot()

    def set_codes(self, codes: Sequence[LockCode]) -> None:
        """Remember which codes cannot be delivered."""
        self._codes = tuple(c.code_id for c in codes)

    def code_states(self) -> Mapping[str, CodeState]:
        """Every desired code failed, with the reason."""
        return {c: CodeState(DeliveryState.FAILED, self.reason[:200]) for c in self._codes}
