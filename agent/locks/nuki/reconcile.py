"""Keypad codes of one lock: the desired set, per-code delivery state, and the async reconcile."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from agent.locks.base import CodeState, LockCode
from agent.locks.nuki.client import NukiClient
from agent.locks.nuki.codes import Plan, Wanted, plan
from agent.locks.nuki.const import ErrorCode
from agent.locks.nuki.errors import NotPairedError, NukiLockError
from agent.locks.nuki.store import MappedCode, NukiStore
from sync_protocol.models import DeliveryState

log = logging.getLogger(__name__)

NOT_PAIRED: Final = "not paired"
LOCK_FULL: Final = "lock full"
REASONS: Final = {
    ErrorCode.TOO_MANY_ENTRIES: LOCK_FULL,
    ErrorCode.CODE_ALREADY_EXISTS: "duplicate: the lock already holds this PIN",
    ErrorCode.CODE_INVALID: "the lock refused the PIN as invalid",
    ErrorCode.BAD_PIN: "security PIN rejected by the lock",
    ErrorCode.TOO_MANY_PIN_ATTEMPTS: "lock refuses PIN commands after wrong PINs; retry later",
}
PIN_ERRORS: Final = frozenset({ErrorCode.BAD_PIN, ErrorCode.TOO_MANY_PIN_ATTEMPTS})

ClientSource = Callable[[], Awaitable[NukiClient]]
YieldPoint = Callable[[], Awaitable[None]]


def fingerprint_key(shared_key: bytes) -> bytes:
    """The key of code fingerprints, derived from the lock's shared key."""
    return hmac.new(shared_key, b"kasify/nuki/code-fingerprint", hashlib.sha256).digest()


class PinRejected(Exception):
    """The lock refused the security PIN: stop, and never send it again."""

    def __init__(self, error: NukiLockError) -> None:
        super().__init__(str(error))
        self.error = error


