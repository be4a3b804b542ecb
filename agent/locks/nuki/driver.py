"""One Nuki lock behind the agent's LockDriver interface.

All BLE work for a lock runs one operation at a time under one lock; an action waiting jumps the
queue between two keypad-code operations. Background work (state refresh, log entries, time sync,
code reconciliation) is triggered by the beacon's state-changed flag, by new desired codes, by
code expiries and by the time-sync interval, never by polling. A link is kept for `linger_s`
after the last operation, then closed: the lock's battery pays for every second we hold it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

from bleak.backends.device import BLEDevice

from agent.clock import Clock
from agent.locks.base import (
    ActionOutcome,
    ActionRefused,
    CodeState,
    DriverContext,
    LockAction,
    LockCode,
    LockSnapshot,
    LockTimeout,
    LockUnreachable,
    NotPaired,
)
from agent.locks.nuki.adverts import NukiAdvert
from agent.locks.nuki.client import NukiClient, Timeouts
from agent.locks.nuki.config import NukiConfig
from agent.locks.nuki.const import Action, ErrorCode, LockState
from agent.locks.nuki.errors import (
    ActionUncertain,
    FrameError,
    NotPairedError,
    NukiError,
    NukiLockError,
    NukiNotFound,
    NukiTimeout,
)
from agent.locks.nuki.events import MOVING, Draft, from_log, from_states, wire_door, wire_state
from agent.locks.nuki.messages import KeyturnerStates
from agent.locks.nuki.reconcile import (
    NOT_PAIRED,
    PIN_ERRORS,
    REASONS,
    CodeBook,
    PinRejected,
    fingerprint_key,
)
from agent.locks.nuki.retry import Backoff, Decision, RetryPolicy, classify
from agent.locks.nuki.store import Credentials, NukiStore
from agent.outbox import new_event
from sync_protocol.aio import wait_event
from sync_protocol.models import DeliveryState, LockKind
from sync_protocol.models import LockState as WireLockState

log = logging.getLogger(__name__)

ACTIONS: Final = {
    LockAction.UNLOCK: Action.UNLOCK,
    LockAction.LOCK: Action.LOCK,
    LockAction.UNLATCH: Action.UNLATCH,
}
ACTION_CONNECT_ATTEMPTS: Final = 3  # an action reconnects quickly a few times before giving up
CONFIRM_POLL_S: Final = 0.5  # while confirming an interrupted action, re-read a moving bolt
LOG_FIRST_PAGE: Final = 4  # log entries asked for first (each costs ~6 indications)
LOG_PAGE: Final = 20  # log entries per request when more are new
LOG_PAGES: Final = 5  # at most this many pages of new entries per refresh
FIRST_ADVERT_WAIT_S: Final = 3.0  # an action right after start waits this long for an advert
PIN_LOCKOUT_BACKOFF_S: Final = 300.0  # after "too many PIN attempts" the lock refuses for a while


@dataclass(frozen=True, slots=True)
class Sighting:
    """The latest advert of a lock."""

    device: BLEDevice
    advert: NukiAdvert
    rssi: int | None
    at: float  # Unix time


Locator = Callable[[str], Sighting | None]


def took_effect(action: Action, before: KeyturnerStates | None, after: KeyturnerStates) -> bool:
    """Whether the lock's state proves an action (possibly interrupted) happened."""
    state = after.lock_state
    if action == Action.UNLOCK:
        return state in (
            LockState.UNLOCKING, LockState.UNLOCKED, LockState.UNLOCKED_LOCK_N_GO,
            LockState.UNLATCHING, LockState.UNLATCHED,
        )  # fmt: skip
    if action in (Action.LOCK, Action.FULL_LOCK):
        return state in (LockState.LOCKING, LockState.LOCKED)
    if state in (LockState.UNLATCHING, LockState.UNLATCHED):
        return True
    if after.last_lock_action != Action.UNLATCH or before is None:
        return False
    return (before.last_lock_action, before.lock_state) != (after.last_lock_action, state)


