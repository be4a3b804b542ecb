"""Ingest of agent messages, on each database: idempotent events, attribution, bad bodies."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cloud_api.models import Gateway
from cloud_api.sync.ingest import Ingest
from sync_protocol.ids import uuid7
from sync_protocol.models import ClockStatus, Event, EventBatch, ReportedState
from sync_protocol.topics import Channel, topic
from tests.cloud_api.conftest import Cloud
from tests.cloud_api.helpers import Host, enroll


def _batch(gateway_id: str, **fields: Any) -> tuple[str, bytes]:
    event = Event(
        id=fields.pop("id", uuid7()),
        type=fields.pop("type", "access_granted"),
        occurred_at=datetime(2030, 7, 1, 16, 5, tzinfo=UTC),
        clock_trusted=True,
        method="gateway_keypad",
        result="granted",
        **fields,
    )
    body = EventBatch(gateway_id=gateway_id, events=(event,)).model_dump_json().encode()
    return event.id, body


async def _site(alice: Host, client: httpx.AsyncClient) -> dict[str, Any]:
    prop = await alice.new_property()
    gateway = await alice.new_gateway(prop["id"])
    await enroll(client, gateway)
    lock = (
        await alice.post(
            f"/properties/{prop['id']}/smartlocks",
            {"kind": "relay", "deviceRef": "1", "name": "Street door", "gatewayId": gateway["id"]},
        )
    ).json()
    booking = await alice.new_booking(prop["id"], guestName="Lena Vogel")
    return {"property": prop, "gateway": gateway, "lock": lock, "booking": booking}


async def _activity(host: Host) -> dict[str, Any]:
    response = await host.get("/timeline/activity", params={"size": 100})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_events_are_stored_once_with_names_attached(
    alice: Host, client: httpx.AsyncClient, cloud: Cloud
) -> None:
    site = await _site(alice, client)
    gateway_id = site["gateway"]["id"]
    code = site["booking"]["accessCodes"][0]
    event_id, body = _batch(gateway_id, lock_id=site["lock"]["id"], code_id=code["id"])
    ingest = Ingest(cloud.ctx.db)
    ingest.handle(topic(gateway_id, Channel.EVENTS), body)
    ingest.handle(topic(gateway_id, Channel.EVENTS), body)  # redelivered: a no-op

    feed = await _activity(alice)
    mine = [a for a in feed["activities"] if a["id"] == event_id]
    assert len(mine) == 1
    entry = mine[0]
    assert entry["propertyId"] == site["property"]["id"]
    assert entry["propertyName"] == "Casa Azul"
    assert entry["gatewayName"] == "Hall Pi"
    assert entry["lockName"] == "Street door"
    assert entry["codeId"] == code["id"]
    assert entry["codeKind"] == "guest"
    assert entry["bookingId"] == site["booking"]["id"]  # derived from the code
    assert entry["guestName"] == "Lena Vogel"
    assert entry["method"] == "gateway_keypad"
    assert entry["occurredAt"] == "2030-07-01T16:05:00Z"
    with cloud.ctx.db.session() as session:
        gateway = session.get(Gateway, gateway_id)
        assert gateway is not None
        assert not gateway.online  # only presence says whether a gateway is online
        assert gateway.last_seen_at is not None


async def test_ids_of_another_property_are_never_attributed(
    alice: Host, client: httpx.AsyncClient, cloud: Cloud
) -> None:
    mine = await _site(alice, client)
    other = await _site(alice, client)
    foreign_code = other["booking"]["accessCodes"][0]["id"]
    event_id, body = _batch(
        mine["gateway"]["id"],
        lock_id=other["lock"]["id"],
        code_id=foreign_code,
        booking_id=other["booking"]["id"],
    )
    Ingest(cloud.ctx.db).handle(topic(mine["gateway"]["id"], Channel.EVENTS), body)
    entry = next(a for a in (await _activity(alice))["activities"] if a["id"] == event_id)
    assert entry["propertyId"] == mine["property"]["id"]
    assert (entry["lockId"], entry["codeId"], entry["bookingId"]) == (None, None, None)


async def test_newest_events_come_first_and_pages_work(
    alice: Host, client: httpx.AsyncClient, cloud: Cloud
) -> None:
    site = await _site(alice, client)
    gateway_id = site["gateway"]["id"]
    ingest = Ingest(cloud.ctx.db)
    ids = []
    for minute in range(3):
        event = Event(
            id=uuid7(),
            type="door_opened",
            occurred_at=datetime(2031, 1, 1, 10, minute, tzinfo=UTC),
            clock_trusted=False,
        )
        ids.append(event.id)
        batch = EventBatch(gateway_id=gateway_id, events=(event,))
        ingest.handle(topic(gateway_id, Channel.EVENTS), batch.model_dump_json().encode())
    first = (await alice.get("/timeline/activity", params={"page": 0, "size": 2})).json()
    second = (await alice.get("/timeline/activity", params={"page": 1, "size": 2})).json()
    assert [a["id"] for a in first["activities"]] == [ids[2], ids[1]]
    assert second["activities"][0]["id"] == ids[0]
    assert first["total"] == second["total"] >= 3


@pytest.mark.parametrize(
    ("channel", "payload", "logged"),
    [
        (Channel.EVENTS, b"\x00garbage", "malformed: not JSON"),
        (Channel.EVENTS, b"{}", "invalid_body"),
        (Channel.EVENTS, b"[" + b"1," * 140_000 + b"1]", "too_large"),
        (Channel.REPORTED, b'{"v": 9}', "unsupported_version"),
        (Channel.PRESENCE, b"maybe", "presence must be 'online' or 'offline'"),
    ],
)
async def test_bad_bodies_are_logged_once_and_not_stored(
    alice: Host,
    client: httpx.AsyncClient,
    cloud: Cloud,
    caplog: pytest.LogCaptureFixture,
    channel: Channel,
    payload: bytes,
    logged: str,
) -> None:
    site = await _site(alice, client)
    gateway_id = site["gateway"]["id"]
    before = (await _activity(alice))["total"]
    with caplog.at_level(logging.WARNING, logger="cloud_api.sync.ingest"):
        Ingest(cloud.ctx.db).handle(topic(gateway_id, channel), payload)
    lines = [r.getMessage() for r in caplog.records if r.name == "cloud_api.sync.ingest"]
    assert len(lines) == 1, lines
    assert gateway_id in lines[0]
    assert logged in lines[0]
    assert (await _activity(alice))["total"] == before


async def test_wrong_gateway_unknown_gateway_and_bad_topic_are_dropped(
    alice: Host, client: httpx.AsyncClient, cloud: Cloud, caplog: pytest.LogCaptureFixture
) -> None:
    site = await _site(alice, client)
    gateway_id = site["gateway"]["id"]
    ingest = Ingest(cloud.ctx.db)
    before = (await _activity(alice))["total"]
    _, for_other = _batch("some-other-gateway")
    _, unknown = _batch("gw-nobody")
    with caplog.at_level(logging.WARNING, logger="cloud_api.sync.ingest"):
        ingest.handle(topic(gateway_id, Channel.EVENTS), for_other)
        ingest.handle(topic("gw-nobody", Channel.EVENTS), unknown)
        ingest.handle("kasify/v1/gw/x/unknown-channel", b"{}")
    messages = [r.getMessage() for r in caplog.records if r.name == "cloud_api.sync.ingest"]
    assert "wrong_gateway" in messages[0]
    assert "dropped events from unknown gateway gw-nobody" in messages[1]
    assert "unknown channel" in messages[2]
    assert (await _activity(alice))["total"] == before
    with cloud.ctx.db.session() as session:
        assert session.scalar(select(Gateway).where(Gateway.id == "gw-nobody")) is None


async def test_reported_state_and_presence_update_the_gateway(
    alice: Host, client: httpx.AsyncClient, cloud: Cloud
) -> None:
    site = await _site(alice, client)
    gateway_id = site["gateway"]["id"]
    ingest = Ingest(cloud.ctx.db)
    reported = ReportedState(
        gateway_id=gateway_id,
        applied_version=3,
        agent_version="0.1.0",
        uptime_s=12.5,
        reported_at=datetime(2030, 7, 1, tzinfo=UTC),
        clock=ClockStatus(synchronized=True, trusted=True),
        outbox_depth=0,
    )
    ingest.handle(topic(gateway_id, Channel.REPORTED), reported.model_dump_json().encode())
    shown = (await alice.get(f"/gateways/{gateway_id}")).json()
    assert shown["appliedVersion"] == 3
    assert shown["online"] is False  # a retained report says nothing about now: presence does
    assert shown["reportedAt"] is not None
    ingest.handle(topic(gateway_id, Channel.PRESENCE), b"online")
    assert (await alice.get(f"/gateways/{gateway_id}")).json()["online"] is True
    ingest.handle(topic(gateway_id, Channel.PRESENCE), b"offline")
    assert (await alice.get(f"/gateways/{gateway_id}")).json()["online"] is False
    with cloud.ctx.db.session() as session:
        gateway = session.get(Gateway, gateway_id)
        assert gateway is not None
        assert gateway.reported_state is not None
        assert json.loads(json.dumps(gateway.reported_state))["uptime_s"] == 12.5
