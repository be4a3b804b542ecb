"""The cloud against a real broker: signed desired states reach an enrolled gateway; ingest."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from fastapi import FastAPI

from cloud_api.keys import init_data_dir
from cloud_api.models import Gateway
from cloud_api.pki import CertificateAuthority
from simulator.broker import RunningBroker, start_broker
from sync_protocol.codec import decode_ack, decode_desired
from sync_protocol.ids import uuid7
from sync_protocol.mqtt import ConnectFailed, MqttSession, PublishRefused
from sync_protocol.sealing import unseal_pin
from sync_protocol.topics import Channel, topic
from tests.cloud_api.helpers import Host, enroll
from tests.cloud_api.mqtt_support import (
    POLL_S,
    WAIT_S,
    GatewayView,
    connect_gateway,
    event_batch,
    new_host,
    receive,
    running,
    settings_for,
    until,
)


def _soon(nights: int) -> dict[str, str]:
    """Dates of a stay starting today, so its code is inside the sync horizon."""
    today = date.today()
    return {"from": today.isoformat(), "to": (today + timedelta(days=nights)).isoformat()}


def _event_batch(gateway_id: str, **fields: Any) -> tuple[str, bytes]:
    return event_batch(gateway_id, **fields)


async def _activity_ids(host: Host) -> list[str]:
    body = (await host.get("/timeline/activity", params={"size": 100})).json()
    return [entry["id"] for entry in body["activities"]]


@pytest.fixture
def data_dir(tmp_path: Path, ca: CertificateAuthority) -> Path:
    """A cloud data directory sharing the test broker's CA."""
    directory = tmp_path / "cloud"
    init_data_dir(directory, ca)
    return directory


