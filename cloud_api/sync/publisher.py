"""Re-sign and publish desired states of changed gateways, coalescing bursts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import selectinload

from cloud_api.db import Database, utcnow
from cloud_api.keys import CloudKeys
from cloud_api.metrics import Metrics
from cloud_api.models import Gateway
from cloud_api.sync.desired import load_inputs, sign_desired
from sync_protocol.mqtt import MqttError, MqttSession
from sync_protocol.topics import Channel, topic

log = logging.getLogger(__name__)

COALESCE_S = 0.02  # one request's changes land within a few ms; p99 booking->agent is 300 ms
RETRY_S = 5.0  # after a database error, try the same gateways again
HORIZON_CHECK_INTERVAL_S = 300.0  # codes enter/leave the horizon on hour scales; cheap query
DIRTY_SWEEP_S = 2.0  # picks up changes committed by another process (API or ingest worker)
# A gateway changing again and again (a burst of bookings) is re-signed at most this often; a
# change to a quiet gateway goes out at once (after COALESCE_S).
MIN_REBUILD_S = 0.05
BUILD_BATCH = 100  # gateways signed in one transaction
CLEAR = b""  # an empty retained message removes a deleted gateway's document from the broker


class SessionSource(Protocol):
    """Where the current broker session comes from."""

    @property
    def session(self) -> MqttSession | None:
        """The connected session, or None."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A retained desired document to publish (empty to clear a deleted gateway's)."""

    gateway_id: str
    payload: bytes
    version: int = 0


