"""Builders for agent tests: an enrolled state directory and signed desired documents."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from agent.config import AgentConfig
from agent.daemon import Agent
from agent.identity import Identity, ensure_pin_key, write_file
from cloud_api.pki import CertificateAuthority, cert_pem
from simulator.broker import RunningBroker
from sync_protocol.codec import (
    decode_command_result,
    decode_events,
    decode_reported,
    encode_ack,
    encode_desired,
)
from sync_protocol.models import (
    CodeKind,
    CommandResult,
    DesiredCode,
    DesiredState,
    Event,
    EventAck,
    LockKind,
    LockSpec,
    ReportedState,
)
from sync_protocol.mqtt import MqttSession
from sync_protocol.sealing import seal_pin
from sync_protocol.topics import Channel, parse_topic, topic

LOCK = "lock-front"


def config(state_dir: Path, **fields: object) -> AgentConfig:
    """An agent configuration for tests: this host's clock counts as synchronised."""
    values: dict[str, object] = {"state_dir": state_dir, "clock": {"assume_synchronized": True}}
    values.update(fields)
    return AgentConfig.model_validate(values)


def enrolled_state_dir(
    state_dir: Path,
    ca: CertificateAuthority,
    gateway_id: str,
    signing_key: SigningKey,
    *,
    broker_host: str = "127.0.0.1",
    broker_port: int = 1,
) -> Identity:
    """Lay out a state directory exactly as `kasify-agent enroll` does, with a CA-issued cert."""
    key, cert = ca.issue_client(gateway_id)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_file(state_dir / "tls" / "client.key", key_bytes, secret=True)
    write_file(state_dir / "tls" / "client.crt", cert_pem(cert), secret=False)
    write_file(state_dir / "tls" / "ca.crt", cert_pem(ca.cert), secret=False)
    write_file(state_dir / "seal.key", bytes(PrivateKey.generate()), secret=True)
    verify = [base64.b64encode(bytes(signing_key.verify_key)).decode()]
    write_file(state_dir / "verify_keys.json", json.dumps(verify).encode(), secret=False)
    ensure_pin_key(state_dir)
    info = {
        "gateway_id": gateway_id,
        "property_id": "prop-1",
        "broker": {"host": broker_host, "port": broker_port},
        "cloud_url": "http://127.0.0.1:1",
    }
    write_file(state_dir / "gateway.json", json.dumps(info).encode(), secret=False)
    return Identity.load(state_dir)


def code(
    identity: Identity,
    code_id: str,
    pin: str,
    *,
    starts: datetime | None = None,
    ends: datetime | None = None,
    locks: tuple[str, ...] = (LOCK,),
) -> DesiredCode:
    """A guest code sealed to the identity's key."""
    now = datetime.now(UTC)
    return DesiredCode(
        id=code_id,
        kind=CodeKind.GUEST,
        pin=seal_pin(pin, code_id, identity.seal_key.public_key),
        starts_at=starts or now - timedelta(hours=1),
        ends_at=ends or now + timedelta(days=1),
        lock_ids=locks,
        booking_id=f"booking-{code_id}",
    )


def desired(identity: Identity, version: int, codes: tuple[DesiredCode, ...]) -> DesiredState:
    """A desired state with the keypad's relay lock and the given codes."""
    now = datetime.now(UTC)
    return DesiredState(
        gateway_id=identity.gateway_id,
        property_id="prop-1",
        version=version,
        issued_at=now,
        timezone="Europe/Madrid",
        horizon_until=now + timedelta(days=14),
        locks=(LockSpec(id=LOCK, kind=LockKind.RELAY, ref="keypad", name="Front door"),),
        codes=codes,
    )


def signed(state: DesiredState, key: SigningKey) -> bytes:
    """The bytes the cloud publishes."""
    return encode_desired(state, key)