async def test_booking_reaches_the_gateway_and_events_come_back_once(
    broker: RunningBroker, data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(settings_for(data_dir, broker)) as (_app, client):
        host = await new_host(client)
        prop = await host.new_property(earlyCheckInBufferMinutes=30, backupCodeCount=0)
        gateway = await host.new_gateway(prop["id"])
        agent = await enroll(client, gateway)
        assert agent.enrolled["broker"] == {"host": broker.host, "port": broker.port}
        view = GatewayView(agent, await connect_gateway(agent, broker, tmp_path / "gw"))

        first = await view.next_desired()
        assert (first.state.version, first.state.locks, first.state.codes) == (1, (), ())
        assert first.state.timezone == "Europe/Madrid"
        assert first.state.property_id == prop["id"]

        lock = (
            await host.post(
                f"/properties/{prop['id']}/smartlocks",
                {
                    "kind": "nuki",
                    "deviceRef": "5A1B2C",
                    "name": "Front",
                    "gatewayId": agent.gateway_id,
                },
            )
        ).json()
        with_lock = await view.next_desired()
        assert with_lock.state.version == 2
        assert [(lk.id, lk.kind.value, lk.ref, lk.name) for lk in with_lock.state.locks] == [
            (lock["id"], "nuki", "5A1B2C", "Front")
        ]

        booking = await host.new_booking(
            prop["id"], guestName="Joaquín Sorolla y Bastida", **_soon(3)
        )
        desired = await view.next_desired()
        assert desired.state.version == 3
        code = booking["accessCodes"][0]
        [sent] = desired.state.codes
        assert sent.id == code["id"]
        assert sent.kind.value == "guest"
        assert unseal_pin(sent.pin, sent.id, agent.seal_key) == code["pin"]
        assert sent.pin != code["pin"]  # sealed, never in clear
        assert sent.starts_at == datetime.fromisoformat(code["startsAt"])
        assert sent.ends_at == datetime.fromisoformat(code["endsAt"])
        assert sent.lock_ids == (lock["id"],)
        assert sent.booking_id == booking["id"]
        assert sent.label == "Joaquín Sorolla y Ba"

        moved = (await host.patch(f"/bookings/{booking['id']}", {"to": _soon(5)["to"]})).json()
        after_move = await view.next_desired()
        assert after_move.state.version == 4
        assert after_move.state.codes[0].ends_at == datetime.fromisoformat(
            moved["accessCodes"][0]["endsAt"]
        )

        # Events: a redelivered batch is stored once, with the names the host knows.
        event_id, batch = _event_batch(agent.gateway_id, lock_id=lock["id"], code_id=code["id"])
        await view.publish(Channel.EVENTS, batch)
        await view.publish(Channel.EVENTS, batch)
        marker, marker_batch = _event_batch(agent.gateway_id, type="door_closed")
        await view.publish(Channel.EVENTS, marker_batch)
        ids = await _wait_for_event(host, marker)
        assert ids.count(event_id) == 1
        entry = next(
            a
            for a in (await host.get("/timeline/activity")).json()["activities"]
            if a["id"] == event_id
        )
        assert (entry["lockName"], entry["guestName"]) == ("Front", "Joaquín Sorolla y Bastida")

        # Garbage never stops the ingest and stores nothing.
        other = f"gw-{uuid7()[-12:]}"
        _, for_other = _event_batch(other)
        with caplog.at_level(logging.WARNING, logger="cloud_api.sync.ingest"):
            await view.publish(Channel.EVENTS, b"\xde\xad\xbe\xef")
            await view.publish(Channel.EVENTS, b"[" + b"0," * 200_000 + b"0]")
            await view.publish(Channel.EVENTS, for_other)
            await view.publish(Channel.PRESENCE, b"online")
            second_marker, second_batch = _event_batch(agent.gateway_id, type="door_opened")
            await view.publish(Channel.EVENTS, second_batch)
            ids = await _wait_for_event(host, second_marker)
        assert len(ids) == 4  # the first event, the two markers, and "gateway_online"
        # The session broker is shared: other tests' gateways may be talking too.
        drops = [
            r.getMessage()
            for r in caplog.records
            if r.name == "cloud_api.sync.ingest" and agent.gateway_id in r.getMessage()
        ]
        assert len(drops) == 3, drops
        assert "malformed" in drops[0]
        assert "too_large" in drops[1]
        assert "wrong_gateway" in drops[2]

        shown = (await host.get(f"/gateways/{agent.gateway_id}")).json()
        assert shown["online"] is True
        assert shown["desiredVersion"] == 4
        await view.session.disconnect()


async def _wait_for_event(host: Host, event_id: str) -> list[str]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        ids = await _activity_ids(host)
        if event_id in ids:
            return ids
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"event {event_id} never reached the activity feed")


async def test_stored_events_are_confirmed_to_the_gateway_signed(
    broker: RunningBroker, data_dir: Path, tmp_path: Path
) -> None:
    async with running(settings_for(data_dir, broker)) as (_app, client):
        host = await new_host(client)
        prop = await host.new_property()
        agent = await enroll(client, await host.new_gateway(prop["id"]))
        view = GatewayView(agent, await connect_gateway(agent, broker, tmp_path / "gw"))
        await view.next_desired()
        event_id, batch = _event_batch(agent.gateway_id)
        for _ in range(2):  # the second copy (an at-least-once re-send) is confirmed too
            await view.publish(Channel.EVENTS, batch)
            ack = await receive(view.session, lambda m: m.topic.endswith("/ack"))
            confirmed = decode_ack(ack.payload, agent.verify_keys, gateway_id=agent.gateway_id)
            assert confirmed.event_ids == (event_id,)
        assert (await _activity_ids(host)).count(event_id) == 1
        assert await _ack_is_refused_to_the_gateway(view)
        await view.session.disconnect()


async def _ack_is_refused_to_the_gateway(view: GatewayView) -> bool:
    """A gateway cannot confirm events to itself: it may not publish on its ack topic."""
    try:
        await view.session.publish(topic(view.agent.gateway_id, Channel.ACK), b"x")
    except PublishRefused:
        return True
    return False


