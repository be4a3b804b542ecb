"""`kasify-agent run`: wires store, access, locks, keypad, commands and sync into one event loop."""

from __future__ import annotations

import asyncio
import logging
import time

from agent import __version__
from agent.access import AccessState
from agent.clock import Clock, system_clock_synchronized
from agent.config import AgentConfig
from agent.fleet import LockFleet
from agent.health import notify, watchdog_interval_s
from agent.identity import Identity
from agent.keypad import LOCKOUT_KEY, KeypadDoor
from agent.keypad_lockout import LockoutState
from agent.locks.base import DriverContext, Integration, LockCode
from agent.locks.relay import RelayIntegration
from agent.outbox import Outbox, new_event
from agent.remote import CommandRunner
from agent.store import AsyncStore, Store, StoredCode
from agent.sync import Sync
from sync_protocol.errors import ProtocolError
from sync_protocol.models import ClockStatus, CodeKind, EventType, LockKind, ReportedState
from sync_protocol.sealing import unseal_pin

log = logging.getLogger(__name__)

CLOCK_CHECKPOINT_S = 300.0  # how often the floor of known time is persisted (one small write)
CODE_REFRESH_S = 60.0  # how often expired codes are taken off locks that store codes
BACKUP_INTERVAL_S = 3600.0  # at most one database backup per hour, after a change
UNHEALTHY_RECONNECT_S = 150.0  # reconnect attempts come at least every 60 s (backoff cap)


def _forget_other_gateway(store: Store, gateway_id: str) -> None:
    """After a re-enrollment as another gateway, the old codes and events must not be used."""
    previous = store.get("gateway_id")
    if previous == gateway_id:
        return
    if previous is not None:
        log.warning(
            "state was for gateway %s, now %s: clearing codes and outbox", previous, gateway_id
        )
        store.reset()
    store.put("gateway_id", gateway_id)


def lock_codes(
    codes: list[StoredCode], lock_ids: list[str], identity: Identity, now: float
) -> dict[str, list[LockCode]]:
    """The codes each code-storing lock should hold, PINs unsealed just in time (store thread)."""
    wanted = set(lock_ids)
    by_lock: dict[str, list[LockCode]] = {lock_id: [] for lock_id in lock_ids}
    for code in codes:
        targets = wanted.intersection(code.lock_ids)
        if not targets or (code.ends_at is not None and code.ends_at <= now):
            continue
        if not code.pin_sealed:
            log.error("code %s has no sealed PIN (cached by an older agent); skipping", code.id)
            continue
        try:
            pin = unseal_pin(code.pin_sealed, code.id, identity.seal_key)
        except ProtocolError as exc:
            log.error("code %s: %s", code.id, exc)
            continue
        item = LockCode(
            code_id=code.id,
            kind=CodeKind(code.kind),
            pin=pin,
            starts_at=code.starts_at,
            ends_at=code.ends_at,
            label=code.label,
            booking_id=code.booking_id,
            task_id=code.task_id,
        )
        for lock_id in targets:
            by_lock[lock_id].append(item)
    return by_lock


