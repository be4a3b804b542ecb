"""The cloud's broker connection: connect, subscribe, hand messages on in batches, reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from sync_protocol.mqtt import Message, MqttSession, TlsFiles, keep_connected

log = logging.getLogger(__name__)

HEALTHY_SESSION_S = 10.0  # a session that lasted this long resets the backoff
BATCH_MAX = 2000  # messages stored in one transaction at most
# A commit costs a WAL flush whatever its size: when a burst is on, let a small batch fill up a
# little (never more than this long) before storing it. A lone event is stored at once.
BATCH_FILL = 200
BATCH_FILL_WAIT_S = 0.02


class StoreUnavailable(ConnectionError):
    """A message could not be stored for now; it stays unacknowledged and comes again."""


class BrokerLink:
    """Keeps one MQTT session up; `session` is the live one or None.

    Messages are handed on in batches: whatever arrived while the previous batch was being
    stored (at most BATCH_MAX). A batch is acknowledged only after `on_batch` returned, that is
    after its transaction committed; StoreUnavailable ends the session with the batch
    unacknowledged, so the broker delivers it again.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        tls: TlsFiles,
        client_id: str,
        session_expiry_s: int,
        clean_start: bool,
        filters: tuple[str, ...],
        on_connected: Callable[[], Coroutine[Any, Any, None]],
        on_batch: Callable[[list[Message]], Coroutine[Any, Any, None]],
    ) -> None:
        self._host = host
        self._port = port
        self._tls = tls
        self._filters = filters
        self._on_connected = on_connected
        self._on_batch = on_batch
        self._session: MqttSession | None = None
        self._client_id = client_id
        self._session_expiry_s = session_expiry_s
        self._clean_start = clean_start

    @property
    def client_id(self) -> str:
        """The MQTT client id of this link."""
        return self._client_id

    @property
    def session(self) -> MqttSession | None:
        """The connected session, or None."""
        session = self._session
        return session if session is not None and session.is_connected else None

    async def run(self) -> None:
        """Connect and consume until cancelled, reconnecting with capped, jittered backoff."""
        what = f"broker {self._host}:{self._port}"
        await keep_connected(self._session_once, what=what, healthy_s=HEALTHY_SESSION_S)

    async def _session_once(self) -> None:
        session = MqttSession(
            client_id=self._client_id,
            host=self._host,
            port=self._port,
            tls=self._tls.context(),
            clean_start=self._clean_start,
            session_expiry_s=self._session_expiry_s,
            manual_ack=True,
        )
        await session.connect()
        republish: asyncio.Task[None] | None = None
        pump: asyncio.Task[None] | None = None
        try:
            if self._filters:
                await session.subscribe(*self._filters)
            self._session = session
            log.info(
                "connected to the broker at %s:%d as %s", self._host, self._port, self._client_id
            )
            republish = asyncio.create_task(self._on_connected(), name="kasify-republish")
            queue: asyncio.Queue[Message] = asyncio.Queue()
            pump = asyncio.create_task(_pump(session, queue), name="kasify-mqtt-pump")
            while (batch := await _next_batch(queue, pump)) is not None:
                await self._on_batch(batch)
                session.ack(*batch)
            log.warning("broker connection closed: %s", await session.wait_closed())
        finally:
            self._session = None
            for task in (republish, pump):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await session.disconnect()


async def _pump(session: MqttSession, queue: asyncio.Queue[Message]) -> None:
    async for message in session.messages():
        queue.put_nowait(message)


async def _next_batch(
    queue: asyncio.Queue[Message], pump: asyncio.Task[None]
) -> list[Message] | None:
    """Everything queued (up to BATCH_MAX), waiting for the first; None once the session ended."""
    if queue.empty():
        getter = asyncio.ensure_future(queue.get())
        await asyncio.wait({getter, pump}, return_when=asyncio.FIRST_COMPLETED)
        if not getter.done():
            getter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await getter
            return None  # the session ended; anything unacknowledged comes again
        batch = [getter.result()]
    else:
        batch = [queue.get_nowait()]
    _drain(queue, batch)
    if 1 < len(batch) < BATCH_FILL:
        await asyncio.sleep(BATCH_FILL_WAIT_S)
        _drain(queue, batch)
    return batch


def _drain(queue: asyncio.Queue[Message], batch: list[Message]) -> None:
    while len(batch) < BATCH_MAX and not queue.empty():
        batch.append(queue.get_nowait())
