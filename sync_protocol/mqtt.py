"""A small asyncio adapter over paho-mqtt 2 speaking MQTT 5 with mutual TLS.

We drive paho's socket callbacks from the event loop (no network thread). Unlike aiomqtt, a
publish here resolves with the broker's PUBACK reason code, so a QoS 1 publish the broker refuses
(reason 135, not authorised) is an error rather than a silent success: the agent's outbox deletes
a row only when the broker really took it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0  # TCP + TLS handshake + CONNACK on a slow uplink
PUBLISH_TIMEOUT_S = 15.0  # a PUBACK later than this means the session is unhealthy
SUBSCRIBE_TIMEOUT_S = 10.0
MISC_INTERVAL_S = 1.0  # paho's keepalive bookkeeping wants a call about once a second
DEFAULT_KEEPALIVE_S = 30
HEALTHY_SESSION_S = 30.0  # a session that lasted this long resets the reconnect backoff


class MqttError(Exception):
    """Base of every MQTT session error."""


class ConnectFailed(MqttError, ConnectionError):
    """The broker could not be reached or refused the connection."""


class ConnectionLost(MqttError, ConnectionError):
    """The session ended while an operation was waiting."""


class PublishRefused(MqttError):
    """The broker answered a QoS 1 publish with a failure reason code."""

    def __init__(self, topic: str, reason: str, code: int) -> None:
        super().__init__(f"broker refused publish to {topic}: {reason} ({code})")
        self.topic = topic
        self.reason = reason
        self.code = code


class SubscribeRefused(MqttError):
    """The broker refused a subscription."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The PEM files for mutual TLS."""

    ca: Path
    cert: Path
    key: Path

    def context(self) -> ssl.SSLContext:
        """A client TLS context that verifies the broker against our CA and presents our cert."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx


@dataclass(frozen=True, slots=True)
class Will:
    """The message the broker publishes if we vanish."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True)
