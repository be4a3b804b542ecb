"""Runs the broker link, the desired-state publisher and (optionally) the ingest.

`kasify-cloud serve` runs it in the app's lifespan, with the ingest unless told otherwise;
`kasify-cloud ingest` runs it alone as an ingest worker. Every process publishes the desired
states its own changes call for, and sweeps for changes other processes flagged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from cloud_api.db import Database
from cloud_api.keys import CloudKeys
from cloud_api.metrics import Metrics
from cloud_api.settings import Settings
from cloud_api.sync.ingest import INGEST_FILTERS, Acks, Incoming, Ingest
from cloud_api.sync.link import BrokerLink
from cloud_api.sync.publisher import DesiredPublisher
from sync_protocol.aio import wait_event
from sync_protocol.codec import encode_ack
from sync_protocol.models import MAX_EVENTS_PER_BATCH, EventAck
from sync_protocol.mqtt import ConnectionLost, Message, MqttError, MqttSession
from sync_protocol.topics import Channel, topic

log = logging.getLogger(__name__)

RESULT_POLL_S = 0.25  # a result stored by another worker is seen within this
KICK_TIMEOUT_S = 10.0  # connecting and disconnecting takes milliseconds on a healthy broker


class NotConnected(ConnectionLost):
    """The cloud has no broker session right now."""


class CommandWaiters:
    """Wakes requests waiting for a command's result; notify() is safe from any thread."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._events: dict[str, list[asyncio.Event]] = defaultdict(list)

    def notify(self, command_id: str) -> None:
        """A command got its result (stored and committed)."""
        self._loop.call_soon_threadsafe(self._set, command_id)

    def _set(self, command_id: str) -> None:
        for event in self._events.get(command_id, []):
            event.set()

    async def wait(self, command_id: str, timeout_s: float) -> None:
        """Wait until notified or `timeout_s` passed (the caller re-reads the database)."""
        event = asyncio.Event()
        self._events[command_id].append(event)
        try:
            await wait_event(event, timeout_s)
        finally:
            self._events[command_id].remove(event)
            if not self._events[command_id]:
                del self._events[command_id]


