"""Smart locks with live status from the gateway's reports, and the Nuki / UniFi integrations
whose "reachable" listings come from the gateway's inventory (in the Kasify API's shapes)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from cloud_api.sync.ingest import Ingest
from sync_protocol.models import Inventory, LockStatus, NukiDevice, UnifiDoor
from sync_protocol.topics import Channel, topic
from tests.cloud_api.conftest import Cloud
from tests.cloud_api.helpers import Host, enroll, new_site, reported

NUKI_KEYS = {
    "smartlock_id",
    "name",
    "lock_state",
    "battery_charge",
    "battery_critical",
    "offline",
    "assigned_property",
}


async def test_locks_show_live_status_and_go_offline_with_their_gateway(
    alice: Host, cloud: Cloud
) -> None:
    site = await new_site(alice, "nuki")
    lock_id = site.lock["id"]
    fresh = (await alice.get(f"/properties/{site.id}/smartlocks")).json()["smartlocks"][0]
    assert (fresh["lockState"], fresh["doorState"], fresh["offline"]) == (
        "unknown",
        "unknown",
        True,
    )
    ingest = Ingest(cloud.ctx.db)
    ingest.handle(topic(site.gateway_id, Channel.PRESENCE), b"online")
    seen = datetime(2030, 7, 1, 12, 0, tzinfo=UTC)
    status = LockStatus(
        lock_id=lock_id,
        state="locked",
        battery_percent=18,
        battery_critical=True,
        door="closed",
        reachable=True,
        last_seen=seen,
    )
    ingest.handle(
        topic(site.gateway_id, Channel.REPORTED), reported(site.gateway_id, locks=(status,))
    )
    [lock] = (await alice.get(f"/properties/{site.id}/smartlocks")).json()["smartlocks"]
    assert {k: lock[k] for k in ("lockState", "batteryCharge", "batteryCritical", "doorState")} == {
        "lockState": "locked",
        "batteryCharge": 18,
        "batteryCritical": True,
        "doorState": "closed",
    }
    assert (lock["offline"], lock["lastSeenAt"]) == (False, "2030-07-01T12:00:00Z")
    ingest.handle(topic(site.gateway_id, Channel.PRESENCE), b"offline")
    [lock] = (await alice.get(f"/properties/{site.id}/smartlocks")).json()["smartlocks"]
    assert lock["offline"] is True
    assert lock["lockState"] == "locked"  # the last known state stays visible
    feed = (await alice.get("/timeline/activity", params={"size": 100})).json()["activities"]
    mine = [a["type"] for a in feed if a["gatewayId"] == site.gateway_id]
    assert mine == ["gateway_offline", "gateway_online"]


async def test_removing_a_lock(alice: Host, carol: Host) -> None:
    site = await new_site(alice)
    await alice.invite(site.id, carol, "crew")
    path = f"/properties/{site.id}/smartlocks/{site.lock['id']}"
    assert (await carol.delete(path)).status_code == 403
    assert (await alice.delete(path)).status_code == 204
    assert (await alice.delete(path)).status_code == 404
    assert (await alice.get(f"/properties/{site.id}/smartlocks")).json()["smartlocks"] == []


async def test_integrations_crud(alice: Host, carol: Host, client: httpx.AsyncClient) -> None:
    site = await new_site(alice, "nuki")
    await alice.invite(site.id, carol, "crew")
    created = await alice.post(
        "/integrations/nuki", {"name": "Nukis", "gatewayId": site.gateway_id}
    )
    assert created.status_code == 201
    nuki = created.json()
    assert (nuki["type"], nuki["propertyId"], nuki["status"]) == ("nuki", site.id, "offline")
    clash = await alice.post("/integrations/nuki", {"name": "Again", "gatewayId": site.gateway_id})
    assert clash.status_code == 409
    assert f"PUT /integrations/nuki/{nuki['id']}" in clash.json()["detail"]
    unifi = (
        await alice.post("/integrations/unifi", {"name": "Doors", "gatewayId": site.gateway_id})
    ).json()
    everything = (await alice.get("/integrations")).json()["integrations"]
    assert {(i["id"], i["type"]) for i in everything} >= {
        (nuki["id"], "nuki"),
        (unifi["id"], "unifi"),
    }
    only_unifi = (await alice.get("/integrations/unifi")).json()["integrations"]
    assert nuki["id"] not in {i["id"] for i in only_unifi}
    unknown = await alice.get("/integrations/ses_hospedajes")
    assert unknown.status_code == 422
    assert "nuki" in unknown.json()["detail"]

    # Crew do not manage integrations; they do not even see them.
    assert nuki["id"] not in {
        i["id"] for i in (await carol.get("/integrations")).json()["integrations"]
    }
    assert (await carol.put(f"/integrations/nuki/{nuki['id']}", {"name": "x"})).status_code == 403

    other = await alice.new_gateway(site.id, "Second Pi")
    await enroll(client, other)
    moved = await alice.put(f"/integrations/nuki/{nuki['id']}", {"gatewayId": other["id"]})
    assert moved.json()["gatewayId"] == other["id"]
    wrong_type = await alice.put(f"/integrations/unifi/{nuki['id']}", {"name": "x"})
    assert wrong_type.status_code == 404
    assert (await alice.delete(f"/integrations/nuki/{nuki['id']}")).status_code == 204
    assert (await alice.get(f"/integrations/nuki/{nuki['id']}/smartlocks")).status_code == 404


async def test_reachable_locks_and_doors_come_from_the_gateway(alice: Host, cloud: Cloud) -> None:
    site = await new_site(alice, "nuki")  # device ref 5A1B2C
    await alice.new_lock(site.id, site.gateway_id, "unifi", "door-2")
    nuki = (
        await alice.post("/integrations/nuki", {"name": "N", "gatewayId": site.gateway_id})
    ).json()
    unifi = (
        await alice.post("/integrations/unifi", {"name": "U", "gatewayId": site.gateway_id})
    ).json()
    nuki_path = f"/integrations/nuki/{nuki['id']}/smartlocks"
    assert (await alice.get(nuki_path)).json() == {"smartlocks": [], "nuki_status": "unreachable"}

    ingest = Ingest(cloud.ctx.db)
    ingest.handle(topic(site.gateway_id, Channel.PRESENCE), b"online")
    inventory = Inventory(
        nuki=(
            NukiDevice(nuki_id="5A1B2C", name="Front door", paired=True),
            NukiDevice(nuki_id="0BEEF1", name="Garage"),
        ),
        unifi=(
            UnifiDoor(floor_id="f1", door_id="door-1", name="Lobby"),
            UnifiDoor(floor_id="f1", door_id="door-2", name="Gym"),
        ),
    )
    status = LockStatus(
        lock_id=site.lock["id"], state="unlocked", battery_percent=77, reachable=True
    )
    ingest.handle(
        topic(site.gateway_id, Channel.REPORTED),
        reported(site.gateway_id, locks=(status,), inventory=inventory),
    )
    listing = (await alice.get(nuki_path)).json()
    assert set(listing) == {"smartlocks", "nuki_status"}
    assert listing["nuki_status"] == "online"
    front, garage = listing["smartlocks"]
    assert set(front) >= NUKI_KEYS
    assert (front["smartlock_id"], front["name"], front["lock_state"]) == (
        0x5A1B2C,
        "Front door",
        3,
    )
    assert (front["battery_charge"], front["offline"]) == (77, False)
    assert front["assigned_property"] == {
        "property_id": site.id,
        "property_name": site.property["name"],
        "smartlock_record_id": site.lock["id"],
    }
    assert (garage["smartlock_id"], garage["lock_state"], garage["assigned_property"]) == (
        0x0BEEF1,
        255,
        None,
    )
    doors = (await alice.get(f"/integrations/unifi/{unifi['id']}/smartlocks")).json()
    assert [(d["floor_id"], d["door_id"], d["name"]) for d in doors["smartlocks"]] == [
        ("f1", "door-1", "Lobby"),
        ("f1", "door-2", "Gym"),
    ]
    assert doors["smartlocks"][0]["assigned_property"] is None
    assert doors["smartlocks"][1]["assigned_property"]["property_id"] == site.id
    # The gateway goes away: its last report, marked unreachable.
    ingest.handle(topic(site.gateway_id, Channel.PRESENCE), b"offline")
    offline = (await alice.get(nuki_path)).json()
    assert offline["nuki_status"] == "unreachable"
    assert all(lock["offline"] for lock in offline["smartlocks"])
