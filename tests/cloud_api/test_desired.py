"""What goes into a gateway's desired state, and when it must be rebuilt."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import update

from cloud_api.db import utcnow
from cloud_api.models import Gateway
from cloud_api.sync.desired import build_desired
from cloud_api.sync.publisher import CLEAR, DesiredPublisher
from sync_protocol.codec import decode_desired
from sync_protocol.mqtt import MqttSession
from tests.cloud_api.conftest import Cloud
from tests.cloud_api.helpers import FakeAgent, Host, enroll

HORIZON = timedelta(days=14)


class NoBroker:
    """A link that is never connected: documents are built and stored, not sent."""

    session: MqttSession | None = None


def _stay(start_in_days: int, nights: int) -> dict[str, str]:
    start = date.today() + timedelta(days=start_in_days)
    return {"from": start.isoformat(), "to": (start + timedelta(days=nights)).isoformat()}


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def _enrolled_site(
    alice: Host, client: httpx.AsyncClient
) -> tuple[dict[str, Any], FakeAgent]:
    prop = await alice.new_property(backupCodeCount=0)
    agent = await enroll(client, await alice.new_gateway(prop["id"]))
    return prop, agent


def _build(cloud: Cloud, gateway_id: str) -> tuple[Any, Any]:
    with cloud.ctx.db.session() as session:
        gateway = session.get(Gateway, gateway_id)
        assert gateway is not None
        signed = build_desired(
            session, gateway, now=utcnow(), horizon=HORIZON, signing_key=cloud.ctx.keys.signing_key
        )
        return signed, gateway.desired_version


def _verify(agent: FakeAgent, document: bytes) -> Any:
    return decode_desired(
        document,
        agent.verify_keys,
        gateway_id=agent.gateway_id,
        applied_version=0,
        applied_digest=None,
    ).state


async def test_only_active_codes_inside_the_horizon_are_sent(
    alice: Host, client: httpx.AsyncClient, cloud: Cloud
) -> None:
    prop, agent = await _enrolled_site(alice, client)
    later = await alice.new_booking(prop["id"], **_stay(20, 2))
    later_start = _at(later["accessCodes"][0]["startsAt"])

    # Without locks nothing can be sent; a code entering the horizon sets the next rebuild.
    signed, stored_version = _build(cloud, agent.gateway_id)
    assert signed.version == stored_version + 1
    state = _verify(agent, signed.document)
    assert state.codes == ()
    assert signed.refresh_at == later_start - HORIZON

    lock = await alice.post(
        f"/properties/{prop['id']}/smartlocks",
        {"kind": "relay", "deviceRef": "1", "name": "Door", "gatewayId": agent.gateway_id},
    )
    assert lock.status_code == 201
    now_booking = await alice.new_booking(prop["id"], **_stay(0, 2))
    cancelled = await alice.new_booking(prop["id"], **_stay(1, 2))
    await alice.patch(f"/bookings/{cancelled['id']}", {"status": "cancelled"})
    revoked = await alice.new_booking(prop["id"], **_stay(2, 2))
    await alice.delete(f"/access-codes/{revoked['accessCodes'][0]['id']}")
    past = await alice.new_booking(prop["id"], **_stay(-10, 2))

    signed, _ = _build(cloud, agent.gateway_id)
    state = _verify(agent, signed.document)
    current = now_booking["accessCodes"][0]
    assert [c.id for c in state.codes] == [current["id"]]
    assert state.codes[0].lock_ids == (lock.json()["id"],)
    assert state.horizon_until - state.issued_at == HORIZON
    # The next rebuild is when the current code ends (before the later one enters).
    assert signed.refresh_at == _at(current["endsAt"])
    assert past["accessCodes"][0]["id"] not in {c.id for c in state.codes}


async def test_publisher_builds_due_gateways_and_stores_the_document(
    alice: Host, client: httpx.AsyncClient, cloud: Cloud
) -> None:
    _prop, agent = await _enrolled_site(alice, client)
    with ThreadPoolExecutor(1) as executor:
        publisher = DesiredPublisher(cloud.ctx.db, cloud.ctx.keys, HORIZON, executor, NoBroker())
        [first] = publisher._build([agent.gateway_id])  # enrollment left it dirty
        assert publisher._build([agent.gateway_id]) == []  # nothing changed since
        with cloud.ctx.db.session() as session:
            session.execute(
                update(Gateway)
                .where(Gateway.id == agent.gateway_id)
                .values(desired_refresh_at=utcnow() - timedelta(seconds=1))
            )
            session.commit()
        assert agent.gateway_id in publisher._mark_due()
        [second] = publisher._build([agent.gateway_id])
    assert _verify(agent, second.payload).version == _verify(agent, first.payload).version + 1
    with cloud.ctx.db.session() as session:
        gateway = session.get(Gateway, agent.gateway_id)
        assert gateway is not None
        assert gateway.desired_document == second.payload
        assert not gateway.desired_dirty
        assert gateway.desired_refresh_at is not None
        assert gateway.desired_refresh_at > utcnow()


async def test_a_deleted_gateway_gets_its_retained_document_cleared(
    alice: Host, client: httpx.AsyncClient, cloud: Cloud
) -> None:
    _prop, agent = await _enrolled_site(alice, client)
    assert (await alice.delete(f"/gateways/{agent.gateway_id}")).status_code == 204
    with ThreadPoolExecutor(1) as executor:
        publisher = DesiredPublisher(cloud.ctx.db, cloud.ctx.keys, HORIZON, executor, NoBroker())
        [outgoing] = publisher._build([agent.gateway_id])
        assert outgoing.payload == CLEAR
        assert agent.gateway_id not in {o.gateway_id for o in publisher._stored()}
        publisher._mark_published([outgoing])
        assert publisher._build([agent.gateway_id]) == []