@contextlib.asynccontextmanager
async def running(agent: Agent) -> AsyncIterator[Agent]:
    """The agent's run() as a background task, cancelled (and awaited) on exit."""
    task = asyncio.create_task(agent.run())
    try:
        yield agent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait until `predicate()` holds; fail after `timeout_s` (a bound, not a measurement)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.02)


class Collector:
    """A cloud-side MQTT client that records what one gateway publishes.

    With a signing key it also confirms every event batch on the gateway's `ack` topic, as the
    cloud does once it stored the events.
    """

    def __init__(self, session: MqttSession, signing_key: SigningKey | None = None) -> None:
        self.session = session
        self.signing_key = signing_key
        self.messages: list[tuple[str, bytes]] = []
        self.correlations: dict[bytes, bytes] = {}
        self._task = asyncio.create_task(self._collect())

    @classmethod
    async def start(
        cls,
        broker: RunningBroker,
        certs: Path,
        gateway_id: str,
        signing_key: SigningKey | None = None,
    ) -> Collector:
        """Connect as the cloud and subscribe to the gateway's outbound channels."""
        tls = broker.client_tls("cloud", certs)
        session = MqttSession(
            client_id=f"cloud-{gateway_id}",
            host=broker.host,
            port=broker.port,
            tls=tls.context(),
        )
        await session.connect()
        await session.subscribe(
            *(
                topic(gateway_id, ch)
                for ch in (Channel.EVENTS, Channel.REPORTED, Channel.PRESENCE, Channel.CMD_RESULT)
            )
        )
        return cls(session, signing_key)

    async def _collect(self) -> None:
        async for message in self.session.messages():
            self.messages.append((message.topic, message.payload))
            if message.correlation_data is not None:
                self.correlations[message.payload] = message.correlation_data
            gateway_id, channel = parse_topic(message.topic)
            if channel is Channel.EVENTS and self.signing_key is not None:
                batch = decode_events(message.payload, gateway_id=gateway_id)
                ack = EventAck(
                    gateway_id=gateway_id,
                    event_ids=tuple(e.id for e in batch.events),
                    issued_at=datetime.now(UTC),
                )
                await self.session.publish(
                    topic(gateway_id, Channel.ACK), encode_ack(ack, self.signing_key)
                )

    def events(self, gateway_id: str) -> list[Event]:
        """Every event received so far, in order."""
        found: list[Event] = []
        for name, payload in self.messages:
            if name == topic(gateway_id, Channel.EVENTS):
                found.extend(decode_events(payload, gateway_id=gateway_id).events)
        return found

    def reported(self, gateway_id: str) -> list[ReportedState]:
        """Every reported state received so far."""
        return [
            decode_reported(payload, gateway_id=gateway_id)
            for name, payload in self.messages
            if name == topic(gateway_id, Channel.REPORTED)
        ]

    def presence(self, gateway_id: str) -> list[bytes]:
        """Presence bodies received so far."""
        return [p for name, p in self.messages if name == topic(gateway_id, Channel.PRESENCE)]

    async def publish_desired(self, gateway_id: str, data: bytes) -> None:
        """Publish a (signed or forged) desired document, retained, as the cloud does."""
        await self.session.publish(topic(gateway_id, Channel.DESIRED), data, retain=True)

    def results(self, gateway_id: str) -> list[tuple[CommandResult, bytes | None]]:
        """Command results received so far, with their correlation data."""
        return [
            (decode_command_result(payload, gateway_id=gateway_id), self.correlations.get(payload))
            for name, payload in self.messages
            if name == topic(gateway_id, Channel.CMD_RESULT)
        ]

    async def send_command(self, gateway_id: str, data: bytes, correlation: bytes) -> None:
        """Publish a (signed or forged) command the way the cloud does (MQTT 5 request)."""
        await self.session.publish(
            topic(gateway_id, Channel.CMD),
            data,
            response_topic=topic(gateway_id, Channel.CMD_RESULT),
            correlation_data=correlation,
        )

    async def close(self) -> None:
        """Disconnect."""
        self._task.cancel()
        await self.session.disconnect()