class NukiLockDriver:
    """A Nuki Smart Lock (and its Nuki Keypad) as one LockDriver."""

    kind: LockKind = LockKind.NUKI

    def __init__(
        self,
        lock_id: str,
        nuki_id: str,
        *,
        config: NukiConfig,
        ctx: DriverContext,
        store: NukiStore,
        locate: Locator,
        policy: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.lock_id = lock_id
        self.nuki_id = nuki_id
        self.config = config
        self.ctx = ctx
        self.store = store
        self.policy = policy or RetryPolicy()
        self.timeouts = timeouts or Timeouts(connect_s=config.connect_timeout_s)
        self.codes = CodeBook(nuki_id, store)
        self._locate = locate
        self._backoff = backoff or Backoff()
        self._creds: Credentials | None = None
        self._creds_mtime: float | None = None
        self._states: KeyturnerStates | None = None
        self._last_contact: float | None = None
        self._client: NukiClient | None = None
        self._closed_writes = 0
        self._op = asyncio.Lock()
        self._urgent = 0
        self._wake = asyncio.Event()
        self._want_refresh = True
        self._retry_at: float | None = None
        self._awaiting_advert = False
        self._retry_on_advert = False
        self._sighted = asyncio.Event()
        self._idle = asyncio.Event()  # set while no BLE work runs or is due
        self._close_at: float | None = None
        self._drafts: list[Draft] = []
        self._task: asyncio.Task[None] | None = None
        self._credentials()

    # --- LockDriver ----------------------------------------------------------------------------

    @property
    def stores_codes(self) -> bool:
        """The Nuki Keypad's codes live in the lock."""
        return True

    @property
    def round_trips(self) -> int:
        """BLE round trips (writes) made for this lock so far."""
        client = self._client
        return self._closed_writes + (client.round_trips if client is not None else 0)

    async def wait_idle(self) -> None:
        """Return once no BLE work runs or is due (e.g. the state read after an action)."""
        await self._idle.wait()

    async def start(self) -> None:
        """Start the background worker."""
        if self._task is None:
            self._task = asyncio.create_task(self._worker(), name=f"nuki-{self.nuki_id}")

    async def stop(self) -> None:
        """Stop the worker and close the link."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._drop_client()

    def status(self) -> LockSnapshot:
        """The latest known state, without I/O."""
        states = self._states
        now = self.ctx.clock.now()
        seen = self._last_seen()
        paired = self._creds is not None
        reachable = paired and (
            (self._client is not None and self._client.link.connected)
            or (seen is not None and now - seen <= self.config.reachable_window_s)
        )
        if states is None:
            return LockSnapshot(reachable=reachable, last_seen=seen)
        return LockSnapshot(
            state=wire_state(states.lock_state),
            battery_percent=states.battery_percent,
            battery_critical=states.battery_critical,
            door=wire_door(states.door_sensor),
            reachable=reachable,
            last_seen=seen,
        )

    def set_codes(self, codes: Sequence[LockCode]) -> None:
        """Replace the desired keypad codes; reconciled in the background."""
        if self.codes.set(codes):
            self._wake.set()

    def code_states(self) -> Mapping[str, CodeState]:
        """Delivery state per code."""
        if self._credentials() is None:
            return {c: CodeState(DeliveryState.FAILED, NOT_PAIRED) for c in self.codes.desired}
        return dict(self.codes.states)

    async def perform(self, action: LockAction) -> ActionOutcome:
        """Do an action once; never resent after the lock accepted it."""
        if self._credentials() is None:
            raise NotPaired(
                self.lock_id,
                f"Nuki {self.nuki_id} is not paired with this gateway: put the lock in pairing "
                f"mode and run `kasify-agent nuki pair {self.nuki_id} --pin <security PIN>`",
            )
        self._urgent += 1
        self._idle.clear()
        try:
            async with self._op:
                try:
                    return await self._perform(ACTIONS[action])
                finally:
                    await self._flush_events()
                    self._want_refresh = True  # read states once more: clears the beacon flag
                    self._wake.set()
        finally:
            self._urgent -= 1

    def kick(self) -> None:
        """Re-evaluate due work now (after the clock moved, or to retry at once)."""
        self._retry_at = None
        self._wake.set()

    # --- adverts (from the integration's scanner) ----------------------------------------------

    def on_advert(self, sighting: Sighting) -> None:
        """A fresh advert: note contact; the state-changed flag asks for a refresh."""
        if sighting.advert.state_changed:
            self._want_refresh = True
        self._awaiting_advert = False
        self._sighted.set()
        if self._retry_at is not None and self._retry_on_advert and self._has_work():
            self._retry_at = None  # it was unreachable and announced itself: retry at once
            self._retry_on_advert = False
        if self._want_refresh or self.codes.dirty:
            self._wake.set()

    def _last_seen(self) -> float | None:
        sighting = self._locate(self.nuki_id)
        times = [t for t in (self._last_contact, sighting.at if sighting else None) if t]
        return max(times) if times else None

    # --- credentials ---------------------------------------------------------------------------

    def _credentials(self) -> Credentials | None:
        mtime = self.store.credentials_mtime(self.nuki_id)
        if mtime != self._creds_mtime:
            self._creds_mtime = mtime
            fresh = self.store.credentials(self.nuki_id) if mtime is not None else None
            if fresh != self._creds:
                self._creds = fresh
                self._want_refresh = True
                self.codes.dirty = bool(self.codes.desired) or self.codes.dirty
                self._wake.set()
        return self._creds

    def _pin_usable(self) -> bool:
        creds = self._creds
        return creds is not None and creds.security_pin is not None and not creds.pin_rejected

    # --- the link ------------------------------------------------------------------------------

    async def _client_now(self) -> NukiClient:
        client = self._client
        if client is not None and client.link.connected:
            return client
        await self._drop_client()
        creds = self._credentials()
        if creds is None:
            raise NotPairedError(f"lock {self.nuki_id} is not paired", nuki_id=self.nuki_id)
        sighting = self._locate(self.nuki_id)
        if sighting is None:  # just started: the first advert comes within about a second
            await wait_event(self._sighted, FIRST_ADVERT_WAIT_S)
            sighting = self._locate(self.nuki_id)
        if sighting is None:
            raise NukiNotFound(f"no advert from Nuki {self.nuki_id} yet", nuki_id=self.nuki_id)
        self._client = await NukiClient.connect(
            sighting.device, self.nuki_id, creds, policy=self.policy, timeouts=self.timeouts
        )
        return self._client

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            self._closed_writes += client.round_trips
            await client.close()

    # --- actions -------------------------------------------------------------------------------

    async def _perform(self, action: Action) -> ActionOutcome:
        before = self._states
        last: NukiError | None = None
        for _ in range(ACTION_CONNECT_ATTEMPTS):
            try:
                client = await self._client_now()
                result = await client.lock_action(action, on_state=self._apply_states)
            except ActionUncertain as exc:
                await self._drop_client()
                return await self._confirm(action, before, exc)
            except NukiLockError as exc:
                raise ActionRefused(
                    self.lock_id, f"Nuki {self.nuki_id} refused {action.name.lower()}: {exc}",
                    code=exc.code.name.lower(),
                ) from exc  # fmt: skip
            except NotPairedError as exc:
                raise NotPaired(self.lock_id, str(exc)) from exc
            except (NukiError, FrameError) as exc:  # nothing was written: safe to try again
                last = exc
                await self._drop_client()
                await asyncio.sleep(self.policy.quick_delay())
                continue
            self._last_contact = self.ctx.clock.now()
            final = result.states[-1] if result.states else self._states
            state = wire_state(final.lock_state) if final else WireLockState.UNKNOWN
            return ActionOutcome(state, "completed" if result.accepted else "already in that state")
        error = LockTimeout if isinstance(last, NukiTimeout) else LockUnreachable
        raise error(self.lock_id, f"Nuki {self.nuki_id} unreachable: {last}")

    async def _confirm(
        self, action: Action, before: KeyturnerStates | None, interrupted: ActionUncertain
    ) -> ActionOutcome:
        """After a link loss mid-action: read the outcome from the lock, never resend blindly."""
        log.warning("Nuki %s: %s; confirming from its state", self.nuki_id, interrupted)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeouts.complete_s
        states: KeyturnerStates | None = None
        while loop.time() < deadline:
            try:
                client = await self._client_now()
                states = await client.keyturner_states()
                self._apply_states(states)
                if states.lock_state not in MOVING:
                    break
                await asyncio.sleep(CONFIRM_POLL_S)
            except NukiError:
                await self._drop_client()
                await asyncio.sleep(self.policy.quick_delay())
        if states is None:
            raise LockTimeout(
                self.lock_id,
                f"{action.name.lower()} interrupted ({interrupted.cause}) and the lock could not "
                "be reached to confirm it; not resent",
            )
        if interrupted.accepted or took_effect(action, before, states):
            if states.lock_state == LockState.MOTOR_BLOCKED:
                raise ActionRefused(self.lock_id, "motor blocked", code="motor_blocked")
            return ActionOutcome(
                wire_state(states.lock_state), "confirmed from the lock's state after a link loss"
            )
        if action == Action.UNLATCH:
            raise LockTimeout(
                self.lock_id,
                "unlatch interrupted before the lock confirmed it and its state does not show it; "
                "not resent (a second unlatch could open the door twice)",
            )
        client = await self._client_now()
        result = await client.lock_action(action, on_state=self._apply_states)
        final = result.states[-1] if result.states else states
        return ActionOutcome(wire_state(final.lock_state), "sent again after a link loss")

    # --- state and events ----------------------------------------------------------------------

    def _apply_states(self, states: KeyturnerStates) -> None:
        previous, self._states = self._states, states
        if states.current_time is not None and not self.ctx.clock.trusted:
            # The lock's RTC: a floor for a Pi that booted into the past (see Clock.observe_lock).
            set_at = float(self.store.lock_state(self.nuki_id).get("last_time_sync", 0.0))
            self.ctx.clock.observe_lock(states.current_time, set_at)
        self._last_contact = self.ctx.clock.now()
        self._drafts += from_states(previous, states, logs_cover_actions=self._pin_usable())
        if previous is None or (previous.lock_state, previous.door_sensor) != (
            states.lock_state,
            states.door_sensor,
        ):
            self.ctx.changed()

    async def _flush_events(self) -> None:
        drafts, self._drafts = self._drafts, []
        for draft in drafts:
            event = new_event(
                draft.type,
                self.ctx.clock,
                lock_id=self.lock_id,
                code_id=draft.code_id,
                booking_id=draft.booking_id,
                method=draft.method,
                result=draft.result,
                details={**draft.details, "nuki_id": self.nuki_id},
            )
            try:
                await self.ctx.emit(event)
            except Exception:  # the outbox's problem must not stop the lock's worker
                log.exception("Nuki %s: could not record %s", self.nuki_id, event.type)

    async def _refresh(self) -> None:
        client = await self._client_now()
        states = await client.keyturner_states()
        self._apply_states(states)
        if states.lock_state in MOVING:
            await self._until_at_rest(client)
        self._want_refresh = False
        if self._pin_usable():
            await self._read_logs(client)

    async def _until_at_rest(self, client: NukiClient) -> None:
        """The motor runs: stay for its end, then read once more (one connection, flag cleared)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeouts.complete_s
        while loop.time() < deadline:
            try:
                message = await client.link.receive(CONFIRM_POLL_S)  # a push of the new state
            except NukiTimeout:
                message = None
            if isinstance(message, KeyturnerStates) and message.lock_state in MOVING:
                continue
            states = await client.keyturner_states()
            self._apply_states(states)
            if states.lock_state not in MOVING:
                return

    async def _read_logs(self, client: NukiClient) -> None:
        """New log entries since the last one seen, newest first, in pages that grow."""
        last = self.store.lock_state(self.nuki_id).get("last_log_index")
        size = LOG_FIRST_PAGE  # usually one or two entries are new: ask for few (~6 pieces each)
        entries = await client.log_entries(size)
        newest = max((e.index for e in entries), default=0)
        if last is None or newest < last:  # first read, or the lock was reset: a new baseline
            self.store.update_lock_state(self.nuki_id, last_log_index=newest)
            return
        new = [e for e in entries if e.index > last]
        pages = 1
        while len(entries) == size and new and min(e.index for e in new) > last + 1:
            if pages >= LOG_PAGES:
                break
            size = LOG_PAGE
            entries = await client.log_entries(size, min(e.index for e in new) - 1)
            new += [e for e in entries if e.index > last]
            pages += 1
        by_keypad = self.codes.by_keypad_id()
        for entry in sorted({e.index: e for e in new}.values(), key=lambda e: e.index):
            draft = from_log(entry, by_keypad)
            if draft is not None:
                self._drafts.append(draft)
        if newest > last:
            self.store.update_lock_state(self.nuki_id, last_log_index=newest)

    # --- background work -----------------------------------------------------------------------

    def _time_sync_due(self) -> bool:
        if not self._pin_usable() or not self.ctx.clock.trusted:
            return False
        last = float(self.store.lock_state(self.nuki_id).get("last_time_sync", 0.0))
        return self.ctx.clock.now() - last >= self.config.time_sync_interval_s

    def _expiry_due(self) -> bool:
        return self.codes.expired_on_lock(self.ctx.clock.now())

    def _has_work(self) -> bool:
        return self._want_refresh or self.codes.dirty or self._time_sync_due() or self._expiry_due()

    async def _yield_point(self) -> None:
        if self._urgent:
            self._op.release()
            try:
                await asyncio.sleep(0)
            finally:
                await self._op.acquire()

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        while True:
            if me is not None and me.cancelling():
                # stop() cancelled us while the BLE stack had control, and it swallowed the
                # CancelledError: honour the request anyway, or stop() would wait forever.
                raise asyncio.CancelledError
            if not self._op.locked() and not (self._has_work() and not self._awaiting_advert):
                self._idle.set()
            await self._sleep_until_work()
            if self._close_at is not None and loop.time() >= self._close_at and not self._urgent:
                self._close_at = None
                async with self._op:
                    await self._drop_client()
            if not self._has_work() or self._awaiting_advert:
                continue
            if self._retry_at and loop.time() < self._retry_at:
                continue
            self._idle.clear()
            try:
                await self._work()
                self._backoff.reset()
                self._retry_at = None
            except asyncio.CancelledError:
                raise
            except NotPairedError:
                self.codes.fail_all(NOT_PAIRED)
            except Exception as exc:  # the worker must survive anything; retried with backoff
                self._failed(exc)
                await self._drop_client()
            finally:
                await self._flush_events()
            self._close_at = loop.time() + self.config.linger_s

    def _failed(self, exc: Exception) -> None:
        """Sort a background failure: stop on a rejected PIN, else back off (capped, jittered)."""
        loop = asyncio.get_running_loop()
        if isinstance(exc, PinRejected) and exc.error.code == ErrorCode.BAD_PIN:
            self._reject_pin()
            return
        if isinstance(exc, PinRejected):  # locked out after wrong PINs (maybe not ours): wait
            delay = PIN_LOCKOUT_BACKOFF_S
            self.codes.fail_all(REASONS[ErrorCode.TOO_MANY_PIN_ATTEMPTS])
            self.codes.dirty = True
        else:
            delay = self._backoff.next_delay()
        self._retry_on_advert = classify(exc) is Decision.RECONNECT
        self._retry_at = loop.time() + delay
        log.warning("Nuki %s: %s; retrying in %.1f s", self.nuki_id, exc, delay)

    async def _work(self) -> None:
        try:
            await self._work_once()
        except NukiLockError as exc:
            if exc.code in PIN_ERRORS:
                raise PinRejected(exc) from exc
            raise
        finally:
            self.ctx.changed()  # state, battery or code states may have moved: report them

    async def _work_once(self) -> None:
        creds = self._credentials()
        if creds is None:
            if self.codes.desired:
                self.codes.fail_all(NOT_PAIRED)
            self._want_refresh = False
            self.codes.dirty = False
            return
        if self._locate(self.nuki_id) is None and self._client is None:
            self._awaiting_advert = True  # on_advert wakes us
            return
        async with self._op:
            if self._want_refresh:
                await self._refresh()
            if self._time_sync_due():
                client = await self._client_now()
                await client.update_time(Clock.utc(self.ctx.clock.now()))
                self.store.update_lock_state(self.nuki_id, last_time_sync=self.ctx.clock.now())
            if self.codes.dirty or self._expiry_due():
                problem = self._pin_problem()
                if problem is not None:
                    self.codes.fail_all(problem)
                    self.codes.dirty = False
                    return
                await self.codes.reconcile(
                    self._client_now,
                    self._yield_point,
                    now=self.ctx.clock.now(),
                    key=fingerprint_key(creds.shared_key),
                )

    def _reject_pin(self) -> None:
        """The lock said BAD_PIN: remember it and never send that PIN again."""
        creds = self._creds
        if creds is not None:
            self.store.save_credentials(replace(creds, pin_rejected=True))
            self._credentials()
        self.codes.fail_all(self._pin_problem() or "security PIN rejected by the lock")
        self.codes.dirty = False
        log.error("Nuki %s: %s", self.nuki_id, self._pin_problem())

    def _pin_problem(self) -> str | None:
        creds = self._creds
        fix = f"`kasify-agent nuki pair {self.nuki_id} --pin <security PIN>`"
        if creds is None:
            return NOT_PAIRED
        if creds.security_pin is None:
            return f"no security PIN stored: set it with {fix}"
        if creds.pin_rejected:
            return f"security PIN rejected by the lock: set the right one with {fix}"
        return None

    async def _sleep_until_work(self) -> None:
        loop = asyncio.get_running_loop()
        now, wall = loop.time(), self.ctx.clock.now()
        deadlines: list[float] = []
        if self._has_work() and not self._awaiting_advert:
            deadlines.append(self._retry_at or now)
        if self._close_at is not None:
            deadlines.append(self._close_at)
        expiry = self.codes.next_expiry(wall)
        if expiry is not None:
            deadlines.append(now + (expiry - wall))
        if self._pin_usable():
            last = float(self.store.lock_state(self.nuki_id).get("last_time_sync", 0.0))
            deadlines.append(now + max(0.0, last + self.config.time_sync_interval_s - wall))
        self._wake.clear()
        timeout = max(0.0, min(deadlines) - now) if deadlines else None
        await wait_event(self._wake, timeout)