class DesiredPublisher:
    """Turns "gateway changed" notices into signed, retained desired states.

    The `desired_dirty` column is the source of truth, so nothing is lost across restarts; the
    in-memory notices only make it fast. All publishing of this process happens under one lock, so
    a document republished on reconnect can never overtake a newer one. Several processes may
    publish (API and ingest workers): after each publish the stored version is read again and, if
    another process signed a newer one meanwhile, that one is published again, so the retained
    document always ends on the newest version.
    """

    def __init__(
        self,
        db: Database,
        keys: CloudKeys,
        horizon: timedelta,
        executor: Executor,
        link: SessionSource,
        metrics: Metrics | None = None,
    ) -> None:
        self._db = db
        self._keys = keys
        self._horizon = horizon
        self._executor = executor
        self._link = link
        self._metrics = metrics or Metrics()
        self._loop = asyncio.get_running_loop()
        self._pending: set[str] = set()
        self._since: dict[str, float] = {}  # gateway -> first unpublished change (monotonic)
        self._built_at: dict[str, float] = {}  # gateway -> last build (monotonic)
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    # --- notices -------------------------------------------------------------------------

    def notify(self, gateway_ids: frozenset[str]) -> None:
        """Note changed gateways; safe to call from any thread."""
        self._loop.call_soon_threadsafe(self._enqueue, gateway_ids)

    def _enqueue(self, gateway_ids: Iterable[str]) -> None:
        now = time.monotonic()
        for gateway_id in gateway_ids:
            self._pending.add(gateway_id)
            self._since.setdefault(gateway_id, now)
        self._wake.set()

    # --- tasks ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Publish changed gateways until cancelled; never dies of an error."""
        while True:
            await self._wake.wait()
            await asyncio.sleep(COALESCE_S)
            self._wake.clear()
            ids = self._due()
            if not ids:
                continue
            try:
                async with self._lock:
                    outgoing = await self._loop.run_in_executor(self._executor, self._build, ids)
                    await self._send(outgoing)
                for gateway_id in ids - self._pending:
                    self._since.pop(gateway_id, None)  # nothing to publish, or it failed
            except Exception:
                log.exception("building desired states for %d gateways failed; retrying", len(ids))
                self._loop.call_later(RETRY_S, self._enqueue, ids)

    def _due(self) -> set[str]:
        """Take the pending gateways not built within MIN_REBUILD_S; wake again for the rest."""
        now = time.monotonic()
        due = {
            g for g in self._pending if now - self._built_at.get(g, -MIN_REBUILD_S) >= MIN_REBUILD_S
        }
        self._pending -= due
        if self._pending:
            wait = min(MIN_REBUILD_S - (now - self._built_at[g]) for g in self._pending)
            self._loop.call_later(max(wait, 0.0), self._wake.set)
        for gateway_id in due:
            self._built_at[gateway_id] = now
        if len(self._built_at) > 4 * len(due) + 10_000:
            self._built_at = {g: t for g, t in self._built_at.items() if now - t < MIN_REBUILD_S}
        return due

    async def on_connected(self) -> None:
        """After every (re)connect: republish stored documents unchanged, then build dirty ones."""
        try:
            async with self._lock:
                stored = await self._loop.run_in_executor(self._executor, self._stored)
                await self._send(stored)
                # Codes may have entered or left the horizon while we were disconnected.
                await self._loop.run_in_executor(self._executor, self._mark_due)
                dirty = await self._loop.run_in_executor(self._executor, self._dirty_ids)
                outgoing = await self._loop.run_in_executor(self._executor, self._build, dirty)
                await self._send(outgoing)
            log.info("republished %d desired states, built %d", len(stored), len(outgoing))
        except Exception:
            log.exception("republishing desired states after connecting failed")

    async def dirty_sweep(self) -> None:
        """Periodically pick up gateways another process flagged (its notices do not reach us)."""
        while True:
            await asyncio.sleep(DIRTY_SWEEP_S)
            try:
                dirty = await self._loop.run_in_executor(self._executor, self._dirty_ids)
            except Exception:
                log.exception("looking for changed gateways failed")
                continue
            fresh = set(dirty) - self._pending
            if fresh:
                self._enqueue(fresh)

    async def horizon_loop(self) -> None:
        """Periodically rebuild gateways whose set of codes in the horizon has changed."""
        while True:
            await asyncio.sleep(HORIZON_CHECK_INTERVAL_S)
            try:
                due = await self._loop.run_in_executor(self._executor, self._mark_due)
            except Exception:
                log.exception("horizon check failed")
                continue
            if due:
                log.info("%d gateways have codes entering or leaving the horizon", len(due))
                self._enqueue(due)

    # --- broker --------------------------------------------------------------------------

    async def _send(self, outgoing: list[Outgoing]) -> None:
        if not outgoing:
            return
        session = self._link.session
        if session is None or not session.is_connected:
            log.info("broker not connected: %d desired states wait for it", len(outgoing))
            return
        results = await asyncio.gather(
            *(self._publish_one(session, item) for item in outgoing), return_exceptions=False
        )
        published = [item for item, ok in zip(outgoing, results, strict=True) if ok]
        if not published:
            return
        now = time.monotonic()
        for item in published:
            since = self._since.pop(item.gateway_id, None)
            if since is not None:
                self._metrics.publish_lag.observe(now - since)
        self._metrics.desired_published.inc(len(published))
        newer = await self._loop.run_in_executor(self._executor, self._mark_published, published)
        if newer:
            log.info("republishing %d desired states another worker signed meanwhile", len(newer))
            await self._send(newer)

    async def _publish_one(self, session: MqttSession, item: Outgoing) -> bool:
        try:
            await session.publish(
                topic(item.gateway_id, Channel.DESIRED), item.payload, qos=1, retain=True
            )
        except MqttError as exc:
            log.warning(
                "desired state of gateway %s not published (%s); it is republished on reconnect",
                item.gateway_id,
                exc,
            )
            return False
        return True

    # --- database (run in the executor) ---------------------------------------------------

    def _build(self, gateway_ids: Iterable[str]) -> list[Outgoing]:
        """Sign the changed gateways' documents, many per transaction (one commit, one WAL
        flush); if a batch fails, each gateway is tried alone so one cannot hold up the rest."""
        ids = sorted(gateway_ids)
        outgoing: list[Outgoing] = []
        for start in range(0, len(ids), BUILD_BATCH):
            part = ids[start : start + BUILD_BATCH]
            try:
                outgoing += self._build_many(part)
            except (OperationalError, InterfaceError):
                raise
            except Exception:
                if len(part) == 1:
                    raise
                log.exception("building %d desired states together failed; one by one", len(part))
                for gateway_id in part:
                    try:
                        outgoing += self._build_many([gateway_id])
                    except (OperationalError, InterfaceError):
                        raise
                    except Exception:
                        log.exception("building the desired state of gateway %s failed", gateway_id)
        return outgoing

    def _build_many(self, gateway_ids: list[str]) -> list[Outgoing]:
        outgoing = []
        signed_log = []
        with self._db.session() as session:
            gateways = session.scalars(
                select(Gateway)
                .where(Gateway.id.in_(gateway_ids), Gateway.desired_dirty)
                .order_by(Gateway.id)  # the same lock order in every worker
                .options(selectinload(Gateway.property))
                .with_for_update(of=Gateway)
            ).all()  # those no longer dirty were built already (coalesced, or another worker)
            now = utcnow()
            live = [g for g in gateways if g.deleted_at is None and g.seal_public_key is not None]
            inputs = load_inputs(
                session, [g for g in live if g.enrolled_at], now, now + self._horizon
            )
            for gateway in gateways:
                if gateway.deleted_at is not None:
                    outgoing.append(Outgoing(gateway.id, CLEAR))  # flag cleared once published
                    continue
                if gateway.enrolled_at is None or gateway.seal_public_key is None:
                    gateway.desired_dirty = False
                    continue
                signed = sign_desired(
                    gateway,
                    inputs[gateway.id],
                    now=now,
                    horizon=self._horizon,
                    signing_key=self._keys.signing_key,
                )
                gateway.desired_version = signed.version
                gateway.desired_document = signed.document
                gateway.desired_refresh_at = signed.refresh_at
                gateway.desired_dirty = False
                outgoing.append(Outgoing(gateway.id, signed.document, signed.version))
                signed_log.append((gateway.id, signed))
            session.commit()
        for gateway_id, signed in signed_log:
            log.info(
                "signed desired v%d for gateway %s: %d codes, %d bytes",
                signed.version,
                gateway_id,
                signed.codes,
                len(signed.document),
            )
        return outgoing

    def _stored(self) -> list[Outgoing]:
        with self._db.session() as session:
            rows = session.execute(
                select(Gateway.id, Gateway.desired_document, Gateway.desired_version).where(
                    Gateway.enrolled_at.is_not(None),
                    Gateway.deleted_at.is_(None),
                    Gateway.desired_document.is_not(None),
                )
            ).all()
        return [Outgoing(gid, document, version) for gid, document, version in rows if document]

    def _dirty_ids(self) -> list[str]:
        with self._db.session() as session:
            return list(session.scalars(select(Gateway.id).where(Gateway.desired_dirty)))

    def _mark_due(self) -> list[str]:
        with self._db.session() as session:
            due = list(
                session.scalars(
                    select(Gateway.id).where(
                        Gateway.enrolled_at.is_not(None),
                        Gateway.deleted_at.is_(None),
                        Gateway.desired_refresh_at <= utcnow(),
                    )
                )
            )
            if due:
                session.execute(
                    update(Gateway).where(Gateway.id.in_(due)).values(desired_dirty=True)
                )
            session.commit()
        return due

    def _mark_published(self, published: list[Outgoing]) -> list[Outgoing]:
        """Record the publish; return newer documents other processes signed in the meantime."""
        now = utcnow()
        cleared = [item.gateway_id for item in published if item.payload == CLEAR]
        sent = {item.gateway_id: item.version for item in published if item.payload != CLEAR}
        newer: list[Outgoing] = []
        with self._db.session() as session:
            if sent:
                session.execute(
                    update(Gateway)
                    .where(Gateway.id.in_(list(sent)))
                    .values(desired_published_at=now)
                )
                rows = session.execute(
                    select(Gateway.id, Gateway.desired_document, Gateway.desired_version).where(
                        Gateway.id.in_(list(sent)), Gateway.deleted_at.is_(None)
                    )
                ).all()
                newer = [
                    Outgoing(gid, document, version)
                    for gid, document, version in rows
                    if document and version > sent[gid]
                ]
            if cleared:
                session.execute(
                    update(Gateway)
                    .where(Gateway.id.in_(cleared), Gateway.deleted_at.is_not(None))
                    .values(desired_dirty=False, desired_published_at=now)
                )
            session.commit()
        return newer
