"""The generated broker configuration confines each gateway to its own topics."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from pathlib import Path

import pytest
from cryptography import x509

from cloud_api.pki import (
    CertificateAuthority,
    Revoked,
    cert_pem,
    key_pem,
    write_public,
    write_secret,
)
from simulator.broker import RunningBroker
from sync_protocol.mqtt import (
    ConnectFailed,
    MqttSession,
    PublishRefused,
    SubscribeRefused,
    TlsFiles,
)
from sync_protocol.topics import Channel, all_gateways, shared, topic


def _gw() -> str:
    return f"gw-{uuid.uuid4().hex[:12]}"


async def _session(broker: RunningBroker, tls: TlsFiles, client_id: str) -> MqttSession:
    session = MqttSession(
        client_id=client_id, host=broker.host, port=broker.port, tls=tls.context()
    )
    await session.connect()
    return session


async def _next(session: MqttSession, wait_s: float) -> bytes | None:
    async def first() -> bytes:
        async for message in session.messages():
            return message.payload
        raise AssertionError("session closed")

    try:
        return await asyncio.wait_for(first(), wait_s)
    except TimeoutError:
        return None


async def test_gateway_reads_only_its_own_desired(broker: RunningBroker, certs_dir: Path) -> None:
    a, b = _gw(), _gw()
    cloud = await _session(broker, broker.client_tls("cloud", certs_dir), "cloud-test")
    await cloud.publish(topic(a, Channel.DESIRED), b"for-a", retain=True)
    await cloud.publish(topic(b, Channel.DESIRED), b"for-b", retain=True)

    gw_a = await _session(broker, broker.client_tls(a, certs_dir), a)
    await gw_a.subscribe(topic(a, Channel.DESIRED))
    assert await _next(gw_a, 5) == b"for-a"

    # Mosquitto grants the subscription but never delivers a topic the ACL forbids.
    await gw_a.subscribe(topic(b, Channel.DESIRED))
    await cloud.publish(topic(b, Channel.DESIRED), b"for-b-again", retain=True)
    assert await _next(gw_a, 1.0) is None
    await gw_a.disconnect()
    await cloud.disconnect()


async def test_gateway_cannot_publish_another_gateways_events(
    broker: RunningBroker, certs_dir: Path
) -> None:
    a, b = _gw(), _gw()
    cloud = await _session(broker, broker.client_tls("cloud", certs_dir), "cloud-ingest")
    await cloud.subscribe(shared(all_gateways(Channel.EVENTS)))
    gw_a = await _session(broker, broker.client_tls(a, certs_dir), a)

    with pytest.raises(PublishRefused) as refused:
        await gw_a.publish(topic(b, Channel.EVENTS), b"forged")
    assert refused.value.code == 135  # MQTT 5 "Not authorized"

    await gw_a.publish(topic(a, Channel.EVENTS), b"own")
    assert await _next(cloud, 5) == b"own"
    assert await _next(cloud, 0.5) is None  # the forged one never reached the cloud
    await gw_a.disconnect()
    await cloud.disconnect()


async def test_gateway_cannot_write_desired_or_read_events(
    broker: RunningBroker, certs_dir: Path
) -> None:
    a = _gw()
    gw_a = await _session(broker, broker.client_tls(a, certs_dir), a)
    with pytest.raises(PublishRefused):
        await gw_a.publish(topic(a, Channel.DESIRED), b"self-granted", retain=True)
    with contextlib.suppress(SubscribeRefused):
        await gw_a.subscribe(all_gateways(Channel.EVENTS))
    other = await _session(broker, broker.client_tls(_gw(), certs_dir), "other")
    with contextlib.suppress(PublishRefused):
        await other.publish(all_gateways(Channel.EVENTS).replace("+", "x"), b"noise")
    assert await _next(gw_a, 0.5) is None
    await gw_a.disconnect()
    await other.disconnect()


async def test_client_without_our_certificate_is_refused(
    broker: RunningBroker, tmp_path: Path
) -> None:
    stranger_ca = CertificateAuthority.create("Someone Else")
    key_dir = tmp_path / "stranger"
    key, cert = stranger_ca.issue_client(_gw())
    write_secret(key_dir / "k.pem", key_pem(key))
    write_public(key_dir / "c.pem", cert_pem(cert))
    tls = TlsFiles(
        ca=broker.files.directory / "ca.crt", cert=key_dir / "c.pem", key=key_dir / "k.pem"
    )
    session = MqttSession(
        client_id="stranger", host=broker.host, port=broker.port, tls=tls.context()
    )
    with pytest.raises(ConnectFailed):
        await session.connect()


async def test_revoked_certificate_is_refused_after_crl_reload(
    broker: RunningBroker, certs_dir: Path
) -> None:
    a = _gw()
    tls = broker.client_tls(a, certs_dir)
    serial = x509.load_pem_x509_certificate(tls.cert.read_bytes()).serial_number
    ok = await _session(broker, tls, a)
    await ok.disconnect()
    broker.revoke((Revoked(serial, dt.datetime.now(dt.UTC)),))
    try:
        await asyncio.sleep(0.3)
        session = MqttSession(client_id=a, host=broker.host, port=broker.port, tls=tls.context())
        with pytest.raises(ConnectFailed):
            await session.connect()
    finally:
        broker.revoke(())
        await asyncio.sleep(0.3)


def test_missing_mosquitto_is_an_error_that_says_how_to_fix_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import shutil

    from simulator import broker as broker_module

    monkeypatch.setattr(shutil, "which", lambda *_args, **_kwargs: None)
    with pytest.raises(broker_module.BrokerError, match="apt-get install mosquitto"):
        broker_module.find_mosquitto()


async def test_message_iteration_ends_cleanly_when_the_broker_goes_away(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    from simulator.broker import start_broker

    own = start_broker(tmp_path / "broker", ca)
    try:
        session = await _session(own, own.client_tls("cloud", tmp_path / "c"), "cloud-iter")
        await session.subscribe(all_gateways(Channel.EVENTS))
        received: list[bytes] = []

        async def consume() -> None:
            async for message in session.messages():
                received.append(message.payload)

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        own.stop()
        await asyncio.wait_for(consumer, 10)  # ends without InvalidStateError
        assert consumer.exception() is None
        assert await session.wait_closed()  # and says why the session ended
    finally:
        own.stop()