async def test_deleted_gateway_is_revoked_disconnected_refused_and_cleared(
    broker: RunningBroker, data_dir: Path, tmp_path: Path
) -> None:
    # As in production: the cloud's reload command hands its CRL to the broker and signals it.
    reload = f"sh -c 'cp {data_dir}/crl.pem {broker.files.crl} && kill -HUP {broker.process.pid}'"
    settings = settings_for(data_dir, broker).model_copy(update={"broker_reload_command": reload})
    try:
        async with running(settings) as (_app, client):
            host = await new_host(client)
            prop = await host.new_property(backupCodeCount=0)
            agent = await enroll(client, await host.new_gateway(prop["id"]))
            tls = agent.tls_files(tmp_path / "gw")
            view = GatewayView(agent, await connect_gateway(agent, broker, tmp_path / "gw"))
            await view.next_desired()
            watcher = MqttSession(  # the cloud's view of the gateway's desired topic
                client_id=f"watch-{uuid7()}",
                host=broker.host,
                port=broker.port,
                tls=broker.client_tls("cloud", tmp_path / "watch").context(),
            )
            await watcher.connect()
            await watcher.subscribe(topic(agent.gateway_id, Channel.DESIRED))

            assert (await host.delete(f"/gateways/{agent.gateway_id}")).status_code == 204
            serial = x509.load_pem_x509_certificate(
                agent.enrolled["certificate"].encode()
            ).serial_number
            crl = x509.load_pem_x509_crl((data_dir / "crl.pem").read_bytes())
            assert crl.get_revoked_certificate_by_serial_number(serial) is not None

            # The gateway was online: the cloud closes its connection at once...
            async with asyncio.timeout(5):
                await view.session.wait_closed()
            # ...and the broker, having reloaded the CRL, refuses it from then on.
            again = MqttSession(
                client_id=agent.gateway_id, host=broker.host, port=broker.port, tls=tls.context()
            )
            with pytest.raises(ConnectFailed):
                await again.connect()

            # Its retained desired state is cleared (an empty retained message deletes it).
            cleared = await receive(watcher, lambda m: m.payload == b"")
            assert cleared.topic == topic(agent.gateway_id, Channel.DESIRED)
            await watcher.disconnect()
    finally:
        broker.revoke(())  # the shared test broker goes back to an empty CRL


