"""Adding and removing locks from the dashboard, from what the property's gateway reports."""

from __future__ import annotations

from typing import Any

from sync_protocol.models import Inventory, NukiDevice, UnifiDoor
from tests.cloud_api.conftest import Cloud
from tests.dashboard.support import People, Person, new_site, presence, report, unlabelled_fields

INVENTORY = Inventory(
    nuki=(
        NukiDevice(nuki_id="2A3B4C5D", name="Nuki_2A3B4C5D", paired=True),
        NukiDevice(nuki_id="11223344", name="Nuki_11223344", paired=False),
    ),
    unifi=(UnifiDoor(floor_id="f1", door_id="d-entrance", name="Building entrance"),),
    keypad_connected=True,
)


async def _locks(person: Person, property_id: str) -> list[dict[str, Any]]:
    body = (await person.api.get(f"/properties/{property_id}/smartlocks")).json()
    found: list[dict[str, Any]] = body["smartlocks"]
    return found


async def test_a_manager_adds_what_the_gateway_reports_and_removes_a_lock(
    people: People, cloud: Cloud
) -> None:
    alice = await people.new("alice")
    carol = await people.new("carol")
    site = await new_site(alice.api, "Casa Cerrojo")  # comes with a relay lock "Front door"
    await alice.api.invite(site.property_id, carol.api, "crew")
    presence(cloud, site.gateway_id, online=True)
    report(cloud, site.gateway_id, inventory=INVENTORY)
    path = f"/app/properties/{site.property_id}/locks"

    assert f'href="{path}"' in await alice.browser.page(f"/app/properties/{site.property_id}")
    page = await alice.browser.page(path)
    assert unlabelled_fields(page) == []
    assert "Add Nuki ID 2A3B4C5D" in page
    assert "Add UniFi door Building entrance" in page
    assert "kasify-agent nuki pair 11223344" in page  # not paired: how to, not a button
    assert "Add Nuki ID 11223344" not in page
    assert "Add the door strike" in page

    added = await alice.browser.post(
        path,
        {
            "kind": "nuki",
            "deviceRef": "2A3B4C5D",
            "gatewayId": site.gateway_id,
            "name": "Apartment door",
        },
    )
    assert "Apartment door added." in await alice.browser.follow(added)
    locks = {lock["name"]: lock for lock in await _locks(alice, site.property_id)}
    assert (locks["Apartment door"]["kind"], locks["Apartment door"]["deviceRef"]) == (
        "nuki",
        "2A3B4C5D",
    )
    page = await alice.browser.page(path)
    assert "Add Nuki ID 2A3B4C5D" not in page  # in use now
    assert "Remove Apartment door" in page

    # The same device twice, or no name: said in words, nothing added.
    twice = await alice.browser.post(
        path,
        {"kind": "nuki", "deviceRef": "2A3B4C5D", "gatewayId": site.gateway_id, "name": "Again"},
    )
    assert twice.status_code == 409
    assert "is already on this gateway" in twice.text
    await alice.browser.page(path)
    nameless = await alice.browser.post(
        path,
        {"kind": "unifi", "deviceRef": "d-entrance", "gatewayId": site.gateway_id, "name": ""},
    )
    assert nameless.status_code == 422
    assert "Give the lock a name" in nameless.text
    assert len(await _locks(alice, site.property_id)) == 2

    # Crew operate locks but do not add them.
    assert (await carol.browser.get(path)).status_code == 403

    lock_id = locks["Apartment door"]["id"]
    await alice.browser.page(path)
    asked = await alice.browser.post(f"{path}/{lock_id}/remove", {})
    assert "Remove this lock from the property?" in asked.text
    gone = await alice.browser.post(f"{path}/{lock_id}/remove", {"confirm": "yes"})
    assert "Lock removed." in await alice.browser.follow(gone)
    assert [lock["name"] for lock in await _locks(alice, site.property_id)] == ["Front door"]
    assert "Add Nuki ID 2A3B4C5D" in await alice.browser.page(path)  # offered again
