"""Tasks, the calendar in the Kasify shape, the upcoming timeline, the current booking, deleting
a property."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from tests.cloud_api.helpers import Host, enroll

SEED_EVENT_KEYS = {
    "id",
    "propertyId",
    "from",
    "to",
    "type",
    "createdAt",
    "updatedAt",
    "booking",
    "task",
}


async def test_task_lifecycle_and_validation(alice: Host, carol: Host) -> None:
    prop = await alice.new_property()
    pid = prop["id"]
    await alice.invite(pid, carol, "crew")
    carol_id = await carol.user_id()
    task = await alice.new_task(pid, assignedTo=carol_id, notes="Linen in the hall cupboard")
    assert task["status"] == "pending"
    assert (task["startsAt"], task["endsAt"]) == ("2030-07-05T09:00:00Z", "2030-07-05T12:00:00Z")
    assert task["assignedToName"] == carol.email
    assert (await carol.post(f"/tasks/{task['id']}/complete")).json()["status"] == "completed"
    started = await carol.post(f"/tasks/{task['id']}/start")
    assert started.status_code == 409
    assert "completed" in started.json()["detail"]
    locked = await alice.patch(f"/tasks/{task['id']}", {"title": "Again"})
    assert locked.status_code == 409

    bad = [
        ({"endsAt": "2030-07-05T10:00"}, "endsAt", "must be after startsAt"),
        ({"endsAt": "2030-08-30T10:00"}, "endsAt", "less than 31 days"),
        ({"startsAt": 1893456000}, "startsAt", "like '2030-07-05T11:00'"),
        ({"endsAt": "2030-07-05T14:00Z"}, "endsAt", "both with an offset or both"),
        ({"type": "party"}, "type", "Input should be"),
        ({"assignedTo": "nobody"}, "assignedTo", "not a member"),
        ({"bookingId": "nope"}, "bookingId", "not a booking of property"),
        ({"propertyId": "nope"}, None, "not found"),
    ]
    for fields, field, words in bad:
        body = {
            "propertyId": pid,
            "title": "x",
            "startsAt": "2030-07-05T11:00",
            "endsAt": "2030-07-05T14:00",
            **fields,
        }
        response = await alice.post("/tasks", body)
        assert response.status_code in (404, 422), (fields, response.text)
        if field is not None:
            error = response.json()["errors"][0]
            assert (error["field"], words in error["message"]) == (field, True), error
        else:
            assert words in response.json()["detail"]


async def test_task_lists_are_filtered_and_paginated(alice: Host, carol: Host) -> None:
    prop = await alice.new_property()
    pid = prop["id"]
    await alice.invite(pid, carol, "crew")
    mine = await alice.new_task(
        pid,
        assignedTo=await carol.user_id(),
        startsAt="2030-07-06T10:00",
        endsAt="2030-07-06T11:00",
    )
    first = await alice.new_task(pid)
    listed = (await alice.get(f"/properties/{pid}/tasks", params={"size": 1})).json()
    assert (listed["total"], [t["id"] for t in listed["tasks"]]) == (2, [first["id"]])
    theirs = await carol.get(f"/properties/{pid}/tasks", params={"mine": True})
    assert [t["id"] for t in theirs.json()["tasks"]] == [mine["id"]]
    across = await carol.get("/tasks", params={"mine": True, "size": 100})
    assert mine["id"] in {t["id"] for t in across.json()["tasks"]}
    assert first["id"] not in {t["id"] for t in across.json()["tasks"]}
    await alice.post(f"/tasks/{first['id']}/start")
    running = (await alice.get(f"/properties/{pid}/tasks", params={"status": "in_progress"})).json()
    assert [t["id"] for t in running["tasks"]] == [first["id"]]


async def test_calendar_has_the_kasify_shape(alice: Host, carol: Host) -> None:
    prop = await alice.new_property(timezone="America/New_York")
    pid = prop["id"]
    await alice.invite(pid, carol, "crew")
    booking = await alice.new_booking(
        pid, channelId="airbnb-123", **{"from": "2030-07-01", "to": "2030-07-05"}
    )
    # 23:30 local on the 5th is the 6th in UTC: the calendar shows local dates.
    task = await alice.new_task(
        pid,
        assignedTo=await carol.user_id(),
        startsAt="2030-07-05T23:30",
        endsAt="2030-07-06T01:00",
    )
    cancelled = await alice.new_booking(pid, **{"from": "2030-07-10", "to": "2030-07-12"})
    await alice.patch(f"/bookings/{cancelled['id']}", {"status": "cancelled"})

    page = (await alice.get(f"/properties/{pid}/calendar")).json()
    assert set(page) == {"events", "page", "size", "total"}
    assert (page["page"], page["size"], page["total"]) == (0, 20, 2)
    first, second = page["events"]
    assert set(first) >= SEED_EVENT_KEYS
    assert (first["id"], first["type"], first["from"], first["to"]) == (
        booking["id"],
        "booking",
        "2030-07-01",
        "2030-07-05",
    )
    assert first["booking"]["channelId"] == "airbnb-123"
    assert first["task"] is None
    assert (second["id"], second["type"], second["from"], second["to"]) == (
        task["id"],
        "cleaning",
        "2030-07-05",
        "2030-07-06",
    )
    assert second["task"] == {
        "id": task["id"],
        "type": "cleaning",
        "title": "Turnover clean",
        "status": "pending",
        "assignedTo": task["assignedTo"],
        "assignedToName": carol.email,
    }
    # Pages and date filters.
    paged = (await alice.get(f"/properties/{pid}/calendar", params={"page": 1, "size": 1})).json()
    assert [e["id"] for e in paged["events"]] == [task["id"]]
    ranged = await alice.get(f"/properties/{pid}/calendar", params={"from": "2030-07-06"})
    assert [e["id"] for e in ranged.json()["events"]] == [task["id"]]
    reversed_range = await alice.get(
        f"/properties/{pid}/calendar", params={"from": "2030-07-06", "to": "2030-07-01"}
    )
    assert reversed_range.status_code == 422
    assert reversed_range.json()["errors"][0]["field"] == "to"
    # Crew see the whole calendar too.
    assert (await carol.get(f"/properties/{pid}/calendar")).json()["total"] == 2


async def test_upcoming_calendar_and_timeline_group_by_local_day(alice: Host) -> None:
    zone = "Pacific/Auckland"  # far from UTC: local days differ from UTC days
    prop = await alice.new_property(name="Kiwi", timezone=zone, checkInTime="14:00")
    pid = prop["id"]
    today = datetime.now(ZoneInfo(zone)).date()
    stay = await alice.new_booking(
        pid, **{"from": str(today + timedelta(days=1)), "to": str(today + timedelta(days=3))}
    )
    past = await alice.new_booking(
        pid, **{"from": str(today - timedelta(days=9)), "to": str(today - timedelta(days=5))}
    )
    task = await alice.new_task(
        pid,
        startsAt=f"{today + timedelta(days=3)}T12:00",
        endsAt=f"{today + timedelta(days=3)}T15:00",
    )
    upcoming = {
        e["id"] for e in (await alice.get("/calendar", params={"size": 100})).json()["events"]
    }
    assert {stay["id"], task["id"]} <= upcoming
    assert past["id"] not in upcoming

    timeline = (await alice.get("/timeline", params={"days": 5})).json()
    mine = {
        day["date"]: [(e["type"], e["localTime"]) for e in day["entries"] if e["propertyId"] == pid]
        for day in timeline["days"]
    }
    mine = {day: entries for day, entries in mine.items() if entries}
    assert mine == {
        str(today + timedelta(days=1)): [("check_in", "14:00")],
        str(today + timedelta(days=3)): [("check_out", "11:00"), ("task", "12:00")],
    }
    short = (await alice.get("/timeline", params={"days": 2})).json()
    assert str(today + timedelta(days=3)) not in {d["date"] for d in short["days"]}
    assert (await alice.get("/timeline", params={"days": 0})).status_code == 422


async def test_current_booking(alice: Host) -> None:
    prop = await alice.new_property(timezone="UTC", checkInTime="00:00", checkOutTime="23:59")
    pid = prop["id"]
    nothing = await alice.get(f"/properties/{pid}/bookings/current")
    assert nothing.status_code == 404
    assert "no booking is in progress" in nothing.json()["detail"]
    today = date.today()
    now = await alice.new_booking(pid, **{"from": str(today), "to": str(today + timedelta(days=2))})
    await alice.new_booking(
        pid, **{"from": str(today + timedelta(days=5)), "to": str(today + timedelta(days=6))}
    )
    current = await alice.get(f"/properties/{pid}/bookings/current")
    assert current.json()["id"] == now["id"]


async def test_deleting_a_property_revokes_everything(
    alice: Host, erin: Host, client: httpx.AsyncClient
) -> None:
    prop = await alice.new_property()
    pid = prop["id"]
    await alice.invite(pid, erin, "manager")
    gateway = await alice.new_gateway(pid)
    await enroll(client, gateway)
    booking = await alice.new_booking(pid)
    refused = await erin.delete(f"/properties/{pid}")
    assert refused.status_code == 403
    assert "owner" in refused.json()["detail"]
    assert (await alice.delete(f"/properties/{pid}")).status_code == 204
    for host in (alice, erin):
        assert (await host.get(f"/properties/{pid}")).status_code == 404
        assert (await host.get(f"/bookings/{booking['id']}")).status_code == 404
    assert pid not in {
        p["id"] for p in (await alice.get("/properties", params={"size": 100})).json()["properties"]
    }
