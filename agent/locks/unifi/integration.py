"""The UniFi Access controller as a family of locks: one session, one reconciler, many doors.

The session loop keeps REST and the notifications WebSocket up (capped jittered reconnect, a
heartbeat watchdog) and, after every (re)connect and during every gap, reads the system logs
since the last entry it handled, so a reader entry made while the link was down still becomes
exactly one event. The reconcile loop turns the codes desired for all bound doors into visitors,
one per code with all its doors as resources, and re-runs when codes change, fail or expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

from agent.locks.base import (
    ActionOutcome,
    ActionUnsupported,
    CodeState,
    DriverContext,
    LockCode,
    LockSnapshot,
)
from agent.locks.unifi.activity import LogFollower
from agent.locks.unifi.client import UnifiClient
from agent.locks.unifi.config import TokenUnavailable, UnifiConfig
from agent.locks.unifi.driver import UnifiDoorDriver, lock_error
from agent.locks.unifi.errors import ControllerUnreachable, NotConfigured, UnifiError
from agent.locks.unifi.events import OUR_ACTOR_ID, OUR_ACTOR_NAME, DoorResolver
from agent.locks.unifi.messages import Notification, door_updates, hub_doors
from agent.locks.unifi.models import (
    Door,
    LockRuleType,
    Position,
    Relay,
    TopologyDoor,
    parse_log_entry,
)
from agent.locks.unifi.notifications import HEARTBEAT_TIMEOUT_S, listen, open_notifications
from agent.locks.unifi.reconcile import MAX_ERROR_CHARS, Reconciler, Wanted, expired
from agent.locks.unifi.reconnect import (
    NEEDS_USER_RETRY_S,
    RECONNECT_INITIAL_S,
    RECONNECT_MAX_S,
    Backoff,
    LinkState,
    ReconnectPolicy,
    Verdict,
    classify,
)
from agent.locks.unifi.state import UnifiState
from agent.locks.unifi.trust import TRUST_FILE, TrustRecord, trusted_controller
from sync_protocol.aio import wait_event
from sync_protocol.models import (
    DeliveryState,
    DoorState,
    Inventory,
    LockKind,
    LockState,
    UnifiDoor,
)

log = logging.getLogger(__name__)

DOOR_REFRESH_S: Final = 60.0  # door state by REST too, in case a notification was missed
INVENTORY_REFRESH_S: Final = 300.0  # doors added in the console show up in the cloud within 5 min
SETTLE_S: Final = 0.05  # codes of all doors set in one apply are reconciled together
SETUP_POLL_S: Final = 2.0  # while a person must act, notice `unifi trust` or a new token this fast

_RELAY_STATE: Final = {Relay.LOCK: LockState.LOCKED, Relay.UNLOCK: LockState.UNLOCKED}
_DOOR_STATE: Final = {
    Position.OPEN: DoorState.OPEN,
    Position.CLOSE: DoorState.CLOSED,
    Position.NONE: DoorState.NO_SENSOR,
}


@dataclass(frozen=True, slots=True)
class Timings:
    """Intervals of the integration (tests shorten them)."""

    heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S
    reconnect_initial_s: float = RECONNECT_INITIAL_S
    reconnect_max_s: float = RECONNECT_MAX_S
    needs_user_retry_s: float = NEEDS_USER_RETRY_S
    door_refresh_s: float = DOOR_REFRESH_S
    inventory_refresh_s: float = INVENTORY_REFRESH_S
    settle_s: float = SETTLE_S
    setup_poll_s: float = SETUP_POLL_S


class UnifiIntegration:
    """All doors of one UniFi Access controller (`agent.locks.base.Integration`)."""

    kind = LockKind.UNIFI

    def __init__(
        self,
        config: UnifiConfig,
        ctx: DriverContext,
        *,
        timings: Timings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.timings = timings or Timings()
        self.changed = asyncio.Event()  # set on any change of door state, code state or link
        self.online = False  # REST answered and the notifications link is up
        self.problem: str | None = "not started"
        self.doors: dict[str, Door] = {}
        self.topology: tuple[TopologyDoor, ...] = ()
        self.resolver = DoorResolver()
        self.policy = ReconnectPolicy(
            initial_s=self.timings.reconnect_initial_s,
            max_s=self.timings.reconnect_max_s,
            needs_user_s=self.timings.needs_user_retry_s,
        )
        # reconcile passes that hit a transient failure come back with their own backoff
        self._retry = Backoff(self.timings.reconnect_initial_s, self.timings.reconnect_max_s)
        self._transport = transport
        self._drivers: dict[str, UnifiDoorDriver] = {}
        self._desired: dict[str, tuple[LockCode, ...]] = {}
        self._setup: tuple[TrustRecord, str] | None = None
        self._client: UnifiClient | None = None
        self._state: UnifiState | None = None
        self._reconciler: Reconciler | None = None
        self._follower: LogFollower | None = None
        self._released = False  # a release() counts as knowing the codes (none for that lock)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_seen: float | None = None

    # --- Integration interface -----------------------------------------------------------

    async def start(self) -> None:
        """Connect in the background (REST, WebSocket, reconcile)."""
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._session_loop(), name="unifi-session"),
            asyncio.create_task(self._reconcile_loop(), name="unifi-reconcile"),
        ]

    async def stop(self) -> None:
        """Stop both loops, save what we know and close the connection pool."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await self._close_session()
        self.online = False

    def driver(self, lock_id: str, ref: str, settings: Mapping[str, object]) -> UnifiDoorDriver:
        """The driver for the door whose UniFi door id is `ref`."""
        existing = self._drivers.get(lock_id)
        if existing is not None and existing.door_id == ref:
            existing.settings = dict(settings)
            return existing
        driver = UnifiDoorDriver(self, lock_id, ref, settings)
        self._drivers[lock_id] = driver
        self._wake.set()
        return driver

    def release(self, lock_id: str) -> None:
        """The lock left the desired state: its codes no longer open its door."""
        self._drivers.pop(lock_id, None)
        self._desired.pop(lock_id, None)
        self._released = True
        self._wake.set()

    def inventory(self) -> Inventory:
        """The controller's doors (floor id, door id, name) for the cloud's smart lock picker."""
        doors = self.topology or tuple(
            TopologyDoor(d.id, d.name, d.floor_id) for d in self.doors.values()
        )
        return Inventory(
            unifi=tuple(
                UnifiDoor(floor_id=d.floor_id[:64], door_id=d.door_id[:64], name=d.name[:80])
                for d in doors[:1024]
            )
        )

    # --- what drivers ask ----------------------------------------------------------------

    def set_codes(self, lock_id: str, codes: Sequence[LockCode]) -> None:
        """Codes one door must accept."""
        self._desired[lock_id] = tuple(codes)
        self._wake.set()

    def code_states(self, lock_id: str) -> Mapping[str, CodeState]:
        """Per code, its state on this door (desired codes and codes being removed)."""
        driver = self._drivers.get(lock_id)
        reconciler = self._reconciler
        blocked = self._blocked_state()
        states: dict[str, CodeState] = {}
        for code in self._desired.get(lock_id, ()):
            state = reconciler.codes.get(code.code_id) if reconciler is not None else None
            if blocked is not None and (state is None or state.state is not DeliveryState.SET):
                state = blocked
            states[code.code_id] = state or CodeState(DeliveryState.SETTING)
        if reconciler is not None and driver is not None:
            # Still on this door at the controller but no longer wanted here: being removed
            # (the whole visitor deleted, or just this door taken out of its resources).
            for code_id, known in reconciler.state.visitors.items():
                if driver.door_id in known.doors and code_id not in states:
                    states[code_id] = CodeState(DeliveryState.REMOVING)
        return states

    def snapshot(self, door_id: str) -> LockSnapshot:
        """A door's relay and position as last reported."""
        door = self.doors.get(door_id)
        if door is None:
            return LockSnapshot(reachable=False, last_seen=self._last_seen)
        reachable = self.online
        return LockSnapshot(
            state=_RELAY_STATE.get(door.relay, LockState.UNKNOWN),
            door=_DOOR_STATE.get(door.position, DoorState.UNKNOWN),
            reachable=reachable,
            last_seen=self.ctx.clock.now() if reachable else self._last_seen,
        )

    def problem_for(self, door_id: str) -> str | None:
        """Why a door is not usable now, for a person."""
        if self.problem is not None:
            return self.problem
        if self.doors and door_id not in self.doors:
            return f"the UniFi controller has no door {door_id} (see `kasify-agent unifi doors`)"
        return None

    async def unlock_door(self, lock_id: str, door_id: str) -> ActionOutcome:
        """Unlock once through the controller (never repeated)."""
        client = self._require_client(lock_id)
        door = self.doors.get(door_id)
        if door is not None and not door.is_bind_hub:
            raise ActionUnsupported(
                lock_id,
                f"UniFi door {door.name!r} has no hub bound: the controller cannot unlock it "
                "remotely",
            )
        try:
            await client.unlock(door_id, actor_id=OUR_ACTOR_ID, actor_name=OUR_ACTOR_NAME)
        except UnifiError as exc:
            raise lock_error(lock_id, exc) from exc
        self._set_door(door_id, relay=Relay.UNLOCK)
        return ActionOutcome(LockState.UNLOCKED, "unlocked through the UniFi Access controller")

    async def lock_door(
        self, lock_id: str, door_id: str, settings: Mapping[str, object]
    ) -> ActionOutcome:
        """Lock through a temporary lock rule (lock_now or keep_lock)."""
        client = self._require_client(lock_id)
        wanted = str(settings.get("lock_rule") or self.config.lock_rule)
        rule = LockRuleType.KEEP_LOCK if wanted == "keep_lock" else LockRuleType.LOCK_NOW
        try:
            await client.set_lock_rule(door_id, rule)
        except UnifiError as exc:
            raise lock_error(lock_id, exc) from exc
        self._set_door(door_id, relay=Relay.LOCK)
        return ActionOutcome(LockState.LOCKED, f"locked with the controller's {rule.value} rule")

    def _require_client(self, lock_id: str) -> UnifiClient:
        if self._client is not None:
            return self._client
        error = NotConfigured(self.problem or "the UniFi controller is not connected yet")
        raise lock_error(lock_id, error)

    def _blocked_state(self) -> CodeState | None:
        """FAILED with the reason while a person must act (trust, token, scope), else None."""
        if self.problem is not None and self.policy.state is LinkState.NEEDS_USER:
            return CodeState(DeliveryState.FAILED, self.problem[:MAX_ERROR_CHARS])
        return None

    # --- the session: REST + notifications, reconnecting --------------------------------

    async def _session_loop(self) -> None:
        while True:
            try:
                await self._connect_once()
                error: UnifiError = ControllerUnreachable("", "the notifications link ended")
            except UnifiError as exc:
                error = exc
            except Exception as exc:  # a bug or an odd answer must not end the session for good
                log.exception("UniFi session failed")
                url = self._setup[0].url if self._setup else ""
                error = ControllerUnreachable(url, f"unexpected: {exc!r}")
            self.online = False
            self.problem = str(error)
            delay = self.policy.failed(error)
            self.changed.set()
            if classify(error) is Verdict.NEEDS_USER:
                self._wake.set()  # the reconciler reports the reason on every code
                await self._wait_for_setup_change(delay)
                continue
            await self._catch_up_in_gap()
            await asyncio.sleep(delay)

    async def _catch_up_in_gap(self) -> None:
        """While the WebSocket is down, poll the system logs (REST may still work)."""
        client, follower = self._client, self._follower
        if client is None or follower is None:
            return
        try:
            await follower.catch_up(client)
        except UnifiError:
            pass  # the controller is away altogether; the next attempt tries again
        except Exception:
            log.exception("UniFi log catch-up failed")

    async def _connect_once(self) -> None:
        record, token = await self._ensure_setup()
        client = self._client
        assert client is not None
        await self._refresh(client, topology=True)
        connection = await open_notifications(
            record.websocket_url,
            token,
            record.context(),
        )
        poller = asyncio.create_task(self._poll_doors(client), name="unifi-doors")
        try:
            self.policy.connected()
            self.online, self.problem = True, None
            self._last_seen = self.ctx.clock.now()
            self.changed.set()
            assert self._follower is not None
            await self._follower.catch_up(client)
            self._wake.set()
            await listen(
                connection,
                self._on_notification,
                heartbeat_timeout_s=self.timings.heartbeat_timeout_s,
                url=record.websocket_url,
            )
        finally:
            self.online = False
            self._last_seen = self.ctx.clock.now()
            poller.cancel()
            await asyncio.wait([poller])
            with contextlib.suppress(Exception):
                await connection.close()

    async def _ensure_setup(self) -> tuple[TrustRecord, str]:
        """The trusted controller and token; (re)build client and state when either changed."""
        loop = asyncio.get_running_loop()
        state_dir = self.ctx.state_dir
        record = await loop.run_in_executor(None, trusted_controller, state_dir, self.config.url)
        try:
            token = await loop.run_in_executor(None, self.config.load_token)
        except TokenUnavailable as exc:
            raise NotConfigured(str(exc)) from None
        if self._setup == (record, token):
            return record, token
        await self._close_session()
        self._client = (
            UnifiClient(record.url, token, verify=record.context(), transport=self._transport)
            if self._transport is not None
            else UnifiClient.for_record(record, token)
        )
        self._state = await loop.run_in_executor(
            None, UnifiState.load, state_dir, record.fingerprint
        )
        self._follower = LogFollower(
            self.ctx, self._state, record.fingerprint, self.resolver, self._lock_of_door
        )
        self._reconciler = Reconciler(
            self._state,
            self.ctx.clock,
            self._state.pin_fingerprint("instance", "kasify")[:12],
            on_change=self.changed.set,
        )
        self._setup = (record, token)
        return record, token

    async def _close_session(self) -> None:
        client, state = self._client, self._state
        self._client, self._state, self._setup = None, None, None
        self._reconciler, self._follower = None, None
        if client is not None:
            await client.aclose()
        if state is not None:
            await state.flush()
            await asyncio.get_running_loop().run_in_executor(None, state.close)

    async def _wait_for_setup_change(self, delay: float) -> None:
        """Wait `delay`, or less when the trust file or the token file changes."""
        before = self._setup_signature()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while loop.time() < deadline:
            await asyncio.sleep(min(self.timings.setup_poll_s, max(0.0, deadline - loop.time())))
            if self._setup_signature() != before:
                return

    def _setup_signature(self) -> tuple[float | None, ...]:
        paths: list[Path | None] = [self.ctx.state_dir / TRUST_FILE, self.config.token_file]
        stamps: list[float | None] = []
        for path in paths:
            try:
                stamps.append(path.stat().st_mtime if path is not None else None)
            except OSError:
                stamps.append(None)
        return tuple(stamps)

    async def _refresh(self, client: UnifiClient, *, topology: bool) -> None:
        """Door state (and the topology for the inventory); hubs for entries that name them."""
        if topology:
            self.topology = await client.topology()
            self.resolver.learn_topology(self.topology)
            if self._follower is not None:
                await self._follower.learn_devices(client)
        doors = await client.doors()
        self.doors = {d.id: d for d in doors}
        self.resolver.learn_doors({d.id: d.name for d in doors})
        self._last_seen = self.ctx.clock.now()
        self.changed.set()

    async def _poll_doors(self, client: UnifiClient) -> None:
        loop = asyncio.get_running_loop()
        last_topology = loop.time()
        while True:
            await asyncio.sleep(self.timings.door_refresh_s)
            due = loop.time() - last_topology >= self.timings.inventory_refresh_s
            try:
                await self._refresh(client, topology=due)
            except UnifiError as exc:
                log.warning("UniFi door refresh: %s", exc)
                continue
            if due:
                last_topology = loop.time()

    # --- notifications and log entries --------------------------------------------------

    async def _on_notification(self, note: Notification) -> None:
        self._last_seen = self.ctx.clock.now()
        for hub, door in hub_doors(note):
            self.resolver.learn_hub(hub, door)
        for update in door_updates(note):
            self._set_door(update.door_id, relay=update.relay, position=update.position)
        if note.event == "access.logs.add" and self._follower is not None:
            entry = parse_log_entry(note.data)
            if entry is not None:
                await self._follower.handle(entry, self._client)

    def _set_door(
        self, door_id: str, *, relay: Relay | None = None, position: Position | None = None
    ) -> None:
        door = self.doors.get(door_id)
        if door is None:
            return
        new = Door(
            door.id,
            door.name,
            door.full_name,
            door.floor_id,
            door.is_bind_hub,
            relay if relay is not None else door.relay,
            position if position is not None else door.position,
        )
        if new != door:
            self.doors[door_id] = new
            self.changed.set()

    def _lock_of_door(self, door_id: str | None) -> str | None:
        if door_id is None:
            return None
        for lock_id, driver in self._drivers.items():
            if driver.door_id == door_id:
                return lock_id
        return None

    # --- reconciliation ------------------------------------------------------------------

    def wanted(self) -> dict[str, Wanted]:
        """Every desired code of this controller with all the doors it opens."""
        codes: dict[str, LockCode] = {}
        doors: dict[str, set[str]] = {}
        for lock_id, lock_codes in self._desired.items():
            driver = self._drivers.get(lock_id)
            if driver is None:
                continue
            for code in lock_codes:
                codes.setdefault(code.code_id, code)
                doors.setdefault(code.code_id, set()).add(driver.door_id)
        return {cid: Wanted(code, tuple(sorted(doors[cid]))) for cid, code in codes.items()}

    async def reconcile_now(self) -> None:
        """Run one pass at once (the CLI and tests; the loop does this by itself)."""
        reconciler, client = self._reconciler, self._client
        if reconciler is not None and client is not None and self._codes_known():
            await reconciler.run(client, self.wanted())

    async def _reconcile_loop(self) -> None:
        delay: float | None = None
        while True:
            await wait_event(self._wake, delay)
            self._wake.clear()
            await asyncio.sleep(self.timings.settle_s)
            self._wake.clear()
            try:
                delay = await self._reconcile_pass()
            except Exception:  # never leave the codes unattended because of one bad pass
                log.exception("UniFi reconcile pass failed")
                delay = self._retry.next_delay()

    def _codes_known(self) -> bool:
        """Whether every driver got its codes: before that, a pass would delete good visitors."""
        if not self._drivers:
            return self._released
        return all(lock_id in self._desired for lock_id in self._drivers)

    async def _reconcile_pass(self) -> float | None:
        """One pass; return when to come back on our own (None: only when woken)."""
        wanted = self.wanted()
        reconciler, client = self._reconciler, self._client
        if reconciler is None or client is None or not self._codes_known():
            self.changed.set()
            return None
        if self.policy.state is LinkState.NEEDS_USER and self.problem:
            reconciler.fail_all(wanted, self.problem)
            return None
        result = await reconciler.run(client, wanted)
        delays: list[float] = []
        if result.needs_user is not None:
            delays.append(self.timings.needs_user_retry_s)
        elif result.retry_in_s == 0.0:
            delays.append(self._retry.next_delay())
        else:
            self._retry.reset()
            if result.retry_in_s is not None:
                delays.append(result.retry_in_s)
        now = self.ctx.clock.now()
        ends = [
            w.code.ends_at - now
            for w in wanted.values()
            if w.code.ends_at is not None and not expired(w.code, now)
        ]
        if ends:
            delays.append(max(0.0, min(ends)) + 0.5)
        return min(delays) if delays else None
