"""What each role may do: crew operate but do not manage; a contractor sees only their tasks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from cloud_api.sync.ingest import Ingest
from sync_protocol.ids import uuid7
from sync_protocol.models import Event, EventBatch
from sync_protocol.topics import Channel, topic
from tests.cloud_api.conftest import Cloud
from tests.cloud_api.helpers import Host, new_site


def _soon(days: int, hour: int = 11) -> str:
    return f"{date.today() + timedelta(days=days)}T{hour:02d}:00"


def _event(gateway_id: str, code_id: str) -> tuple[str, bytes]:
    event = Event(
        id=uuid7(),
        type="access_granted",
        occurred_at=datetime.now(UTC),
        clock_trusted=True,
        code_id=code_id,
        method="gateway_keypad",
    )
    return event.id, EventBatch(gateway_id=gateway_id, events=(event,)).model_dump_json().encode()


GUEST = {
    "firstName": "Ana",
    "lastName": "Ruiz",
    "documentType": "passport",
    "documentNumber": "X1234567",
    "nationality": "ES",
    "birthDate": "1985-04-12",
}


async def test_crew_operate_but_cannot_manage_or_create_owner_codes(
    alice: Host, carol: Host, erin: Host
) -> None:
    prop = await alice.new_property()
    pid = prop["id"]
    await alice.invite(pid, carol, "crew")
    await alice.invite(pid, erin, "manager")
    booking = await alice.new_booking(pid)
    erin_task = await alice.new_task(pid, assignedTo=await erin.user_id())

    # Crew see bookings and guest PINs (to help a guest at the door)...
    seen = (await carol.get(f"/bookings/{booking['id']}")).json()
    assert seen["accessCodes"][0]["pin"] == booking["accessCodes"][0]["pin"]
    # ...but not someone else's crew PIN.
    assert (await carol.get(f"/tasks/{erin_task['id']}")).json()["accessCode"]["pin"] is None
    assert (await erin.get(f"/tasks/{erin_task['id']}")).json()["accessCode"]["pin"] is not None

    refusals: list[tuple[str, str, Any]] = [
        ("POST", f"/properties/{pid}/access-codes", {"label": "Mine"}),
        ("POST", f"/properties/{pid}/access-codes", {"holderUserId": await erin.user_id()}),
        (
            "POST",
            f"/properties/{pid}/bookings",
            {"guestName": "X", "from": "2030-01-01", "to": "2030-01-02"},
        ),
        ("PATCH", f"/bookings/{booking['id']}", {"status": "cancelled"}),
        ("POST", f"/bookings/{booking['id']}/access-codes", None),
        ("PUT", f"/properties/{pid}", {"name": "Renamed"}),
        ("DELETE", f"/properties/{pid}", None),
        (
            "POST",
            "/tasks",
            {"propertyId": pid, "title": "x", "startsAt": _soon(1), "endsAt": _soon(1, 12)},
        ),
        ("POST", f"/properties/{pid}/invitations", {"email": "x@example.com"}),
    ]
    for method, path, body in refusals:
        response = await carol.client.request(method, path, json=body, headers=carol.auth)
        assert response.status_code == 403, (method, path, response.text)
        assert "your role at property" in response.json()["detail"]
        assert "crew" in response.json()["detail"]

    # Operating: guest registration and running tasks.
    registered = await carol.post(f"/bookings/{booking['id']}/checkin/guests", GUEST)
    assert registered.status_code == 201
    started = await carol.post(f"/tasks/{erin_task['id']}/start")
    assert started.status_code == 200
    assert started.json()["status"] == "in_progress"


async def test_owners_and_managers_create_permanent_codes_for_owners_and_managers(
    alice: Host, erin: Host, carol: Host
) -> None:
    prop = await alice.new_property()
    pid = prop["id"]
    await alice.invite(pid, erin, "manager")
    await alice.invite(pid, carol, "crew")
    own = await erin.post(f"/properties/{pid}/access-codes", {"label": "Erin"})
    assert own.status_code == 201
    code = own.json()
    assert (code["kind"], code["startsAt"], code["endsAt"]) == ("manager", None, None)
    assert code["holderUserId"] == await erin.user_id()
    for_crew = await alice.post(
        f"/properties/{pid}/access-codes", {"holderUserId": await carol.user_id()}
    )
    assert for_crew.status_code == 422
    assert for_crew.json()["errors"][0]["field"] == "holderUserId"
    # The owner reads every PIN; another manager would not read Erin's permanent PIN.
    assert (await alice.get(f"/access-codes/{code['id']}")).json()["pin"] == code["pin"]
    assert (await carol.get(f"/access-codes/{code['id']}")).json()["pin"] is None
    listed = (await alice.get(f"/properties/{pid}/access-codes", params={"kind": "manager"})).json()
    assert [c["id"] for c in listed["accessCodes"]] == [code["id"]]


async def test_a_contractor_sees_only_what_is_tied_to_their_tasks(
    alice: Host, dave: Host, client: httpx.AsyncClient, cloud: Cloud
) -> None:
    site = await new_site(alice)
    pid = site.id
    await alice.invite(pid, dave, "contractor")
    dave_id = await dave.user_id()
    booking = await alice.new_booking(
        pid, **{"from": str(date.today()), "to": str(date.today() + timedelta(days=3))}
    )
    mine = await alice.new_task(
        pid, assignedTo=dave_id, type="maintenance", startsAt=_soon(1), endsAt=_soon(1, 13)
    )
    other = await alice.new_task(pid, startsAt=_soon(2), endsAt=_soon(2, 13))

    # The property itself: yes. Its bookings, locks, gateways, members, codes: no.
    assert (await dave.get(f"/properties/{pid}")).json()["role"] == "contractor"
    for path in (
        f"/properties/{pid}/bookings",
        f"/properties/{pid}/smartlocks",
        f"/properties/{pid}/gateways",
        f"/properties/{pid}/members",
        f"/properties/{pid}/access-codes",
    ):
        response = await dave.get(path)
        assert response.status_code == 403, path
        assert "contractors see only the tasks assigned to them" in response.json()["detail"]
    for path in (
        f"/bookings/{booking['id']}",
        f"/bookings/{booking['id']}/checkin",
        f"/access-codes/{booking['accessCodes'][0]['id']}",
        f"/tasks/{other['id']}",
        f"/gateways/{site.gateway_id}",
    ):
        assert (await dave.get(path)).status_code == 404, path
    action = await dave.post(f"/smartlocks/{site.lock['id']}/actions", {"action": "unlock"})
    assert action.status_code == 404
    assert booking["id"] not in {b["id"] for b in (await dave.get("/bookings")).json()["bookings"]}

    # Tasks, calendar and timeline: only his task.
    tasks = (await dave.get("/tasks")).json()
    assert [t["id"] for t in tasks["tasks"]] == [mine["id"]]
    assert tasks["tasks"][0]["accessCode"]["pin"] is not None  # his own crew PIN
    assert [t["id"] for t in (await dave.get(f"/properties/{pid}/tasks")).json()["tasks"]] == [
        mine["id"]
    ]
    calendar = (await dave.get(f"/properties/{pid}/calendar")).json()
    assert [(e["id"], e["type"]) for e in calendar["events"]] == [(mine["id"], "maintenance")]
    upcoming = (await dave.get("/calendar")).json()
    assert {e["id"] for e in upcoming["events"]} == {mine["id"]}
    timeline = (await dave.get("/timeline")).json()
    entries = [e for day in timeline["days"] for e in day["entries"]]
    assert [(e["type"], e["task"]["id"]) for e in entries] == [("task", mine["id"])]
    # The owner sees everything on the same calendar.
    full = (await alice.get(f"/properties/{pid}/calendar")).json()
    assert {e["id"] for e in full["events"]} == {booking["id"], mine["id"], other["id"]}

    # Activity: entries with his crew code, not the guest's.
    ingest = Ingest(cloud.ctx.db)
    his, his_body = _event(site.gateway_id, mine["accessCode"]["id"])
    guests, guest_body = _event(site.gateway_id, booking["accessCodes"][0]["id"])
    for body in (his_body, guest_body):
        ingest.handle(topic(site.gateway_id, Channel.EVENTS), body)
    feed = (await dave.get("/timeline/activity")).json()
    assert [a["id"] for a in feed["activities"]] == [his]
    assert feed["activities"][0]["taskId"] == mine["id"]
    assert feed["total"] == 1
    owner_feed = {
        a["id"]
        for a in (await alice.get("/timeline/activity", params={"size": 100})).json()["activities"]
    }
    assert {his, guests} <= owner_feed

    # He runs his own task; completing it ends his code at once.
    assert (await dave.post(f"/tasks/{other['id']}/start")).status_code == 404
    assert (await dave.post(f"/tasks/{mine['id']}/start")).status_code == 200
    done = await dave.post(f"/tasks/{mine['id']}/complete")
    assert done.status_code == 200
    assert done.json()["status"] == "completed"
    assert done.json()["accessCode"] is None
    code = (await alice.get(f"/access-codes/{mine['accessCode']['id']}")).json()
    assert code["status"] == "revoked"
    again = await dave.post(f"/tasks/{mine['id']}/complete")
    assert again.status_code == 409
