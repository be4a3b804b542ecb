"""The access-code engine: windows across DST, PIN rules per lock, kinds, check-in gating,
per-lock lifecycle from reported state, backup codes, and what reaches the gateway."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from cloud_api.db import utcnow
from cloud_api.models import Gateway
from cloud_api.sync.desired import build_desired
from cloud_api.sync.ingest import Ingest
from sync_protocol.codec import decode_desired
from sync_protocol.models import DesiredState, LockStatus
from sync_protocol.topics import Channel, topic
from tests.cloud_api.conftest import Cloud
from tests.cloud_api.helpers import Host, Site, delivery, new_site, reported

HORIZON = timedelta(days=14)
GUEST = {
    "firstName": "Ana",
    "lastName": "Ruiz",
    "documentType": "id_card",
    "documentNumber": "12345678Z",
    "nationality": "ES",
    "birthDate": "1990-02-03",
}


def _stay(start_in_days: int, nights: int) -> dict[str, str]:
    start = date.today() + timedelta(days=start_in_days)
    return {"from": start.isoformat(), "to": (start + timedelta(days=nights)).isoformat()}


def _desired(cloud: Cloud, site: Site) -> DesiredState:
    with cloud.ctx.db.session() as session:
        gateway = session.get(Gateway, site.gateway_id)
        assert gateway is not None
        signed = build_desired(
            session, gateway, now=utcnow(), horizon=HORIZON, signing_key=cloud.ctx.keys.signing_key
        )
    return decode_desired(
        signed.document,
        site.agent.verify_keys,
        gateway_id=site.gateway_id,
        applied_version=0,
        applied_digest=None,
    ).state


def _report(cloud: Cloud, site: Site, **fields: Any) -> None:
    Ingest(cloud.ctx.db).handle(
        topic(site.gateway_id, Channel.REPORTED), reported(site.gateway_id, **fields)
    )


def _presence(cloud: Cloud, site: Site, value: bytes) -> None:
    Ingest(cloud.ctx.db).handle(topic(site.gateway_id, Channel.PRESENCE), value)


@pytest.mark.parametrize(
    ("timezone", "check_in", "check_out", "starts_at", "ends_at"),
    [
        # Over both 2025 changes: check-in in CET (+1), check-out in CET again after a summer.
        (
            "Europe/Madrid",
            "2025-03-20",
            "2025-11-05",
            "2025-03-20T12:30:00Z",
            "2025-11-05T10:45:00Z",
        ),
        # Check-in in summer time, check-out after the autumn change; New York's dates differ.
        (
            "America/New_York",
            "2025-03-01",
            "2025-11-10",
            "2025-03-01T18:30:00Z",
            "2025-11-10T16:45:00Z",
        ),
        (
            "America/New_York",
            "2025-06-01",
            "2025-11-03",
            "2025-06-01T17:30:00Z",
            "2025-11-03T16:45:00Z",
        ),
    ],
)
async def test_a_stay_over_both_dst_changes_keeps_local_times(
    alice: Host, timezone: str, check_in: str, check_out: str, starts_at: str, ends_at: str
) -> None:
    prop = await alice.new_property(
        timezone=timezone, earlyCheckInBufferMinutes=90, lateCheckOutBufferMinutes=45
    )
    booking = await alice.new_booking(prop["id"], **{"from": check_in, "to": check_out})
    [code] = booking["accessCodes"]
    assert (code["startsAt"], code["endsAt"]) == (starts_at, ends_at)
    # Moving the dates moves the window, still in local time.
    moved = await alice.patch(f"/bookings/{booking['id']}", {"to": "2025-07-01"})
    summer_end = "2025-07-01T09:45:00Z" if timezone == "Europe/Madrid" else "2025-07-01T15:45:00Z"
    assert moved.json()["accessCodes"][0]["endsAt"] == summer_end


async def test_chosen_pins_must_suit_every_lock_of_the_property(alice: Host) -> None:
    unifi = await new_site(alice, "unifi")
    booking = await alice.new_booking(unifi.id)
    # UniFi readers take 0 and 4-8 digits; the Nuki rules do not apply without a Nuki lock.
    ok = await alice.post(f"/bookings/{booking['id']}/access-codes", {"pin": "1029"})
    assert ok.status_code == 201
    too_long = await alice.post(f"/bookings/{booking['id']}/access-codes", {"pin": "102938475"})
    assert too_long.status_code == 422
    assert "UniFi Access readers: 4 to 8 digits" in too_long.json()["detail"]
    # Add a Nuki lock: now 0 and lengths other than 6 break a named rule.
    await alice.new_lock(unifi.id, unifi.gateway_id, "nuki", "ABC123")
    for pin, rule in [
        ("1029", "Nuki Keypad: exactly 6 digits"),
        ("302918", "Nuki Keypad: no 0"),
        ("129384", "Nuki Keypad: must not start with 12"),
        ("777777", "not one repeated digit or a straight run"),
        ("345678", "straight run"),
    ]:
        refused = await alice.post(f"/bookings/{booking['id']}/access-codes", {"pin": pin})
        assert refused.status_code == 422, pin
        error = refused.json()["errors"][0]
        assert error["field"] == "pin"
        assert rule in error["message"], (pin, error)
    not_digits = await alice.post(f"/bookings/{booking['id']}/access-codes", {"pin": "12ab56"})
    assert not_digits.status_code == 422
    assert "a PIN is 4 to 12 digits" in not_digits.json()["detail"]


async def test_pins_are_unique_against_permanent_and_crew_codes(alice: Host) -> None:
    prop = await alice.new_property()
    pid = prop["id"]
    permanent = (await alice.post(f"/properties/{pid}/access-codes", {"pin": "583947"})).json()
    assert permanent["pin"] == "583947"
    booking = await alice.new_booking(pid, **{"from": "2031-01-01", "to": "2031-01-03"})
    clash = await alice.post(f"/bookings/{booking['id']}/access-codes", {"pin": "583947"})
    assert clash.status_code == 422
    assert "unique at the property" in clash.json()["detail"]
    task = await alice.new_task(pid, startsAt="2031-01-02T10:00", endsAt="2031-01-02T12:00")
    guest_pin = booking["accessCodes"][0]["pin"]
    assert task["accessCode"]["pin"] not in {guest_pin, "583947"}
    # Once revoked, a PIN is free again.
    await alice.delete(f"/access-codes/{permanent['id']}")
    reused = await alice.post(f"/bookings/{booking['id']}/access-codes", {"pin": "583947"})
    assert reused.status_code == 201


async def test_crew_code_follows_its_task(alice: Host, carol: Host, erin: Host) -> None:
    prop = await alice.new_property(timezone="America/New_York")
    pid = prop["id"]
    await alice.invite(pid, carol, "crew")
    await alice.invite(pid, erin, "crew")
    task = await alice.new_task(
        pid,
        assignedTo=await carol.user_id(),
        startsAt="2030-03-10T01:30",
        endsAt="2030-03-10T04:00",
    )
    code = task["accessCode"]
    # Local times at the property, across New York's spring change (02:00 EST -> 03:00 EDT).
    assert (task["startsAt"], task["endsAt"]) == ("2030-03-10T06:30:00Z", "2030-03-10T08:00:00Z")
    assert (code["kind"], code["startsAt"], code["endsAt"]) == (
        "crew",
        task["startsAt"],
        task["endsAt"],
    )
    moved = (await alice.patch(f"/tasks/{task['id']}", {"endsAt": "2030-03-10T05:00-04:00"})).json()
    assert moved["accessCode"]["id"] == code["id"]
    assert moved["accessCode"]["endsAt"] == "2030-03-10T09:00:00Z"
    # A new assignee gets a new PIN: the old one knows the first.
    reassigned = (
        await alice.patch(f"/tasks/{task['id']}", {"assignedTo": await erin.user_id()})
    ).json()
    assert reassigned["accessCode"]["id"] != code["id"]
    assert (await alice.get(f"/access-codes/{code['id']}")).json()["status"] == "revoked"
    no_access = (await alice.patch(f"/tasks/{task['id']}", {"needsAccess": False})).json()
    assert no_access["accessCode"] is None
    assert (await alice.delete(f"/tasks/{task['id']}")).status_code == 204
    assert (await alice.get(f"/tasks/{task['id']}")).status_code == 404


async def test_what_reaches_the_gateway(alice: Host, cloud: Cloud, erin: Host) -> None:
    site = await new_site(alice, backupCodeCount=2, guestRegistrationRequired=True)
    await alice.invite(site.id, erin, "manager")
    gated = await alice.new_booking(site.id, **_stay(0, 2))
    later = await alice.new_booking(site.id, **_stay(20, 2))
    task = await alice.new_task(
        site.id,
        startsAt=f"{date.today() + timedelta(days=1)}T10:00",
        endsAt=f"{date.today() + timedelta(days=1)}T12:00",
    )
    permanent = (await erin.post(f"/properties/{site.id}/access-codes", {})).json()
    day = _stay(1, 1)["from"]
    done = await alice.new_task(site.id, startsAt=f"{day}T13:00", endsAt=f"{day}T14:00")
    await alice.post(f"/tasks/{done['id']}/complete")

    state = _desired(cloud, site)
    kinds = sorted((c.kind.value, c.id) for c in state.codes)
    backups = [c for c in state.codes if c.kind.value == "backup"]
    assert len(backups) == 2
    assert ("crew", task["accessCode"]["id"]) in kinds
    assert ("manager", permanent["id"]) in kinds
    sent = {c.id for c in state.codes}
    assert gated["accessCodes"][0]["id"] not in sent  # registration pending
    assert gated["accessCodes"][0]["awaitingRegistration"] is True
    assert later["accessCodes"][0]["id"] not in sent  # beyond the horizon
    assert done["accessCode"]["id"] not in sent  # completed task: code revoked
    crew = next(c for c in state.codes if c.id == task["accessCode"]["id"])
    assert (crew.task_id, crew.label) == (task["id"], "Turnover clean")

    # Registering the (one) expected guest releases the guest code.
    snapshot = (await alice.get(f"/bookings/{gated['id']}/checkin")).json()
    assert (snapshot["codeState"], snapshot["accessCode"]) == ("awaiting_registration", None)
    assert (await alice.post(f"/bookings/{gated['id']}/checkin/guests", GUEST)).status_code == 201
    assert gated["accessCodes"][0]["id"] in {c.id for c in _desired(cloud, site).codes}
    snapshot = (await alice.get(f"/bookings/{gated['id']}/checkin")).json()
    assert snapshot["registrationComplete"] is True
    assert snapshot["codeState"] in ("active", "scheduled")
    assert snapshot["accessCode"]["id"] == gated["accessCodes"][0]["id"]
    assert snapshot["guests"][0]["documentNumber"] == "12345678Z"


async def test_registration_needs_every_expected_guest(alice: Host) -> None:
    prop = await alice.new_property(guestRegistrationRequired=True)
    booking = await alice.new_booking(prop["id"], guestCount=2)
    path = f"/bookings/{booking['id']}/checkin/guests"
    assert (await alice.post(path, GUEST)).status_code == 201
    snapshot = (await alice.get(f"/bookings/{booking['id']}/checkin")).json()
    assert (snapshot["guestsRegistered"], snapshot["registrationComplete"]) == (1, False)
    assert (await alice.post(path, {**GUEST, "firstName": "Luis"})).status_code == 201
    assert (await alice.get(f"/bookings/{booking['id']}/checkin")).json()["registrationComplete"]
    extra = await alice.post(path, {**GUEST, "firstName": "Eva"})
    assert extra.status_code == 409
    assert "raise guestCount" in extra.json()["detail"]
    bad = await alice.post(path, {**GUEST, "nationality": "Spain", "birthDate": "2999-01-01"})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"nationality", "birthDate"}


async def test_per_lock_lifecycle_comes_from_reported_state(alice: Host, cloud: Cloud) -> None:
    site = await new_site(alice, backupCodeCount=0)
    second = await alice.new_lock(site.id, site.gateway_id, "nuki", "BEEF01")
    booking = await alice.new_booking(site.id, **_stay(0, 2))
    code_id = booking["accessCodes"][0]["id"]
    lock_id = site.lock["id"]
    _presence(cloud, site, b"online")
    statuses = tuple(LockStatus(lock_id=i, reachable=True) for i in (lock_id, second["id"]))

    async def fetch() -> dict[str, Any]:
        response = await alice.get(f"/access-codes/{code_id}")
        result: dict[str, Any] = response.json()
        return result

    shown = await fetch()
    assert {s["lockId"]: s["state"] for s in shown["locks"]} == {
        lock_id: "unset",
        second["id"]: "unset",
    }
    for state in ("setting", "set"):
        _report(cloud, site, locks=statuses, codes=(delivery(code_id, lock_id, state),))
        shown = await fetch()
        assert {s["lockId"]: s["state"] for s in shown["locks"]} == {
            lock_id: state,
            second["id"]: "unset",
        }
    _report(
        cloud,
        site,
        locks=statuses,
        codes=(
            delivery(code_id, lock_id, "removing"),
            delivery(code_id, second["id"], "failed", "no space on device"),
        ),
    )
    by_lock = {s["lockId"]: s for s in (await fetch())["locks"]}
    assert by_lock[lock_id]["state"] == "removing"
    assert (by_lock[second["id"]]["state"], by_lock[second["id"]]["error"]) == (
        "failed",
        "no space on device",
    )
    # The gateway goes offline: the last report stays, marked stale, state unknown.
    _presence(cloud, site, b"offline")
    by_lock = {s["lockId"]: s for s in (await fetch())["locks"]}
    assert (by_lock[lock_id]["state"], by_lock[lock_id]["reportedState"]) == ("unknown", "removing")
    assert by_lock[lock_id]["stale"] is True
    # A code the gateway no longer reports is unset again.
    _presence(cloud, site, b"online")
    _report(cloud, site, locks=statuses, codes=())
    assert {s["state"] for s in (await fetch())["locks"]} == {"unset"}


async def test_a_guest_code_that_fails_gets_a_backup_code(alice: Host, cloud: Cloud) -> None:
    site = await new_site(alice, backupCodeCount=2)
    booking = await alice.new_booking(site.id, **_stay(0, 3))
    guest_code = booking["accessCodes"][0]
    pool = (
        await alice.get(f"/properties/{site.id}/access-codes", params={"kind": "backup"})
    ).json()["accessCodes"]
    assert len(pool) == 2
    assert all(c["bookingId"] is None and c["endsAt"] is None for c in pool)
    _presence(cloud, site, b"online")
    lock_id = site.lock["id"]
    on_locks = tuple(delivery(c["id"], lock_id, "set") for c in pool)
    reachable = (LockStatus(lock_id=lock_id, reachable=True),)
    setting = delivery(guest_code["id"], lock_id, "setting")
    _report(cloud, site, locks=reachable, codes=(*on_locks, setting))
    assert (await alice.get(f"/bookings/{booking['id']}")).json()["accessCodes"] == [
        (await alice.get(f"/access-codes/{guest_code['id']}")).json()
    ]
    failed = (*on_locks, delivery(guest_code["id"], lock_id, "failed", "duplicate code on device"))
    _report(cloud, site, locks=reachable, codes=failed)
    _report(cloud, site, locks=reachable, codes=failed)  # the same report again: nothing new

    codes = (await alice.get(f"/bookings/{booking['id']}")).json()["accessCodes"]
    backup = next(c for c in codes if c["kind"] == "backup")
    assert backup["id"] in {c["id"] for c in pool}
    assert backup["handedOutAt"] is not None
    assert backup["endsAt"] == guest_code["endsAt"]
    assert backup["locks"][0]["state"] == "set"
    snapshot = (await alice.get(f"/bookings/{booking['id']}/checkin")).json()
    assert snapshot["accessCode"]["id"] == backup["id"]
    # The pool is topped up again, and the feed tells the host what happened.
    pool_now = (
        await alice.get(
            f"/properties/{site.id}/access-codes", params={"kind": "backup", "status": "active"}
        )
    ).json()["accessCodes"]
    assert len([c for c in pool_now if c["bookingId"] is None]) == 2
    feed = (await alice.get("/timeline/activity", params={"size": 100})).json()["activities"]
    types = [a["type"] for a in feed if a["propertyId"] == site.id]
    assert types.count("code_failed") == 1
    assert types.count("backup_code_handed_out") == 1
    # Handing out again (a host asking) keeps the same backup code; cancelling revokes it.
    again = await alice.post(f"/bookings/{booking['id']}/access-codes", {"kind": "backup"})
    assert again.json()["id"] == backup["id"]
    await alice.patch(f"/bookings/{booking['id']}", {"status": "cancelled"})
    assert (await alice.get(f"/access-codes/{backup['id']}")).json()["status"] == "revoked"


async def test_backup_pool_follows_the_setting(alice: Host) -> None:
    site = await new_site(alice, backupCodeCount=1)
    params = {"kind": "backup", "status": "active"}

    async def pool() -> int:
        listed = await alice.get(f"/properties/{site.id}/access-codes", params=params)
        return int(listed.json()["total"])

    assert await pool() == 1
    await alice.put(f"/properties/{site.id}", {"backupCodeCount": 3})
    assert await pool() == 3
    await alice.put(f"/properties/{site.id}", {"backupCodeCount": 0})
    assert await pool() == 0
    booking = await alice.new_booking(site.id)
    empty = await alice.post(f"/bookings/{booking['id']}/access-codes", {"kind": "backup"})
    assert empty.status_code == 409
    assert "backupCodeCount" in empty.json()["detail"]
    too_many = await alice.put(f"/properties/{site.id}", {"backupCodeCount": 6})
    assert too_many.status_code == 422
