"""Properties: defaults, updates, listing."""

from __future__ import annotations

from tests.cloud_api.helpers import Host


async def test_create_property_with_defaults(alice: Host) -> None:
    prop = await alice.new_property(name="Loft Sol", timezone="America/New_York")
    assert prop["checkInTime"] == "15:00"
    assert prop["checkOutTime"] == "11:00"
    assert prop["earlyCheckInBufferMinutes"] == 0
    assert prop["lateCheckOutBufferMinutes"] == 0
    assert prop["role"] == "owner"
    fetched = await alice.get(f"/properties/{prop['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == prop


async def test_update_property_keeps_omitted_fields(alice: Host) -> None:
    prop = await alice.new_property(checkInTime="16:00")
    response = await alice.put(
        f"/properties/{prop['id']}", {"name": "Casa Verde", "lateCheckOutBufferMinutes": 30}
    )
    assert response.status_code == 200
    updated = response.json()
    assert updated["name"] == "Casa Verde"
    assert updated["lateCheckOutBufferMinutes"] == 30
    assert updated["checkInTime"] == "16:00"
    assert updated["timezone"] == "Europe/Madrid"


async def test_update_refuses_null_for_required_fields(alice: Host) -> None:
    prop = await alice.new_property()
    response = await alice.put(f"/properties/{prop['id']}", {"timezone": None})
    assert response.status_code == 422
    assert "timezone cannot be null" in response.json()["detail"]


async def test_list_properties_is_paginated(alice: Host) -> None:
    before = (await alice.get("/properties", params={"size": 1})).json()
    await alice.new_property(name="AAA first")
    await alice.new_property(name="AAB second")
    page = (await alice.get("/properties", params={"page": 0, "size": 1})).json()
    assert page["total"] == before["total"] + 2
    assert (page["page"], page["size"]) == (0, 1)
    assert len(page["properties"]) == 1
    everything = (await alice.get("/properties", params={"size": 100})).json()
    names = [p["name"] for p in everything["properties"]]
    assert names == sorted(names)