class SyncService:
    """The cloud's side of the sync contract: start() in a lifespan or worker, stop() at the end."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        keys: CloudKeys,
        metrics: Metrics | None = None,
        *,
        ingest: bool = True,
    ) -> None:
        self._settings = settings
        self._db = db
        self._keys = keys
        self._metrics = metrics or Metrics()
        self._with_ingest = ingest
        # One thread each, so ingest bursts never delay a publish and writes stay ordered.
        self._publish_executor = ThreadPoolExecutor(1, thread_name_prefix="kasify-publish")
        self._ingest_executor = ThreadPoolExecutor(1, thread_name_prefix="kasify-ingest")
        self._tasks: list[asyncio.Task[None]] = []
        self._link: BrokerLink | None = None
        self._publisher: DesiredPublisher | None = None
        self._waiters: CommandWaiters | None = None
        self._ingest: Ingest | None = None

    @property
    def connected(self) -> bool:
        """Whether the broker session is up."""
        return self._link is not None and self._link.session is not None

    @property
    def ingesting(self) -> bool:
        """Whether this process ingests what gateways publish."""
        return self._with_ingest

    async def start(self) -> None:
        """Start the link, publisher, sweeps and horizon check as background tasks."""
        self._waiters = CommandWaiters()
        self._ingest = Ingest(self._db, self._metrics, self._waiters.notify)
        filters: tuple[str, ...]
        if self._with_ingest:
            # Stable, so the broker keeps this worker's share of events while it is away.
            client_id, filters = self._settings.client_id, INGEST_FILTERS
            expiry, clean = self._settings.mqtt_session_expiry_s, False
        else:
            # API only: publishes, subscribes to nothing, needs no session kept.
            client_id, filters = f"{self._settings.client_id}-api-{secrets.token_hex(4)}", ()
            expiry, clean = 0, True
        self._link = BrokerLink(
            host=self._settings.broker_host,
            port=self._settings.broker_port,
            tls=self._keys.paths.mqtt_tls(),
            client_id=client_id,
            session_expiry_s=expiry,
            clean_start=clean,
            filters=filters,
            on_connected=self._on_connected,
            on_batch=self._on_batch,
        )
        self._publisher = DesiredPublisher(
            self._db,
            self._keys,
            timedelta(days=self._settings.sync_horizon_days),
            self._publish_executor,
            self._link,
            self._metrics,
        )
        self._db.on_gateways_changed(self._publisher.notify)
        self._tasks = [
            asyncio.create_task(self._link.run(), name="kasify-broker-link"),
            asyncio.create_task(self._publisher.run(), name="kasify-desired-publisher"),
            asyncio.create_task(self._publisher.horizon_loop(), name="kasify-horizon-check"),
            asyncio.create_task(self._publisher.dirty_sweep(), name="kasify-dirty-sweep"),
        ]

    async def _on_connected(self) -> None:
        if self._publisher is not None:
            await self._publisher.on_connected()

    async def _on_batch(self, messages: list[Message]) -> None:
        assert self._ingest is not None
        batch = [Incoming(m.topic, m.payload, m.correlation_data) for m in messages]
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        acks = await loop.run_in_executor(self._ingest_executor, self._ingest.handle_batch, batch)
        self._metrics.ingest_batch_seconds.observe(time.perf_counter() - started)
        await self._confirm(acks)

    async def _confirm(self, acks: Acks) -> None:
        """Tell each gateway which of its events are stored, so they leave its outbox."""
        session = self._link.session if self._link is not None else None
        if session is None:
            return  # the agent sends them again and gets the confirmation then
        now = datetime.now(UTC)
        for gateway_id, event_ids in acks.items():
            for start in range(0, len(event_ids), MAX_EVENTS_PER_BATCH):
                ack = EventAck(
                    gateway_id=gateway_id,
                    event_ids=tuple(event_ids[start : start + MAX_EVENTS_PER_BATCH]),
                    issued_at=now,
                )
                payload = encode_ack(ack, self._keys.signing_key)
                try:
                    await session.publish(topic(gateway_id, Channel.ACK), payload, qos=1)
                except MqttError as exc:
                    log.warning("could not confirm events to gateway %s: %s", gateway_id, exc)
                    return

    async def send_command(self, gateway_id: str, command_id: str, payload: bytes) -> None:
        """Publish a signed command (QoS 1) with the result topic and the command id as
        correlation data; raise NotConnected or another MqttError when it was not delivered."""
        session = self._link.session if self._link is not None else None
        if session is None:
            raise NotConnected("the cloud is not connected to the broker")
        await session.publish(
            topic(gateway_id, Channel.CMD),
            payload,
            qos=1,
            response_topic=topic(gateway_id, Channel.CMD_RESULT),
            correlation_data=command_id.encode(),
        )

    async def disconnect_gateways(self, gateway_ids: Sequence[str]) -> None:
        """End the live broker connections of gateways whose certificates were just revoked.

        The broker checks the CRL only when a connection starts, so a deleted gateway that is
        online would stay connected. Connecting with its client id makes the broker close the
        older connection (MQTT's session takeover); its reconnect is then refused by the CRL.
        The clean start also discards the session the broker kept for it.
        """
        for gateway_id in gateway_ids:
            session = MqttSession(
                client_id=gateway_id,
                host=self._settings.broker_host,
                port=self._settings.broker_port,
                tls=self._keys.paths.mqtt_tls().context(),
                clean_start=True,
            )
            try:
                async with asyncio.timeout(KICK_TIMEOUT_S):
                    await session.connect()
                    await session.disconnect()
            except (MqttError, OSError, TimeoutError) as exc:
                log.warning(
                    "could not close the broker connection of revoked gateway %s: %s "
                    "(the broker refuses it from its next reconnect)",
                    gateway_id,
                    exc,
                )
            else:
                log.info("closed the broker connection of revoked gateway %s", gateway_id)

    async def wait_result(self, command_id: str, timeout_s: float) -> None:
        """Return when the command may have its result: notified by this process's ingest, or
        after RESULT_POLL_S (another worker may have stored it), or when `timeout_s` is up."""
        assert self._waiters is not None
        await self._waiters.wait(command_id, min(timeout_s, RESULT_POLL_S))

    async def stop(self) -> None:
        """Cancel the tasks, close the session, let in-flight database work finish."""
        if self._publisher is not None:
            self._db.remove_listener(self._publisher.notify)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for executor in (self._publish_executor, self._ingest_executor):
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
