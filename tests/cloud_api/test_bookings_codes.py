"""Bookings issue guest codes whose windows follow the booking and the property."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from cloud_api.codes import generate_pin, pin_problem
from cloud_api.services import access_codes
from cloud_api.services.access_codes import taken_pins
from tests.cloud_api.conftest import Cloud
from tests.cloud_api.helpers import Host


def _code(booking: dict[str, Any]) -> dict[str, Any]:
    codes = booking["accessCodes"]
    assert len(codes) == 1, codes
    code: dict[str, Any] = codes[0]
    return code


@pytest.mark.parametrize(
    ("timezone", "check_in", "check_out", "starts_at", "ends_at"),
    [
        # Madrid: clocks go forward on 2025-03-30 (CET +1 -> CEST +2)...
        (
            "Europe/Madrid",
            "2025-03-28",
            "2025-04-01",
            "2025-03-28T12:30:00Z",
            "2025-04-01T09:45:00Z",
        ),
        # ... and back on 2025-10-26 (CEST +2 -> CET +1).
        (
            "Europe/Madrid",
            "2025-10-24",
            "2025-10-28",
            "2025-10-24T11:30:00Z",
            "2025-10-28T10:45:00Z",
        ),
        # New York: forward on 2025-03-09 (EST -5 -> EDT -4), back on 2025-11-02.
        (
            "America/New_York",
            "2025-03-07",
            "2025-03-11",
            "2025-03-07T18:30:00Z",
            "2025-03-11T15:45:00Z",
        ),
        (
            "America/New_York",
            "2025-10-31",
            "2025-11-04",
            "2025-10-31T17:30:00Z",
            "2025-11-04T16:45:00Z",
        ),
    ],
)
async def test_booking_issues_guest_code_with_window_across_dst(
    alice: Host, timezone: str, check_in: str, check_out: str, starts_at: str, ends_at: str
) -> None:
    prop = await alice.new_property(
        timezone=timezone, earlyCheckInBufferMinutes=90, lateCheckOutBufferMinutes=45
    )
    booking = await alice.new_booking(prop["id"], **{"from": check_in, "to": check_out})
    code = _code(booking)
    assert code["kind"] == "guest"
    assert code["status"] == "active"
    assert code["bookingId"] == booking["id"]
    assert (code["startsAt"], code["endsAt"]) == (starts_at, ends_at)
    assert pin_problem(code["pin"]) is None


async def test_booking_is_readable_and_listed(alice: Host) -> None:
    prop = await alice.new_property()
    booking = await alice.new_booking(
        prop["id"], guestEmail="Marta@Example.com", guestPhone="+34 600 000 000", channelId="abc"
    )
    assert booking["guestEmail"] == "marta@example.com"
    assert booking["status"] == "confirmed"
    fetched = await alice.get(f"/bookings/{booking['id']}")
    assert fetched.json() == booking
    listed = (await alice.get(f"/properties/{prop['id']}/bookings")).json()
    assert listed["total"] == 1
    assert listed["bookings"] == [booking]
    across = (await alice.get("/bookings", params={"size": 100})).json()
    assert booking["id"] in {b["id"] for b in across["bookings"]}


async def test_date_change_moves_the_code_window(alice: Host) -> None:
    prop = await alice.new_property()
    booking = await alice.new_booking(prop["id"])
    before = _code(booking)
    response = await alice.patch(f"/bookings/{booking['id']}", {"to": "2030-07-07"})
    assert response.status_code == 200
    after = _code(response.json())
    assert after["id"] == before["id"]
    assert after["pin"] == before["pin"]
    assert after["startsAt"] == before["startsAt"]
    assert after["endsAt"] == "2030-07-07T09:00:00Z"  # 11:00 CEST


async def test_date_change_must_keep_to_after_from(alice: Host) -> None:
    prop = await alice.new_property()
    booking = await alice.new_booking(prop["id"])
    response = await alice.patch(f"/bookings/{booking['id']}", {"to": "2030-06-30"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "to"
    unchanged = (await alice.get(f"/bookings/{booking['id']}")).json()
    assert unchanged["to"] == "2030-07-05"


async def test_cancelling_revokes_and_reconfirming_reissues(alice: Host) -> None:
    prop = await alice.new_property()
    booking = await alice.new_booking(prop["id"])
    original = _code(booking)
    cancelled = (await alice.patch(f"/bookings/{booking['id']}", {"status": "cancelled"})).json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["accessCodes"] == []
    history = (await alice.get(f"/bookings/{booking['id']}/access-codes")).json()["accessCodes"]
    assert [(c["id"], c["status"]) for c in history] == [(original["id"], "revoked")]
    assert history[0]["revokedAt"] is not None

    refused = await alice.post(f"/bookings/{booking['id']}/access-codes")
    assert refused.status_code == 409

    again = (await alice.patch(f"/bookings/{booking['id']}", {"status": "confirmed"})).json()
    assert _code(again)["id"] != original["id"]


async def test_reissue_replaces_the_active_code(alice: Host) -> None:
    prop = await alice.new_property()
    booking = await alice.new_booking(prop["id"])
    first = _code(booking)
    response = await alice.post(f"/bookings/{booking['id']}/access-codes")
    assert response.status_code == 201
    second = response.json()
    assert second["id"] != first["id"]
    assert (second["startsAt"], second["endsAt"]) == (first["startsAt"], first["endsAt"])
    codes = (await alice.get(f"/bookings/{booking['id']}/access-codes")).json()["accessCodes"]
    assert [(c["id"], c["status"]) for c in codes] == [
        (second["id"], "active"),
        (first["id"], "revoked"),
    ]


async def test_revoke_access_code_is_idempotent(alice: Host) -> None:
    prop = await alice.new_property()
    code = _code(await alice.new_booking(prop["id"]))
    first = await alice.delete(f"/access-codes/{code['id']}")
    assert first.status_code == 204
    [revoked] = (await alice.get(f"/bookings/{code['bookingId']}/access-codes")).json()[
        "accessCodes"
    ]
    assert revoked["status"] == "revoked"
    second = await alice.delete(f"/access-codes/{code['id']}")
    assert second.status_code == 204
    [again] = (await alice.get(f"/bookings/{code['bookingId']}/access-codes")).json()["accessCodes"]
    assert again["revokedAt"] == revoked["revokedAt"]
    assert (await alice.delete("/access-codes/does-not-exist")).status_code == 404


async def test_chosen_pin_must_be_free_in_overlapping_windows(alice: Host) -> None:
    prop = await alice.new_property()
    first = await alice.new_booking(prop["id"], **{"from": "2030-07-01", "to": "2030-07-05"})
    overlapping = await alice.new_booking(prop["id"], **{"from": "2030-07-04", "to": "2030-07-08"})
    later = await alice.new_booking(prop["id"], **{"from": "2030-08-01", "to": "2030-08-03"})
    pin = _code(first)["pin"]

    clash = await alice.post(f"/bookings/{overlapping['id']}/access-codes", {"pin": pin})
    assert clash.status_code == 422
    assert clash.json()["errors"][0]["field"] == "pin"
    assert "overlapping window" in clash.json()["detail"]
    # The failed request changed nothing: the overlapping booking keeps its code.
    kept = (await alice.get(f"/bookings/{overlapping['id']}")).json()
    assert _code(kept)["id"] == _code(overlapping)["id"]

    reused = await alice.post(f"/bookings/{later['id']}/access-codes", {"pin": pin})
    assert reused.status_code == 201
    assert reused.json()["pin"] == pin


async def test_chosen_pin_must_follow_the_keypad_rules(alice: Host) -> None:
    prop = await alice.new_property()
    booking = await alice.new_booking(prop["id"])
    for pin, words in [("123456", "must not start with 12"), ("102345", "no 0"), ("98765", "6")]:
        response = await alice.post(f"/bookings/{booking['id']}/access-codes", {"pin": pin})
        assert response.status_code == 422, pin
        assert words in response.json()["detail"]


async def test_generated_pin_skips_pins_taken_in_overlapping_windows(
    alice: Host, cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    prop = await alice.new_property()
    first = await alice.new_booking(prop["id"], **{"from": "2030-07-01", "to": "2030-07-05"})
    taken = _code(first)["pin"]
    scripted = iter(list(taken) + list("978654"))
    monkeypatch.setattr(
        access_codes,
        "generate_pin",
        lambda used: generate_pin(used, choice=lambda _digits: next(scripted)),
    )
    second = await alice.new_booking(prop["id"], **{"from": "2030-07-03", "to": "2030-07-06"})
    assert _code(second)["pin"] == "978654"
    with cloud.ctx.db.session() as session:
        code = _code(first)
        window = (datetime.fromisoformat(code["startsAt"]), datetime.fromisoformat(code["endsAt"]))
        assert taken_pins(session, prop["id"], *window) == {taken, "978654"}


async def test_property_time_change_moves_current_codes(alice: Host) -> None:
    prop = await alice.new_property()
    booking = await alice.new_booking(prop["id"])
    assert _code(booking)["startsAt"] == "2030-07-01T13:00:00Z"  # 15:00 CEST
    response = await alice.put(
        f"/properties/{prop['id']}", {"checkInTime": "17:00", "earlyCheckInBufferMinutes": 30}
    )
    assert response.status_code == 200
    moved = _code((await alice.get(f"/bookings/{booking['id']}")).json())
    assert moved["startsAt"] == "2030-07-01T14:30:00Z"
    rezoned = await alice.put(f"/properties/{prop['id']}", {"timezone": "Atlantic/Canary"})
    assert rezoned.status_code == 200
    moved = _code((await alice.get(f"/bookings/{booking['id']}")).json())
    assert moved["startsAt"] == "2030-07-01T15:30:00Z"  # 17:00 WEST (+1) less 30 min


async def test_import_creates_many_bookings_with_unique_pins(alice: Host, carol: Host) -> None:
    prop = await alice.new_property()
    pid = prop["id"]
    existing = await alice.new_booking(pid, **{"from": "2030-07-01", "to": "2030-07-10"})
    items = [
        {"guestName": f"Guest {i}", "from": "2030-07-02", "to": "2030-07-04", "channelId": f"c{i}"}
        for i in range(30)
    ]
    response = await alice.post(f"/properties/{pid}/bookings/import", {"bookings": items})
    assert response.status_code == 201
    made = response.json()["bookings"]
    assert [b["channelId"] for b in made] == [f"c{i}" for i in range(30)]
    pins = {b["accessCodes"][0]["pin"] for b in made} | {existing["accessCodes"][0]["pin"]}
    assert len(pins) == 31  # every window overlaps: every PIN differs
    assert all(pin_problem(p) is None for p in pins)
    assert made[0]["accessCodes"][0]["startsAt"] == "2030-07-02T13:00:00Z"
    assert (await alice.get(f"/properties/{pid}/bookings")).json()["total"] == 31


async def test_import_is_all_or_nothing_and_checked_like_single_bookings(
    alice: Host, carol: Host
) -> None:
    prop = await alice.new_property()
    pid = prop["id"]
    good = {"guestName": "Ana", "from": "2030-07-02", "to": "2030-07-04"}
    bad = await alice.post(
        f"/properties/{pid}/bookings/import",
        {"bookings": [good, {**good, "to": "2030-07-01"}]},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "bookings.1.to"
    assert (await alice.get(f"/properties/{pid}/bookings")).json()["total"] == 0
    too_many = await alice.post(f"/properties/{pid}/bookings/import", {"bookings": [good] * 101})
    assert too_many.status_code == 422
    assert (
        await alice.post(f"/properties/{pid}/bookings/import", {"bookings": []})
    ).status_code == 422
    await alice.invite(pid, carol, "crew")
    refused = await carol.post(f"/properties/{pid}/bookings/import", {"bookings": [good]})
    assert refused.status_code == 403
