"""What the pages show, and to whom: attention first, live lock status, codes per lock in local
time, roles as the API has them, gateways and their enrollment, labels on every field."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx

from sync_protocol.models import ClockStatus
from tests.cloud_api.conftest import Cloud
from tests.cloud_api.helpers import FakeAgent, delivery
from tests.dashboard.support import (
    Browser,
    People,
    lock_status,
    new_site,
    presence,
    report,
    store_event,
    unlabelled_fields,
)


def _attention_order(page: str) -> list[str]:
    return re.findall(r'data-attention="([a-z_]+)"', page)


async def test_the_overview_puts_what_needs_attention_first(people: People, cloud: Cloud) -> None:
    alice = await people.new("alice")
    azul = await new_site(alice.api, "Casa Azul")
    sol = await new_site(alice.api, "Bajo Sol")  # enrolled, never online: offline
    booking = await alice.api.new_booking(azul.property_id, guestName="Lena Vogel")
    code_id = booking["accessCodes"][0]["id"]
    presence(cloud, azul.gateway_id, online=True)
    report(
        cloud,
        azul.gateway_id,
        clock=ClockStatus(synchronized=False, trusted=False),
        locks=(lock_status(azul.lock_id, battery_percent=7, battery_critical=True),),
        codes=(delivery(code_id, azul.lock_id, "failed", "keypad memory full"),),
    )

    page = await alice.browser.page("/")
    assert _attention_order(page) == [
        "gateway_offline",
        "code_failed",
        "battery_critical",
        "clock_untrusted",
    ]
    assert "Gateway Hall Pi is offline" in page
    assert "Lena Vogel: guest code could not be set on Front door" in page
    assert "keypad memory full" in page
    assert "Battery critical on Front door" in page
    azul_card = page[page.index(f'data-property-id="{azul.property_id}"') :]
    azul_row = azul_card[azul_card.index(f'data-lock-id="{azul.lock_id}"') :]
    assert re.search(r"<td>Locked</td>\s*<td>7 %\s*<span class=\"badge bad\">critical", azul_row)
    assert "<td>Closed</td>" in azul_row
    assert sol.property_id in page
    assert 'data-stream="/app/stream?since=' in page


async def test_an_unreachable_lock_needs_attention(people: People, cloud: Cloud) -> None:
    alice = await people.new("alice")
    site = await new_site(alice.api)
    presence(cloud, site.gateway_id, online=True)
    report(cloud, site.gateway_id, locks=(lock_status(site.lock_id, reachable=False),))
    page = await alice.browser.page(f"/app/properties/{site.property_id}")
    assert _attention_order(page) == ["lock_unreachable"]
    assert "Front door cannot be reached" in page
    assert "out of reach" in page


async def test_codes_show_their_window_and_state_on_each_lock(people: People, cloud: Cloud) -> None:
    alice = await people.new("alice")
    site = await new_site(alice.api)
    booking = await alice.api.new_booking(site.property_id, guestName="Lena Vogel", guestCount=3)
    code = booking["accessCodes"][0]
    task = await alice.api.new_task(site.property_id, title="Deep clean")
    path = f"/app/properties/{site.property_id}"

    page = await alice.browser.page(path)
    assert "Lena Vogel" in page
    assert "3 guests" in page
    # 15:00 and 11:00 at the property (Europe/Madrid), whatever the server's zone.
    assert "Checks in Mon 1 Jul 15:00, out Fri 5 Jul 11:00" in page
    assert "Valid Mon 1 Jul 15:00 to Fri 5 Jul 11:00" in page
    assert f"data-pin>{code['pin']}<" in page
    assert 'data-state="unset"' in page
    assert "Deep clean" in page
    assert f"data-pin>{task['accessCode']['pin']}<" in page
    assert "Fri 5 Jul 11:00 to Fri 5 Jul 14:00" in page

    presence(cloud, site.gateway_id, online=True)
    locks = (lock_status(site.lock_id),)
    report(
        cloud, site.gateway_id, locks=locks, codes=(delivery(code["id"], site.lock_id, "setting"),)
    )
    assert 'data-state="setting"' in await alice.browser.page(path)
    failed = delivery(code["id"], site.lock_id, "failed", "bad PIN")
    report(cloud, site.gateway_id, locks=locks, codes=(failed,))
    page = await alice.browser.page(path)
    assert 'data-state="failed"' in page
    assert '<span class="reason">bad PIN</span>' in page
    report(cloud, site.gateway_id, locks=locks, codes=(delivery(code["id"], site.lock_id, "set"),))
    page = await alice.browser.page(path)
    booking_part = page[page.index(f'data-code-id="{code["id"]}"') :]
    assert booking_part.index('data-state="set"') < booking_part.index("</ul>")

    # The gateway goes offline: what it said last may be out of date.
    presence(cloud, site.gateway_id, online=False)
    page = await alice.browser.page(path)
    assert 'data-state="unknown"' in page
    assert "(last reported set)" in page


async def test_each_role_sees_what_the_api_lets_it(people: People, cloud: Cloud) -> None:
    alice = await people.new("alice")
    carol = await people.new("carol")  # crew
    dave = await people.new("dave")  # contractor
    bob = await people.new("bob")  # no member
    site = await new_site(alice.api)
    await alice.api.invite(site.property_id, carol.api, "crew")
    await alice.api.invite(site.property_id, dave.api, "contractor")
    booking = await alice.api.new_booking(site.property_id, guestName="Lena Vogel")
    dave_id = await dave.api.user_id()
    task = await alice.api.new_task(site.property_id, title="Fix the tap", assignedTo=dave_id)
    other = await alice.api.new_task(site.property_id, title="Window cleaning")
    path = f"/app/properties/{site.property_id}"

    crew = await carol.browser.page(path)
    assert f"data-pin>{booking['accessCodes'][0]['pin']}<" in crew  # crew hand out guest codes
    assert "Unlock Front door" in crew  # crew operate the locks
    assert "Create booking" not in crew
    assert "Revoke code" not in crew
    assert "Cancel booking" not in crew
    assert task["accessCode"]["pin"] not in crew  # another's crew code
    assert "PIN hidden from your role" in crew
    assert unlabelled_fields(crew) == []
    refused = await carol.browser.post(
        f"/app/properties/{site.property_id}/bookings",
        {"guestName": "Eve", "from": "2030-08-01", "to": "2030-08-02"},
    )
    assert "Your role does not allow this." in await carol.browser.follow(refused)

    contractor = await dave.browser.page(path)
    assert "Your tasks" in contractor
    assert "Fix the tap" in contractor
    assert f"data-pin>{task['accessCode']['pin']}<" in contractor  # their own code
    assert "Window cleaning" not in contractor
    assert other["accessCode"]["pin"] not in contractor
    # Their code's state on the doors, as GET /tasks tells them; nothing else of the property.
    assert "Front door:" in contractor
    for hidden in ("Lena Vogel", 'id="locks"', "Unlock Front door", "Activity", "data-stream"):
        assert hidden not in contractor
    overview = await dave.browser.page("/")
    assert "Open it to see the tasks assigned to you." in overview
    assert "Front door" not in overview
    stream = await dave.browser.get(f"{path}/stream")
    assert stream.status_code == 404

    stranger = await bob.browser.get(path)
    assert stranger.status_code == 404
    assert "We could not find this page" in stranger.text
    assert site.property_id not in (await bob.browser.page("/"))


async def test_gateways_show_their_health_and_enroll_with_the_exact_command(
    people: People, cloud: Cloud, api: httpx.AsyncClient
) -> None:
    alice = await people.new("alice")
    carol = await people.new("carol")
    site = await new_site(alice.api)
    await alice.api.invite(site.property_id, carol.api, "crew")
    presence(cloud, site.gateway_id, online=True)
    report(
        cloud,
        site.gateway_id,
        agent_version="1.4.2",
        uptime_s=3 * 3600 + 5 * 60,
        outbox_depth=12,
        clock=ClockStatus(synchronized=False, trusted=False),
    )
    page = await alice.browser.page("/app/gateways")
    row = page[page.index(f'data-gateway-id="{site.gateway_id}"') :]
    row = row[: row.index("</tr>")]
    for shown in ("Hall Pi", "online", "1.4.2", "3 h 5 min", "not confirmed", "12 entries to send"):
        assert shown in row, shown
    assert unlabelled_fields(page) == []

    created = await alice.browser.post(
        "/app/gateways", {"property": site.property_id, "name": "Back door Pi"}
    )
    assert created.status_code == 200
    assert created.headers["cache-control"] == "no-store"
    command = re.search(r'<code id="enroll-command">([^<]+)</code>', created.text)
    assert command is not None
    words = command.group(1).split()
    assert words[:4] == ["kasify-agent", "enroll", "--cloud", "https://cloud.test.example"]
    assert words[4] == "--token"
    token = words[5]
    gateway_id = token.split(".")[0]
    agent = FakeAgent.for_gateway(gateway_id)
    enrolled = await api.post("/gateways/enroll", json=agent.enroll_body(token))
    assert enrolled.status_code == 201, enrolled.text

    await alice.browser.page("/app/gateways")
    unnamed = await alice.browser.post("/app/gateways", {"property": site.property_id, "name": ""})
    assert unnamed.status_code == 422
    assert "Give the gateway a name" in unnamed.text

    crew = await carol.browser.page("/app/gateways")
    assert "Only owners and managers of a property add gateways to it." in crew
    assert "Hall Pi" in crew
    refused = await carol.browser.post(
        "/app/gateways", {"property": site.property_id, "name": "Sneaky Pi"}
    )
    assert refused.status_code == 403
    assert "Your role does not allow this." in refused.text


async def test_every_field_has_a_label(people: People, browser: Browser) -> None:
    alice = await people.new("alice")
    site = await new_site(alice.api)
    await alice.api.new_booking(site.property_id)
    await alice.api.new_task(site.property_id)
    for path in ("/", f"/app/properties/{site.property_id}", "/app/gateways"):
        assert unlabelled_fields(await alice.browser.page(path)) == [], path
    assert unlabelled_fields(await browser.page("/login")) == []


async def test_pages_are_never_framed_cached_or_given_foreign_scripts(people: People) -> None:
    alice = await people.new("alice")
    response = await alice.browser.get("/")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


async def test_all_activity_pages_back_through_every_entry_once(
    people: People, cloud: Cloud
) -> None:
    alice = await people.new("alice")
    site = await new_site(alice.api, "Casa Larga")
    other = await new_site(alice.api, "Casa Corta")
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    # 120 entries, in pairs at the same instant: the order must still be total.
    stored = {
        store_event(cloud, site.gateway_id, occurred_at=start + timedelta(minutes=i // 2))
        for i in range(120)
    }
    elsewhere = store_event(cloud, other.gateway_id, occurred_at=start)

    page = await alice.browser.page(f"/app/properties/{site.property_id}")
    assert f'href="/app/properties/{site.property_id}/activity"' in page
    seen: list[str] = []
    path = f"/app/properties/{site.property_id}/activity"
    pages = 0
    while path:
        html = await alice.browser.page(path)
        pages += 1
        seen += re.findall(r'<li id="ev-([0-9a-f-]{36})"', html)
        found = re.search(r'href="([^"]+)" rel="next"', html)
        path = found.group(1).replace("&amp;", "&") if found else ""
    assert pages == 3  # 50 + 50 + 20
    assert len(seen) == len(set(seen)) == 120
    assert set(seen) == stored
    assert elsewhere not in seen
    assert 'rel="next"' not in html  # the last page offers no further page...
    assert ">Latest entries</a>" in html  # ...but the way back to the newest

    # Paging from an entry of another property, or someone else's property, finds nothing.
    foreign = await alice.browser.get(
        f"/app/properties/{site.property_id}/activity?before={elsewhere}"
    )
    assert foreign.status_code == 404
    bob = await people.new("bob")
    refused = await bob.browser.get(f"/app/properties/{site.property_id}/activity")
    assert refused.status_code == 404