async def test_a_deleted_gateway_that_still_gets_through_is_ignored(
    broker: RunningBroker,
    data_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # No reload command: this broker never learns of the revocation (a broker whose reload
    # failed), so the gateway reconnects after being disconnected; the cloud drops its events.
    async with running(settings_for(data_dir, broker)) as (_app, client):
        host = await new_host(client)
        prop = await host.new_property(backupCodeCount=0)
        agent = await enroll(client, await host.new_gateway(prop["id"]))
        view = GatewayView(agent, await connect_gateway(agent, broker, tmp_path / "gw"))
        await view.next_desired()

        with caplog.at_level(logging.INFO, logger="cloud_api.sync"):
            assert (await host.delete(f"/gateways/{agent.gateway_id}")).status_code == 204
            async with asyncio.timeout(5):
                await view.session.wait_closed()
            view = GatewayView(agent, await connect_gateway(agent, broker, tmp_path / "gw"))
            _, batch = _event_batch(agent.gateway_id)
            await view.publish(Channel.EVENTS, batch)
            await until(
                lambda: any(
                    f"deleted gateway {agent.gateway_id}" in r.getMessage() for r in caplog.records
                ),
                "the ingest to drop the deleted gateway's events",
            )
        assert await _activity_ids(host) == []
        await view.session.disconnect()


async def test_events_sent_while_the_cloud_is_down_arrive_after_it_returns(
    broker: RunningBroker, data_dir: Path, tmp_path: Path
) -> None:
    # A persistent session: the broker queues what gateways publish while the cloud is away.
    settings = settings_for(data_dir, broker).model_copy(update={"mqtt_session_expiry_s": 600})
    async with running(settings) as (_app, client):
        host = await new_host(client)
        prop = await host.new_property(backupCodeCount=0)
        agent = await enroll(client, await host.new_gateway(prop["id"]))
        view = GatewayView(agent, await connect_gateway(agent, broker, tmp_path / "gw"))
        await view.next_desired()

    sent = []
    for _ in range(3):
        event_id, batch = _event_batch(agent.gateway_id)
        await view.publish(Channel.EVENTS, batch)
        sent.append(event_id)

    async with running(settings) as (_app, client):
        host.client = client
        ids = await _wait_for_event(host, sent[-1])
        assert set(sent) <= set(ids)
    await view.session.disconnect()
    # End the persistent session, so it does not take a share of later tests' events.
    async with running(settings.model_copy(update={"mqtt_session_expiry_s": 0})):
        pass


async def test_restart_republishes_stored_documents_and_builds_pending_ones(
    broker: RunningBroker, data_dir: Path, tmp_path: Path
) -> None:
    # While the cloud runs without MQTT, changes are only flagged in the database.
    async with running(settings_for(data_dir, broker, mqtt=False)) as (_app, client):
        host = await new_host(client)
        prop = await host.new_property(backupCodeCount=0)
        gateway = await host.new_gateway(prop["id"])
        agent = await enroll(client, gateway)
        lock = (
            await host.post(
                f"/properties/{prop['id']}/smartlocks",
                {"kind": "relay", "deviceRef": "1", "name": "Gate", "gatewayId": agent.gateway_id},
            )
        ).json()
        booking = await host.new_booking(prop["id"], **_soon(2))

    session = await connect_gateway(agent, broker, tmp_path / "gw")
    view = GatewayView(agent, session)
    async with running(settings_for(data_dir, broker)):
        pending = await view.next_desired()
        assert pending.state.version == 1
        assert [c.id for c in pending.state.codes] == [booking["accessCodes"][0]["id"]]
        assert pending.state.codes[0].lock_ids == (lock["id"],)

    # A restart republishes the same signed bytes: a harmless duplicate for the agent.
    async with running(settings_for(data_dir, broker)):
        again = await receive(session, lambda m: m.topic.endswith("/desired"))
        verified = decode_desired(
            again.payload,
            agent.verify_keys,
            gateway_id=agent.gateway_id,
            applied_version=pending.state.version,
            applied_digest=pending.digest,
        )
        assert verified.duplicate
    await session.disconnect()


async def test_reconnect_restores_retained_state_on_a_broker_that_lost_it(
    data_dir: Path, tmp_path: Path, ca: CertificateAuthority
) -> None:
    first = start_broker(tmp_path / "broker-1", ca)
    second: RunningBroker | None = None
    try:
        async with running(settings_for(data_dir, first)) as (app, client):
            host = await new_host(client)
            prop = await host.new_property(backupCodeCount=0)
            agent = await enroll(client, await host.new_gateway(prop["id"]))
            gateway_id = agent.gateway_id
            await until(
                lambda: _stored_document(app, gateway_id), "the first desired state to be stored"
            )
            stored = _stored_document(app, gateway_id)

            first.stop()  # the broker dies and forgets every retained message
            await until(lambda: not app.state.ctx.sync.connected, "the cloud to notice")
            second = start_broker(tmp_path / "broker-2", ca, port=first.port)
            await until(lambda: app.state.ctx.sync.connected, "the cloud to reconnect")

            session = await connect_gateway(agent, second, tmp_path / "gw")
            retained = await receive(session, lambda m: m.retain)
            assert retained.payload == stored
            await session.disconnect()
    finally:
        first.stop()
        if second is not None:
            second.stop()


def _stored_document(app: FastAPI, gateway_id: str) -> bytes | None:
    with app.state.ctx.db.session() as session:
        gateway = session.get(Gateway, gateway_id)
        return gateway.desired_document if gateway is not None else None
