"""A non-member gets 404, never 403, for another host's property and everything in it."""

from __future__ import annotations

from typing import Any

import httpx

from cloud_api.models import Membership, Role
from cloud_api.sync.ingest import Ingest
from sync_protocol.ids import uuid7
from sync_protocol.topics import Channel, topic
from tests.cloud_api.conftest import Cloud
from tests.cloud_api.helpers import Host, enroll, new_site
from tests.cloud_api.test_ingest import _batch


async def test_bob_cannot_see_or_touch_alices_things(
    alice: Host, bob: Host, client: httpx.AsyncClient, cloud: Cloud
) -> None:
    prop = await alice.new_property()
    pid = prop["id"]
    booking = await alice.new_booking(pid)
    code = booking["accessCodes"][0]
    gateway = await alice.new_gateway(pid)
    await enroll(client, gateway)
    lock_body = {"kind": "nuki", "deviceRef": "AB12", "name": "Door", "gatewayId": gateway["id"]}
    assert (await alice.post(f"/properties/{pid}/smartlocks", lock_body)).status_code == 201
    event_id, body = _batch(gateway["id"], code_id=code["id"])
    Ingest(cloud.ctx.db).handle(topic(gateway["id"], Channel.EVENTS), body)

    attempts = [
        ("GET", f"/properties/{pid}", None),
        ("PUT", f"/properties/{pid}", {"name": "Mine now"}),
        ("GET", f"/properties/{pid}/bookings", None),
        (
            "POST",
            f"/properties/{pid}/bookings",
            {"guestName": "X", "from": "2030-01-01", "to": "2030-01-02"},
        ),
        ("GET", f"/bookings/{booking['id']}", None),
        ("PATCH", f"/bookings/{booking['id']}", {"status": "cancelled"}),
        ("GET", f"/bookings/{booking['id']}/access-codes", None),
        ("POST", f"/bookings/{booking['id']}/access-codes", None),
        ("DELETE", f"/access-codes/{code['id']}", None),
        ("GET", f"/properties/{pid}/gateways", None),
        ("POST", f"/properties/{pid}/gateways", {"name": "Sneaky"}),
        ("GET", f"/gateways/{gateway['id']}", None),
        ("DELETE", f"/gateways/{gateway['id']}", None),
        ("GET", f"/properties/{pid}/smartlocks", None),
        ("POST", f"/properties/{pid}/smartlocks", lock_body),
    ]
    for method, path, json_body in attempts:
        response = await bob.client.request(method, path, json=json_body, headers=bob.auth)
        assert response.status_code == 404, (method, path, response.text)
        assert "not found" in response.json()["detail"]

    assert pid not in {
        p["id"] for p in (await bob.get("/properties", params={"size": 100})).json()["properties"]
    }
    assert booking["id"] not in {
        b["id"] for b in (await bob.get("/bookings", params={"size": 100})).json()["bookings"]
    }
    bob_feed = (await bob.get("/timeline/activity", params={"size": 100})).json()["activities"]
    assert event_id not in {a["id"] for a in bob_feed}

    # Nothing Bob tried changed anything.
    assert (await alice.get(f"/properties/{pid}")).json()["name"] == prop["name"]
    still = (await alice.get(f"/bookings/{booking['id']}")).json()
    assert still["status"] == "confirmed"
    assert [(c["id"], c["pin"]) for c in still["accessCodes"]] == [(code["id"], code["pin"])]
    assert (await alice.get(f"/gateways/{gateway['id']}")).status_code == 200
    assert len((await alice.get(f"/properties/{pid}/gateways")).json()["gateways"]) == 1
    alice_feed = (await alice.get("/timeline/activity", params={"size": 100})).json()
    assert event_id in {a["id"] for a in alice_feed["activities"]}


async def test_unknown_ids_are_404(alice: Host) -> None:
    for path in ("/properties/nope", "/bookings/nope", "/gateways/nope"):
        response = await alice.get(path)
        assert response.status_code == 404
        assert "nope" in response.json()["detail"]