class CodeBook:
    """What one lock should hold and what it is known to hold."""

    def __init__(self, nuki_id: str, store: NukiStore) -> None:
        self.nuki_id = nuki_id
        self.store = store
        self.desired: dict[str, LockCode] = {}
        self.states: dict[str, CodeState] = {}
        self.dirty = False
        self.generation = 0  # bumped by every change of the desired set

    def set(self, codes: Sequence[LockCode]) -> bool:
        """Replace the desired codes; True when something changed (work is needed)."""
        wanted = {code.code_id: code for code in codes}
        if wanted == self.desired and not self.dirty:
            return False
        self.desired = wanted
        self.dirty = True
        self.generation += 1
        for code_id in wanted:
            self.states.setdefault(code_id, CodeState(DeliveryState.SETTING))
        for code_id, state in list(self.states.items()):
            if code_id not in wanted and state.state is not DeliveryState.REMOVING:
                self.states[code_id] = CodeState(DeliveryState.REMOVING)
        return True

    def fail_all(self, reason: str) -> None:
        """Every desired code fails for the same reason (not paired, PIN rejected)."""
        self.states = {code_id: CodeState(DeliveryState.FAILED, reason) for code_id in self.desired}

    def _ends_on_lock(self) -> list[float]:
        return [
            c.ends_at
            for c in self.desired.values()
            if c.ends_at is not None
            and self.states.get(c.code_id, CodeState(DeliveryState.UNSET)).state
            is DeliveryState.SET
        ]

    def next_expiry(self, now: float) -> float | None:
        """When the next code still on the lock expires (it must then be removed)."""
        ends = [end for end in self._ends_on_lock() if end > now]
        return min(ends) if ends else None

    def expired_on_lock(self, now: float) -> bool:
        """Whether a code on the lock has expired and waits for removal."""
        return any(end <= now for end in self._ends_on_lock())

    def by_keypad_id(self) -> dict[int, tuple[str, str | None]]:
        """keypad code id -> (our code id, booking id), for Nuki Keypad log entries."""
        out: dict[int, tuple[str, str | None]] = {}
        for code_id, mapped in self.store.code_map(self.nuki_id).items():
            code = self.desired.get(code_id)
            out[mapped.keypad_id] = (code_id, code.booking_id if code else None)
        return out

    async def reconcile(
        self, client_source: ClientSource, yield_point: YieldPoint, *, now: float, key: bytes
    ) -> None:
        """Bring the lock to the desired set; transport errors propagate (retry later).

        A change of the desired set while this pass runs (a booking cancelled while a code was
        being added) keeps the work pending: the next pass plans from the new set."""
        started = self.generation
        client = await client_source()
        mapping = self.store.code_map(self.nuki_id)
        on_lock = await client.keypad_codes()
        work = plan(list(self.desired.values()), mapping, on_lock, now=now, key=key)
        self._record_plan(work, mapping)
        try:
            await self._apply(work, mapping, client_source, yield_point)
        except NukiLockError as exc:
            if exc.code in PIN_ERRORS:
                raise PinRejected(exc) from exc
            raise
        if self.generation == started:
            self.dirty = False

    def _record_plan(self, work: Plan, mapping: dict[str, MappedCode]) -> None:
        for code_id in work.forgotten:
            mapping.pop(code_id, None)
        mapping.update(work.adopted)
        self.store.save_code_map(self.nuki_id, mapping)
        for code_id, reason in work.invalid.items():
            self.states[code_id] = CodeState(DeliveryState.FAILED, reason)
        for code_id in work.in_place:
            self.states[code_id] = CodeState(DeliveryState.SET)
        for code_id in work.expired:
            self.states[code_id] = CodeState(DeliveryState.UNSET, "expired")
        for want in [*work.additions, *(w for w, _ in work.updates)]:
            self.states[want.code_id] = CodeState(DeliveryState.SETTING)
        for code_id, _ in work.removals:
            if code_id not in self.desired:
                self.states[code_id] = CodeState(DeliveryState.REMOVING)
        for code_id in list(self.states):
            if code_id not in self.desired and code_id not in mapping:
                del self.states[code_id]

    async def _apply(
        self,
        work: Plan,
        mapping: dict[str, MappedCode],
        client_source: ClientSource,
        yield_point: YieldPoint,
    ) -> None:
        for code_id, keypad_id in work.removals:
            await yield_point()
            try:
                await (await client_source()).remove_keypad_code(keypad_id)
            except NukiLockError as exc:
                if exc.code != ErrorCode.KEYTURNER_BAD_PARAMETER:  # already gone: fine
                    raise
            mapping.pop(code_id, None)
            self.store.save_code_map(self.nuki_id, mapping)
            if code_id not in self.desired:
                self.states.pop(code_id, None)
        for want, keypad_id in work.updates:
            await yield_point()
            await self._attempt(want, mapping, keypad_id, client_source)
        full = False
        for want in work.additions:
            if full:
                self.states[want.code_id] = CodeState(DeliveryState.FAILED, LOCK_FULL)
                continue
            await yield_point()
            full = not await self._attempt(want, mapping, None, client_source)

    async def _attempt(
        self,
        want: Wanted,
        mapping: dict[str, MappedCode],
        keypad_id: int | None,
        client_source: ClientSource,
    ) -> bool:
        """Add or update one code; False when the lock is full."""
        client = await client_source()
        try:
            if keypad_id is None:
                keypad_id = await client.add_keypad_code(want.pin, want.name, want.window)
            else:
                await client.update_keypad_code(keypad_id, want.pin, want.name, want.window)
        except NukiLockError as exc:
            reason = REASONS.get(exc.code)
            if reason is None or exc.code in PIN_ERRORS:
                raise
            self.states[want.code_id] = CodeState(DeliveryState.FAILED, reason)
            return exc.code != ErrorCode.TOO_MANY_ENTRIES
        except NotPairedError as exc:
            self.states[want.code_id] = CodeState(DeliveryState.FAILED, str(exc))
            return True
        mapping[want.code_id] = MappedCode(keypad_id, want.fingerprint)
        self.store.save_code_map(self.nuki_id, mapping)
        self.states[want.code_id] = CodeState(DeliveryState.SET)
        return True