class Agent:
    """The running agent."""

    def __init__(
        self,
        config: AgentConfig,
        identity: Identity,
        store: AsyncStore,
        *,
        last_good: float | None = None,
        lockout: LockoutState | None = None,
    ) -> None:
        self.config = config
        self.identity = identity
        self.store = store
        self.started = time.monotonic()
        self.access = AccessState(identity.pin_key)
        synchronized = (
            (lambda: True) if config.clock.assume_synchronized else system_clock_synchronized
        )
        self.clock = Clock(last_good, synchronized=synchronized)
        self.outbox = Outbox(store, self.clock)
        self.keypad = (
            KeypadDoor(
                config.keypad,
                self.access,
                self.outbox,
                self.clock,
                store=store,
                lockout=lockout,
                clock_policy=config.clock,
            )
            if config.keypad.port
            else None
        )
        self.context = DriverContext(
            config.state_dir, self.clock, self.outbox.add, self._state_changed
        )
        integrations: dict[LockKind, Integration] = {
            LockKind.RELAY: RelayIntegration([self.keypad] if self.keypad else [])
        }
        self._watchers: set[asyncio.Task[None]] = set()
        self.fleet = LockFleet(
            integrations, {LockKind.UNIFI: self._unifi, LockKind.NUKI: self._nuki}
        )
        self.sync = Sync(
            identity,
            store,
            self.access,
            self.outbox,
            self.clock,
            self.build_reported,
            on_applied=self.on_applied,
            on_command=None,
            keepalive_s=config.mqtt.keepalive_s,
            reported_interval_s=config.mqtt.reported_interval_s,
        )
        self.commands = CommandRunner(
            identity, store, self.fleet, self.clock, self.outbox, self.sync_now
        )
        self.sync.on_command = self.commands.handle
        self._last_backup = 0.0
        self._sync_task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, config: AgentConfig, identity: Identity) -> Agent:
        """Open the store and load the applied state into memory."""
        store = await AsyncStore.open(
            config.state_dir / "agent.db", outbox_cap=config.outbox.max_events
        )
        await store.call(_forget_other_gateway, store.sync, identity.gateway_id)
        last_good = await store.call(store.sync.get, "clock_last_good")
        lockout = await store.call(store.sync.get, LOCKOUT_KEY)
        agent = cls(
            config,
            identity,
            store,
            last_good=float(last_good) if last_good else None,
            lockout=LockoutState.from_json(lockout),
        )
        applied = await store.call(store.sync.applied)
        locks = await store.call(store.sync.locks)
        codes = await store.call(store.sync.codes)
        agent.access.replace(locks, codes)
        agent.sync.status.applied_version = applied.version
        agent.sync.status.applied_digest = applied.digest
        log.info(
            "loaded desired version %d: %d locks, %d codes", applied.version, len(locks), len(codes)
        )
        return agent

    async def run(self) -> None:
        """Serve until cancelled."""
        try:
            await self._report_recovery()
            await self.fleet.start()
            await self.on_applied()
            notify("READY=1", f"STATUS=gateway {self.identity.gateway_id} started")
            async with asyncio.TaskGroup() as tasks:
                self._sync_task = tasks.create_task(self.sync.run(), name="sync")
                tasks.create_task(self._clock_checkpoints(), name="clock")
                tasks.create_task(self._watchdog(), name="watchdog")
                tasks.create_task(self._refresh_codes(), name="codes")
                if self.keypad is not None:
                    tasks.create_task(self.keypad.run(), name="keypad")
                    forward = self._forward_keypad_changes(self.keypad)
                    tasks.create_task(forward, name="keypad-state")
        finally:
            notify("STOPPING=1")
            for task in list(self._watchers):
                task.cancel()
            await self.fleet.stop()
            await self.store.close()

    # --- integrations built when their first lock appears -------------------------------------

    def _state_changed(self) -> None:
        self.sync.status.changed.set()

    def _nuki(self) -> Integration:
        from agent.locks.nuki.integration import NukiIntegration

        return NukiIntegration(self.config.nuki, self.config.ble, self.context)

    def _unifi(self) -> Integration:
        from agent.locks.unifi.integration import UnifiIntegration

        integration = UnifiIntegration(self.config.unifi, self.context)
        self._forward(integration.changed)
        return integration

    def _forward(self, changed: asyncio.Event) -> None:
        """Report state again whenever an integration says something changed."""

        async def forward() -> None:
            while True:
                await changed.wait()
                changed.clear()
                self.sync.status.changed.set()

        task = asyncio.create_task(forward(), name="integration-changes")
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    # --- hooks -------------------------------------------------------------------------------

    async def on_applied(self) -> None:
        """A desired state was applied (or loaded): drivers, codes on locks, backup."""
        await self.fleet.sync(self.access.locks)
        await self.push_codes()
        if time.monotonic() - self._last_backup > BACKUP_INTERVAL_S or not self._last_backup:
            await self.store.call(self.store.sync.backup)
            self._last_backup = time.monotonic()

    async def push_codes(self) -> None:
        """Hand every code-storing lock its current codes (expired ones left out)."""
        lock_ids = self.fleet.code_storing()
        if not lock_ids:
            return
        codes = list(self.access.codes)
        by_lock = await self.store.call(
            lock_codes, codes, lock_ids, self.identity, self.clock.now()
        )
        self.fleet.set_codes(by_lock)

    async def sync_now(self) -> None:
        """The cloud asked: reconcile codes, drain the outbox and report, now."""
        await self.push_codes()
        self.outbox.wake.set()
        self.sync.status.changed.set()

    # --- periodic work -----------------------------------------------------------------------

    async def _report_recovery(self) -> None:
        recovery = self.store.sync.recovery
        if recovery is None:
            return
        await self.outbox.add(
            new_event(
                EventType.STORE_RECOVERED,
                self.clock,
                result="restored_backup" if recovery.restored_backup else "started_clean",
                details={"problem": recovery.problem[:200], "set_aside": str(recovery.set_aside)},
            )
        )

    async def _clock_checkpoints(self) -> None:
        trusted: bool | None = None
        while True:
            good = self.clock.advance()
            await self.store.call(self.store.sync.put, "clock_last_good", repr(good))
            if self.clock.trusted != trusted:
                trusted = self.clock.trusted
                if not trusted:
                    log.warning("the system clock is not confirmed; deciding with the floor")
                    await self.outbox.add(
                        new_event(
                            EventType.CLOCK_UNTRUSTED,
                            self.clock,
                            result="behind" if self.clock.behind else "unsynchronized",
                            details={"floor": round(good, 3)},
                        )
                    )
                self.sync.status.changed.set()
            await asyncio.sleep(CLOCK_CHECKPOINT_S)

    async def _refresh_codes(self) -> None:
        while True:
            await asyncio.sleep(CODE_REFRESH_S)
            now = self.clock.now()
            ended = [c for c in self.access.codes if c.ends_at is not None and c.ends_at <= now]
            if ended:
                await self.push_codes()

    def healthy(self) -> bool:
        """Loop responsive and MQTT side alive: connected, or still trying to reconnect."""
        task = self._sync_task
        if task is None or task.done():
            return False
        status = self.sync.status
        return status.connected or time.monotonic() - status.last_attempt < UNHEALTHY_RECONNECT_S

    async def _watchdog(self) -> None:
        interval = watchdog_interval_s()
        while True:
            status = self.sync.status
            link = "online" if status.connected else "offline"
            notify(
                f"STATUS=broker {link}, desired v{status.applied_version}, "
                f"{len(self.access.codes)} codes, outbox {self.store.sync.outbox.depth}"
            )
            if interval is not None and self.healthy():
                notify("WATCHDOG=1")
            await asyncio.sleep(interval or 30.0)

    async def _forward_keypad_changes(self, keypad: KeypadDoor) -> None:
        while True:
            await keypad.changed.wait()
            keypad.changed.clear()
            self.sync.status.changed.set()

    # --- reported state ----------------------------------------------------------------------

    async def build_reported(self) -> ReportedState:
        """Everything the cloud should know about this gateway right now."""
        clock = self.clock
        return ReportedState(
            gateway_id=self.identity.gateway_id,
            applied_version=self.sync.status.applied_version,
            agent_version=__version__,
            uptime_s=round(time.monotonic() - self.started, 1),
            reported_at=Clock.utc(clock.now()),
            clock=ClockStatus(
                synchronized=clock.synchronized,
                trusted=clock.trusted,
                last_good=Clock.utc(clock.last_good) if clock.last_good else None,
                offset_s=clock.cloud_offset_s,
            ),
            outbox_depth=self.store.sync.outbox.depth,
            locks=self.fleet.statuses(),
            codes=self.fleet.deliveries(self.access.codes),
            inventory=self.fleet.inventory(),
            rejection=self.sync.status.last_rejection,
        )
