"""The dashboard's forms do what the API does, ask before what cannot be undone, and say what to
fix in words."""

from __future__ import annotations

import re
from typing import Any

from tests.cloud_api.conftest import Cloud
from tests.dashboard.support import People, Person, new_site, presence, unlabelled_fields

BOOKING = {
    "guestName": "Ada Lovelace",
    "guestCount": "2",
    "from": "2030-07-01",
    "to": "2030-07-04",
    "guestEmail": "",
    "guestPhone": "+34 600 000 000",
}


async def _bookings(person: Person, property_id: str) -> list[dict[str, Any]]:
    body = (await person.api.get(f"/properties/{property_id}/bookings")).json()
    found: list[dict[str, Any]] = body["bookings"]
    return found


async def test_a_booking_made_with_the_form_has_its_code(people: People) -> None:
    alice = await people.new("alice")
    site = await new_site(alice.api)
    await alice.browser.page(f"/app/properties/{site.property_id}")
    made = await alice.browser.post(f"/app/properties/{site.property_id}/bookings", BOOKING)
    [booking] = await _bookings(alice, site.property_id)
    assert made.headers["location"] == (
        f"/app/properties/{site.property_id}#booking-{booking['id']}"
    )
    assert (booking["guestName"], booking["guestCount"], booking["from"], booking["to"]) == (
        "Ada Lovelace",
        2,
        "2030-07-01",
        "2030-07-04",
    )
    assert booking["guestEmail"] is None
    assert booking["guestPhone"] == "+34 600 000 000"
    [code] = booking["accessCodes"]
    page = await alice.browser.follow(made)
    assert "Booking for Ada Lovelace created. The guest code is on its way to the doors." in page
    assert f"data-pin>{code['pin']}<" in page


async def test_the_booking_form_says_what_to_fix_and_keeps_what_was_typed(
    people: People,
) -> None:
    alice = await people.new("alice")
    site = await new_site(alice.api)
    path = f"/app/properties/{site.property_id}/bookings"
    await alice.browser.page(f"/app/properties/{site.property_id}")

    backwards = await alice.browser.post(path, {**BOOKING, "to": "2030-06-30"})
    assert backwards.status_code == 422
    page = backwards.text
    assert "Check-out must be after check-in: a booking lasts at least one night." in page
    assert 'value="Ada Lovelace"' in page
    assert re.search(r'id="booking-to"[^>]*aria-invalid="true"[^>]*aria-describedby', page)

    nameless = await alice.browser.post(
        path, {**BOOKING, "guestName": " ", "guestCount": "lots", "guestEmail": "ada@"}
    )
    assert nameless.status_code == 422
    for message in (
        "Enter the guest&#39;s name",
        "Enter the number of guests, from 1 to 50.",
        "Guest email must be an email address like ana@example.com.",
    ):
        assert message in nameless.text, message
    assert await _bookings(alice, site.property_id) == []