class Message:
    """A message delivered to us."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    response_topic: str | None = None
    correlation_data: bytes | None = None
    mid: int = 0  # packet id, for MqttSession.ack() with manual acknowledgement


class Backoff:
    """Capped exponential backoff with full jitter; `reset()` after a healthy session."""

    def __init__(self, initial_s: float = 0.5, cap_s: float = 60.0) -> None:
        self.initial_s = initial_s
        self.cap_s = cap_s
        self._attempt = 0

    def next_delay(self) -> float:
        """The wait before the next attempt."""
        ceiling = min(self.cap_s, self.initial_s * (2**self._attempt))
        self._attempt = min(self._attempt + 1, 30)
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not secrecy

    def reset(self) -> None:
        """Start again from the initial delay."""
        self._attempt = 0


async def keep_connected(
    serve: Callable[[], Awaitable[None]],
    *,
    what: str,
    backoff: Backoff | None = None,
    healthy_s: float = HEALTHY_SESSION_S,
) -> NoReturn:
    """Run `serve` (one whole session) again and again with jittered backoff between attempts.

    Whatever ends a session, the link must come back: expected trouble (broker gone, TLS refused)
    is a warning, anything else is logged with its traceback, and neither stops the loop.
    """
    backoff = backoff or Backoff()
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        try:
            await serve()
        except (MqttError, OSError) as exc:  # ssl.SSLError is an OSError
            log.warning("%s: %s", what, exc)
        except Exception:
            log.exception("%s failed", what)
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # A session that failed while being cancelled must not swallow the cancellation.
            raise asyncio.CancelledError
        if loop.time() - started >= healthy_s:
            backoff.reset()
        delay = backoff.next_delay()
        log.info("%s: reconnecting in %.1f s", what, delay)
        await asyncio.sleep(delay)


class MqttSession:
    """One MQTT 5 connection; create a new session to reconnect."""

    def __init__(
        self,
        *,
        client_id: str,
        host: str,
        port: int,
        tls: ssl.SSLContext | None,
        will: Will | None = None,
        keepalive_s: int = DEFAULT_KEEPALIVE_S,
        clean_start: bool = True,
        session_expiry_s: int = 0,
        manual_ack: bool = False,
    ) -> None:
        """A session; with `clean_start=False` and a session expiry the broker keeps our
        subscriptions and queues QoS 1 messages while we are away, and with `manual_ack` a message
        is acknowledged only by `ack()` — after it was stored — so a crash cannot lose it."""
        self.client_id = client_id
        self.host = host
        self.port = port
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
            manual_ack=manual_ack,
        )
        self._clean_start = clean_start
        self._session_expiry_s = session_expiry_s
        self._manual_ack = manual_ack
        self._client.enable_logger(logging.getLogger("paho"))
        if tls is not None:
            self._client.tls_set_context(tls)
        if will is not None:
            self._client.will_set(will.topic, will.payload, will.qos, will.retain)
        self._keepalive_s = keepalive_s
        self._connected: asyncio.Future[None] = self._loop.create_future()
        self._closed: asyncio.Future[str] = self._loop.create_future()
        self._publishes: dict[int, tuple[str, asyncio.Future[None]]] = {}
        self._subscribes: dict[int, asyncio.Future[list[ReasonCode]]] = {}
        self._messages: asyncio.Queue[Message] = asyncio.Queue()
        self._misc_task: asyncio.Task[None] | None = None
        self._sock: Any = None
        c = self._client
        c.on_socket_open = self._on_socket_open
        c.on_socket_close = self._on_socket_close
        c.on_socket_register_write = self._on_register_write
        c.on_socket_unregister_write = self._on_unregister_write
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message

    # --- lifecycle ---------------------------------------------------------------------------

    async def connect(self, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        """Open the connection and wait for a successful CONNACK."""
        try:
            async with asyncio.timeout(timeout_s):
                # paho's connect does DNS, TCP and the TLS handshake synchronously.
                await self._loop.run_in_executor(None, self._blocking_connect)
                await self._connected
        except TimeoutError:
            self._abort("connect timed out")
            raise ConnectFailed(
                f"no CONNACK from {self.host}:{self.port} within {timeout_s} s"
            ) from None
        except (OSError, ssl.SSLError) as exc:
            self._abort(str(exc))
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        self._misc_task = asyncio.create_task(self._misc(), name=f"mqtt-misc-{self.client_id}")

    def _blocking_connect(self) -> None:
        props: Properties | None = None
        if self._session_expiry_s:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self._session_expiry_s
        self._client.connect(
            self.host,
            self.port,
            keepalive=self._keepalive_s,
            clean_start=self._clean_start,
            properties=props,
        )

    async def disconnect(self) -> None:
        """Leave cleanly (the broker then discards the will)."""
        if not self._closed.done() and self._connected.done():
            self._client.disconnect()
            self._flush()
        self._abort("disconnected by us")

    async def wait_closed(self) -> str:
        """Wait until the session ends; returns why."""
        return await asyncio.shield(self._closed)

    @property
    def is_connected(self) -> bool:
        """Whether the session is up."""
        return (
            self._connected.done()
            and self._connected.exception() is None
            and not self._closed.done()
        )

    # --- operations --------------------------------------------------------------------------

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
        timeout_s: float = PUBLISH_TIMEOUT_S,
    ) -> None:
        """Publish; for QoS 1 return only after a successful PUBACK."""
        self._ensure_open()
        props: Properties | None = None
        if response_topic is not None or correlation_data is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            if response_topic is not None:
                props.ResponseTopic = response_topic
            if correlation_data is not None:
                props.CorrelationData = correlation_data
        done: asyncio.Future[None] = self._loop.create_future()
        info = self._client.publish(topic, payload, qos=qos, retain=retain, properties=props)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise ConnectionLost(f"publish to {topic} failed: {paho.error_string(info.rc)}")
        if qos == 0:
            return
        self._publishes[info.mid] = (topic, done)
        try:
            async with asyncio.timeout(timeout_s):
                await done
        except TimeoutError:
            raise ConnectionLost(f"no PUBACK for {topic} within {timeout_s} s") from None
        finally:
            self._publishes.pop(info.mid, None)

    async def subscribe(self, *filters: str, qos: int = 1) -> None:
        """Subscribe to topic filters; raise SubscribeRefused if any is refused."""
        self._ensure_open()
        done: asyncio.Future[list[ReasonCode]] = self._loop.create_future()
        rc, mid = self._client.subscribe([(f, SubscribeOptions(qos=qos)) for f in filters])
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise ConnectionLost(f"subscribe failed: {paho.error_string(rc)}")
        self._subscribes[mid] = done
        try:
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
                codes = await done
        except TimeoutError:
            raise ConnectionLost(f"no SUBACK within {SUBSCRIBE_TIMEOUT_S} s") from None
        finally:
            self._subscribes.pop(mid, None)
        refused = [f"{f}: {c}" for f, c in zip(filters, codes, strict=False) if c.is_failure]
        if refused:
            raise SubscribeRefused("broker refused " + ", ".join(refused))

    async def messages(self) -> AsyncIterator[Message]:
        """Delivered messages until the session ends."""
        while True:
            if not self._messages.empty():  # a burst: no future and no wait per message
                yield self._messages.get_nowait()
                continue
            getter = asyncio.ensure_future(self._messages.get())
            waiting: set[asyncio.Future[Any]] = {getter, self._closed}
            try:
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            finally:
                # A task asked to cancel is not cancelled() until it ran once more: decide now.
                got = getter.done() and not getter.cancelled()
                if not got:
                    getter.cancel()
            if got:
                yield getter.result()
                continue
            while not self._messages.empty():
                yield self._messages.get_nowait()
            return

    def ack(self, *messages: Message) -> None:
        """Acknowledge QoS 1 messages received with `manual_ack` (after storing them); the
        PUBACKs of one call leave in as few socket writes as they fit in."""
        if not (self._manual_ack and self.is_connected):
            return
        for message in messages:
            if message.qos > 0:
                self._client.ack(message.mid, message.qos)
        self._flush()

    def _ensure_open(self) -> None:
        if self._closed.done():
            raise ConnectionLost(f"session closed: {self._closed.result()}")
        if not self.is_connected:
            raise ConnectionLost("session is not connected")

    # --- paho glue (runs on the loop, except socket_open during connect) ----------------------

    def _call_in_loop(self, fn: Any, *args: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._call_in_loop(self._watch_socket, sock)

    def _watch_socket(self, sock: Any) -> None:
        self._sock = sock
        with contextlib.suppress(OSError, AttributeError):  # small packets must not wait for Nagle
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._loop.add_reader(sock, self._readable)
        if self._client.want_write():
            self._loop.add_writer(sock, self._writable)

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._call_in_loop(self._unwatch_socket, sock)

    def _unwatch_socket(self, sock: Any) -> None:
        if sock.fileno() >= 0:
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)
        self._sock = None

    def _on_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._call_in_loop(self._add_writer, sock)

    def _add_writer(self, sock: Any) -> None:
        if sock.fileno() >= 0:
            self._loop.add_writer(sock, self._writable)

    def _on_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._call_in_loop(self._remove_writer, sock)

    def _remove_writer(self, sock: Any) -> None:
        if sock.fileno() >= 0:
            self._loop.remove_writer(sock)

    def _readable(self) -> None:
        self._client.loop_read()
        # TLS may hold further decrypted records that select() will never report.
        sock = self._sock
        while sock is not None and isinstance(sock, ssl.SSLSocket) and sock.pending():
            if self._client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
            sock = self._sock

    def _writable(self) -> None:
        self._client.loop_write()

    def _flush(self) -> None:
        if self._sock is not None and self._client.want_write():
            self._client.loop_write()

    async def _misc(self) -> None:
        while not self._closed.done():
            await asyncio.sleep(MISC_INTERVAL_S)
            self._client.loop_misc()

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self._connected.done():
            return
        if reason_code.is_failure:
            self._connected.set_exception(
                ConnectFailed(f"broker refused the connection: {reason_code} ({reason_code.value})")
            )
        else:
            self._connected.set_result(None)

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        # paho holds its (non-reentrant) callback lock here; finish tearing down outside it.
        self._loop.call_soon(self._abort, f"{reason_code}")

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        entry = self._publishes.get(mid)
        if entry is None or entry[1].done():
            return
        topic, done = entry
        if reason_code.is_failure:
            done.set_exception(PublishRefused(topic, str(reason_code), reason_code.value))
        else:
            done.set_result(None)

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        done = self._subscribes.get(mid)
        if done is not None and not done.done():
            done.set_result(reason_codes)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        props = msg.properties
        self._messages.put_nowait(
            Message(
                topic=msg.topic,
                payload=bytes(msg.payload),
                qos=msg.qos,
                retain=bool(msg.retain),
                response_topic=getattr(props, "ResponseTopic", None),
                correlation_data=getattr(props, "CorrelationData", None),
                mid=msg.mid,
            )
        )

    def _abort(self, why: str) -> None:
        if self._closed.done():
            return
        self._closed.set_result(why)
        if not self._connected.done():
            self._connected.set_exception(ConnectFailed(why))
            self._connected.exception()  # mark retrieved: connect() reports it
        for _, done in self._publishes.values():
            if not done.done():
                done.set_exception(ConnectionLost(f"connection lost before PUBACK: {why}"))
        for sub in self._subscribes.values():
            if not sub.done():
                sub.set_exception(ConnectionLost(f"connection lost before SUBACK: {why}"))
        if self._misc_task is not None and self._misc_task is not asyncio.current_task():
            self._misc_task.cancel()
        sock = self._sock
        if sock is not None:
            self._unwatch_socket(sock)
        self._client._sock_close()  # paho has no public "drop the socket" call