async def test_a_member_without_rights_may_look_but_not_change(
    alice: Host, bob: Host, cloud: Cloud
) -> None:
    prop = await alice.new_property()
    booking = await alice.new_booking(prop["id"])
    bob_id = (await bob.get("/account")).json()["id"]
    with cloud.ctx.db.session() as session:
        session.add(Membership(user_id=bob_id, property_id=prop["id"], role=Role.CREW))
        session.commit()
    seen = await bob.get(f"/properties/{prop['id']}")
    assert seen.status_code == 200
    assert seen.json()["role"] == "crew"
    assert (await bob.get(f"/bookings/{booking['id']}")).status_code == 200
    refused = await bob.patch(f"/bookings/{booking['id']}", {"status": "cancelled"})
    assert refused.status_code == 403
    assert "your role at property" in refused.json()["detail"]
    assert "crew" in refused.json()["detail"]
    assert (await bob.post(f"/properties/{prop['id']}/gateways", {"name": "x"})).status_code == 403
    still = (await alice.get(f"/bookings/{booking['id']}")).json()
    assert still["status"] == "confirmed"


async def test_bob_gets_404_for_every_endpoint_of_alices_property(
    alice: Host, bob: Host, carol: Host, client: httpx.AsyncClient, cloud: Cloud
) -> None:
    site = await new_site(alice, "nuki")
    pid, lock_id = site.id, site.lock["id"]
    await alice.invite(pid, carol, "crew")
    carol_id = await carol.user_id()
    booking = await alice.new_booking(pid)
    code_id = booking["accessCodes"][0]["id"]
    task = await alice.new_task(pid, assignedTo=carol_id)
    invitation = (
        await alice.post(f"/properties/{pid}/invitations", {"email": "x@example.com"})
    ).json()
    nuki = (
        await alice.post("/integrations/nuki", {"name": "N", "gatewayId": site.gateway_id})
    ).json()
    unifi = (
        await alice.post("/integrations/unifi", {"name": "U", "gatewayId": site.gateway_id})
    ).json()
    guest = {
        "firstName": "A",
        "lastName": "B",
        "documentType": "passport",
        "documentNumber": "X123",
        "nationality": "ES",
        "birthDate": "1980-01-01",
    }
    window = {"startsAt": "2030-07-05T11:00", "endsAt": "2030-07-05T12:00"}
    attempts: dict[tuple[str, str], tuple[str, Any]] = {
        ("delete", "/properties/{property_id}"): (f"/properties/{pid}", None),
        ("get", "/properties/{property_id}/invitations"): (f"/properties/{pid}/invitations", None),
        ("post", "/properties/{property_id}/invitations"): (
            f"/properties/{pid}/invitations",
            {"email": bob.email},
        ),
        ("delete", "/properties/{property_id}/invitations/{invitation_id}"): (
            f"/properties/{pid}/invitations/{invitation['id']}",
            None,
        ),
        ("get", "/properties/{property_id}/members"): (f"/properties/{pid}/members", None),
        ("patch", "/properties/{property_id}/members/{member_id}"): (
            f"/properties/{pid}/members/{carol_id}",
            {"role": "contractor"},
        ),
        ("delete", "/properties/{property_id}/members/{member_id}"): (
            f"/properties/{pid}/members/{carol_id}",
            None,
        ),
        ("delete", "/properties/{property_id}/smartlocks/{lock_id}"): (
            f"/properties/{pid}/smartlocks/{lock_id}",
            None,
        ),
        ("post", "/smartlocks/{lock_id}/actions"): (
            f"/smartlocks/{lock_id}/actions",
            {"action": "unlock"},
        ),
        ("get", "/smartlocks/{lock_id}/actions/{command_id}"): (
            f"/smartlocks/{lock_id}/actions/{uuid7()}",
            None,
        ),
        ("get", "/integrations/nuki/{integration_id}/smartlocks"): (
            f"/integrations/nuki/{nuki['id']}/smartlocks",
            None,
        ),
        ("get", "/integrations/unifi/{integration_id}/smartlocks"): (
            f"/integrations/unifi/{unifi['id']}/smartlocks",
            None,
        ),
        ("put", "/integrations/{integration}/{integration_id}"): (
            f"/integrations/nuki/{nuki['id']}",
            {"name": "Mine"},
        ),
        ("delete", "/integrations/{integration}/{integration_id}"): (
            f"/integrations/nuki/{nuki['id']}",
            None,
        ),
        ("get", "/properties/{property_id}/bookings/current"): (
            f"/properties/{pid}/bookings/current",
            None,
        ),
        ("get", "/properties/{property_id}/access-codes"): (
            f"/properties/{pid}/access-codes",
            None,
        ),
        ("post", "/properties/{property_id}/bookings/import"): (
            f"/properties/{pid}/bookings/import",
            {"bookings": [{"guestName": "X", "from": "2030-01-01", "to": "2030-01-02"}]},
        ),
        ("post", "/properties/{property_id}/access-codes"): (f"/properties/{pid}/access-codes", {}),
        ("get", "/access-codes/{code_id}"): (f"/access-codes/{code_id}", None),
        ("get", "/bookings/{booking_id}/checkin"): (f"/bookings/{booking['id']}/checkin", None),
        ("post", "/bookings/{booking_id}/checkin/guests"): (
            f"/bookings/{booking['id']}/checkin/guests",
            guest,
        ),
        ("get", "/properties/{property_id}/tasks"): (f"/properties/{pid}/tasks", None),
        ("get", "/tasks/{task_id}"): (f"/tasks/{task['id']}", None),
        ("patch", "/tasks/{task_id}"): (f"/tasks/{task['id']}", {"title": "Mine"}),
        ("delete", "/tasks/{task_id}"): (f"/tasks/{task['id']}", None),
        ("post", "/tasks/{task_id}/start"): (f"/tasks/{task['id']}/start", None),
        ("post", "/tasks/{task_id}/complete"): (f"/tasks/{task['id']}/complete", None),
        ("get", "/properties/{property_id}/calendar"): (f"/properties/{pid}/calendar", None),
    }
    bodies = {
        ("post", "/tasks"): ("/tasks", {"propertyId": pid, "title": "x", **window}),
        ("post", "/integrations/{integration}"): (
            "/integrations/unifi",
            {"name": "x", "gatewayId": site.gateway_id},
        ),
    }
    for (method, template), (path, body) in {**attempts, **bodies}.items():
        response = await bob.client.request(method, path, json=body, headers=bob.auth)
        expected = 422 if template == "/integrations/{integration}" else 404
        assert response.status_code == expected, (method, path, response.text)

    # Every operation with a path parameter is in the list above or the first test.
    spec = (await client.get("/openapi.json")).json()
    with_params = {
        (method, path) for path, item in spec["paths"].items() for method in item if "{" in path
    }
    first_test = {
        ("get", "/properties/{property_id}"),
        ("put", "/properties/{property_id}"),
        ("get", "/properties/{property_id}/bookings"),
        ("post", "/properties/{property_id}/bookings"),
        ("get", "/bookings/{booking_id}"),
        ("patch", "/bookings/{booking_id}"),
        ("get", "/bookings/{booking_id}/access-codes"),
        ("post", "/bookings/{booking_id}/access-codes"),
        ("delete", "/access-codes/{code_id}"),
        ("get", "/properties/{property_id}/gateways"),
        ("post", "/properties/{property_id}/gateways"),
        ("get", "/gateways/{gateway_id}"),
        ("delete", "/gateways/{gateway_id}"),
        ("get", "/properties/{property_id}/smartlocks"),
        ("post", "/properties/{property_id}/smartlocks"),
    }
    not_by_id = {("post", "/invitations/{token}/accept"), ("get", "/integrations/{integration}")}
    assert with_params - set(attempts) - set(bodies) - first_test - not_by_id == set()

    # Nothing Bob tried changed anything.
    assert (await alice.get(f"/tasks/{task['id']}")).json()["title"] == task["title"]
    assert (await alice.get(f"/properties/{pid}/members")).json()["members"][1]["role"] == "crew"
    assert len((await alice.get(f"/properties/{pid}/smartlocks")).json()["smartlocks"]) == 1
    assert (await alice.get("/integrations/nuki")).json()["integrations"][-1]["name"] == "N"
    calendar = (await bob.get("/calendar", params={"size": 100})).json()["events"]
    assert booking["id"] not in {e["id"] for e in calendar}
    timeline = (await bob.get("/timeline", params={"days": 60})).json()["days"]
    assert pid not in {e["propertyId"] for day in timeline for e in day["entries"]}
    assert task["id"] not in {t["id"] for t in (await bob.get("/tasks")).json()["tasks"]}
    assert nuki["id"] not in {
        i["id"] for i in (await bob.get("/integrations")).json()["integrations"]
    }