async def test_dates_codes_and_cancelling(people: People) -> None:
    alice = await people.new("alice")
    site = await new_site(alice.api)
    booking = await alice.api.new_booking(site.property_id, guestName="Lena Vogel")
    first = booking["accessCodes"][0]
    browser = alice.browser
    await browser.page(f"/app/properties/{site.property_id}")

    moved = await browser.post(
        f"/app/bookings/{booking['id']}/dates", {"from": "2030-07-02", "to": "2030-07-06"}
    )
    assert "Dates of Lena Vogel changed." in await browser.follow(moved)
    [now] = await _bookings(alice, site.property_id)
    assert (now["from"], now["to"]) == ("2030-07-02", "2030-07-06")
    assert now["accessCodes"][0]["startsAt"].startswith("2030-07-02T13:00")  # 15:00 in Madrid
    backwards = await browser.post(
        f"/app/bookings/{booking['id']}/dates", {"from": "2030-07-06", "to": "2030-07-02"}
    )
    assert "Check-out must be after check-in" in await browser.follow(backwards)

    # Without the browser's confirmation (no script), the server asks on its own page.
    ask = await browser.post(f"/app/bookings/{booking['id']}/code", {})
    assert ask.status_code == 200
    assert "Issue a new guest code? The current one stops opening the doors." in ask.text
    assert 'name="confirm" value="yes"' in ask.text
    [same] = await _bookings(alice, site.property_id)
    assert same["accessCodes"][0]["id"] == first["id"]
    reissued = await browser.post(f"/app/bookings/{booking['id']}/code", {"confirm": "yes"})
    assert "New guest code issued." in await browser.follow(reissued)
    [now] = await _bookings(alice, site.property_id)
    [second] = now["accessCodes"]
    assert second["id"] != first["id"]

    revoked = await browser.post(f"/app/codes/{second['id']}/revoke", {"confirm": "yes"})
    page = await browser.follow(revoked)
    assert "Code revoked." in page
    assert "No active code." in page
    code = (await alice.api.get(f"/access-codes/{second['id']}")).json()
    assert code["status"] == "revoked"

    cancelled = await browser.post(f"/app/bookings/{booking['id']}/cancel", {"confirm": "yes"})
    page = await browser.follow(cancelled)
    assert "Booking of Lena Vogel cancelled." in page
    assert "No upcoming bookings." in page
    [now] = await _bookings(alice, site.property_id)
    assert now["status"] == "cancelled"
    again = await browser.post(f"/app/bookings/{booking['id']}/code", {"confirm": "yes"})
    assert "This booking is cancelled, so it cannot get a code." in await browser.follow(again)


async def test_remote_actions_ask_first_and_say_what_stands_in_the_way(
    people: People, cloud: Cloud
) -> None:
    alice = await people.new("alice")
    site = await new_site(alice.api)
    path = f"/app/locks/{site.lock_id}/action"
    await alice.browser.page(f"/app/properties/{site.property_id}")

    ask = await alice.browser.post(path, {"action": "unlock"})
    assert ask.status_code == 200
    assert "Unlock Front door now?" in ask.text
    offline = await alice.browser.post(path, {"action": "unlock", "confirm": "yes"})
    assert "The gateway is offline, so the door cannot be operated remotely." in (
        await alice.browser.follow(offline)
    )
    presence(cloud, site.gateway_id, online=True)
    no_broker = await alice.browser.post(path, {"action": "lock", "confirm": "yes"})
    assert "The cloud cannot reach the gateways right now." in (
        await alice.browser.follow(no_broker)
    )
    odd = await alice.browser.post(path, {"action": "explode", "confirm": "yes"})
    assert odd.status_code == 400
    missing = await alice.browser.post("/app/locks/no-such-lock/action", {"action": "unlock"})
    assert missing.status_code == 404


async def test_settings_move_guest_code_windows_and_say_what_to_fix(people: People) -> None:
    alice = await people.new("alice")
    carol = await people.new("carol")  # crew
    bob = await people.new("bob")  # no member
    site = await new_site(alice.api)
    await alice.api.invite(site.property_id, carol.api, "crew")
    booking = await alice.api.new_booking(site.property_id, **{"from": "2030-07-01"})
    assert booking["accessCodes"][0]["startsAt"] == "2030-07-01T13:00:00Z"  # 15:00 in Madrid
    path = f"/app/properties/{site.property_id}/settings"

    assert f'href="{path}"' in await alice.browser.page(f"/app/properties/{site.property_id}")
    form = await alice.browser.page(path)
    assert unlabelled_fields(form) == []
    assert 'value="Europe/Madrid"' in form
    assert 'value="15:00"' in form
    values = {
        "name": "Casa Azul Mar",
        "timezone": "Europe/Madrid",
        "checkInTime": "16:00",
        "checkOutTime": "10:30",
        "earlyCheckInBufferMinutes": "30",
        "lateCheckOutBufferMinutes": "0",
        "backupCodeCount": "2",
    }

    wrong = await alice.browser.post(
        path, {**values, "timezone": "Mars/Base", "lateCheckOutBufferMinutes": "9999"}
    )
    assert wrong.status_code == 422
    assert "Enter a time zone by its IANA name" in wrong.text
    assert "Enter a number of minutes from 0 to 720." in wrong.text
    assert 'value="Mars/Base"' in wrong.text  # what the host typed stays in the form
    prop = (await alice.api.get(f"/properties/{site.property_id}")).json()
    assert (prop["name"], prop["checkInTime"]) == ("Casa Azul", "15:00")  # nothing saved

    saved = await alice.browser.post(path, {**values, "guestRegistrationRequired": "yes"})
    assert saved.status_code == 303
    assert "Settings of Casa Azul Mar saved." in await alice.browser.follow(saved)
    prop = (await alice.api.get(f"/properties/{site.property_id}")).json()
    assert (prop["checkInTime"], prop["checkOutTime"], prop["earlyCheckInBufferMinutes"]) == (
        "16:00",
        "10:30",
        30,
    )
    assert prop["guestRegistrationRequired"] is True
    code = (await alice.api.get(f"/bookings/{booking['id']}")).json()["accessCodes"][0]
    assert (code["startsAt"], code["endsAt"]) == ("2030-07-01T13:30:00Z", "2030-07-05T08:30:00Z")

    # Unticked, the box turns gating off again; other fields stay as they are.
    await alice.browser.page(path)
    await alice.browser.post(path, values)
    prop = (await alice.api.get(f"/properties/{site.property_id}")).json()
    assert prop["guestRegistrationRequired"] is False

    crew = await carol.browser.get(path)
    assert crew.status_code == 403
    assert "Casa Azul Mar" not in (await bob.browser.get(path)).text
    assert (await bob.browser.get(path)).status_code == 404
    assert 'href="' + path not in await carol.browser.page(f"/app/properties/{site.property_id}")


async def test_a_task_scheduled_from_the_dashboard_gets_its_crew_code(people: People) -> None:
    alice = await people.new("alice")
    carol = await people.new("carol")  # crew, who will clean
    site = await new_site(alice.api)
    await alice.api.invite(site.property_id, carol.api, "crew")
    carol_id = await carol.api.user_id()
    path = f"/app/properties/{site.property_id}/tasks"

    assert f'href="{path}/new"' in await alice.browser.page(f"/app/properties/{site.property_id}")
    form = await alice.browser.page(f"{path}/new")
    assert unlabelled_fields(form) == []
    assert f'<option value="{carol_id}">' in form
    values = {
        "title": "Turnover clean",
        "type": "cleaning",
        "startsAt": "2030-07-05T11:00",
        "endsAt": "2030-07-05T14:00",
        "assignedTo": carol_id,
        "notes": "Towels in the hall cupboard",
        "needsAccess": "yes",
    }

    backwards = await alice.browser.post(path, {**values, "endsAt": "2030-07-05T10:00"})
    assert backwards.status_code == 422
    assert "Enter when it ends: after it starts" in backwards.text
    assert "Turnover clean" in backwards.text  # what the host typed stays
    assert (await alice.api.get("/tasks")).json()["tasks"] == []

    made = await alice.browser.post(path, values)
    page = await alice.browser.follow(made)
    assert "Task Turnover clean created. Its crew code is on its way to the doors." in page
    [task] = (await alice.api.get("/tasks")).json()["tasks"]
    assert (task["title"], task["assignedTo"], task["notes"]) == (
        "Turnover clean",
        carol_id,
        "Towels in the hall cupboard",
    )
    # Local time at the property (Madrid, summer): 11:00-14:00 is 09:00-12:00 UTC.
    assert (task["startsAt"], task["endsAt"]) == ("2030-07-05T09:00:00Z", "2030-07-05T12:00:00Z")
    code = task["accessCode"]
    assert (code["startsAt"], code["endsAt"]) == (task["startsAt"], task["endsAt"])
    assert f"data-pin>{code['pin']}<" in await carol.browser.page(
        f"/app/properties/{site.property_id}"
    )  # the cleaner sees the code of their task

    # Crew do not schedule tasks.
    assert (await carol.browser.get(f"{path}/new")).status_code == 403
