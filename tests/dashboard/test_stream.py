"""Live updates: what the watchers send when the database changes under them (as when another
process ingests), and the server-sent-event endpoints around them."""

from __future__ import annotations

import re

import pytest

from cloud_api.dashboard.stream import (
    NO_ACCESS,
    SESSION_ENDED,
    OverviewWatch,
    PropertyWatch,
    StreamEnded,
    StreamSettings,
)
from cloud_api.services.live import PropertyStamp
from tests.cloud_api.conftest import Cloud
from tests.cloud_api.helpers import delivery
from tests.dashboard.support import People, lock_status, new_site, presence, report, store_event

FAST = StreamSettings(poll_s=0.01, overview_poll_s=0.01, lifetime_s=0.2, keepalive_s=0.05)


def _since(page: str) -> str:
    found = re.search(r'data-stream="[^"]*since=([^"]+)"', page)
    assert found is not None, "the page does not stream"
    return found.group(1)


def _events(text: str) -> list[str]:
    return re.findall(r"^event: (\w+)$", text, re.MULTILINE)


@pytest.fixture
def fast_streams(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """Streams that poll often and end quickly (the in-process client reads them whole)."""
    monkeypatch.setattr(cloud.app.state, "dashboard_stream", FAST, raising=False)


async def test_the_property_watch_follows_the_database(people: People, cloud: Cloud) -> None:
    alice = await people.new("alice")
    site = await new_site(alice.api)
    booking = await alice.api.new_booking(site.property_id, guestName="Lena Vogel")
    code = booking["accessCodes"][0]
    presence(cloud, site.gateway_id, online=True)
    page = await alice.browser.page(f"/app/properties/{site.property_id}")
    watch = PropertyWatch(
        cloud.ctx.db,
        alice.browser.session_token,
        site.property_id,
        PropertyStamp.parse(_since(page)),
    )
    assert watch.poll() == ""  # nothing changed since the page was made

    # An entry stored by the ingest (here, or in another process).
    entry_id = store_event(
        cloud, site.gateway_id, lock_id=site.lock_id, code_id=code["id"], result="granted"
    )
    sent = watch.poll()
    assert _events(sent) == ["activity"]
    assert f'id="ev-{entry_id}"' in sent
    assert "Lena Vogel opened Front door" in sent
    assert sent.rstrip().splitlines()[-1] == f"id: {watch.stamp}"
    assert watch.poll() == ""

    # The gateway reports the code set on the lock: the bookings and the locks re-rendered.
    report(
        cloud,
        site.gateway_id,
        locks=(lock_status(site.lock_id, battery_percent=5, battery_critical=True),),
        codes=(delivery(code["id"], site.lock_id, "set"),),
    )
    sent = watch.poll()
    assert _events(sent) == ["attention", "locks", "bookings", "crew"]
    assert 'data-state="set"' in sent
    assert "Battery critical on Front door" in sent
    assert watch.poll() == ""

    # A code revoked through the API: the bookings again, the locks not.
    assert (await alice.api.delete(f"/access-codes/{code['id']}")).status_code == 204
    sent = watch.poll()
    assert _events(sent) == ["attention", "bookings", "crew"]
    assert "No active code." in sent

    # Logging out ends the stream.
    await alice.browser.post("/logout", {})
    with pytest.raises(StreamEnded) as ended:
        watch.poll()
    assert (ended.value.status, ended.value.reason) == (401, SESSION_ENDED)


async def test_a_removed_member_stops_getting_updates(people: People, cloud: Cloud) -> None:
    alice = await people.new("alice")
    carol = await people.new("carol")
    site = await new_site(alice.api)
    await alice.api.invite(site.property_id, carol.api, "crew")
    watch = PropertyWatch(cloud.ctx.db, carol.browser.session_token, site.property_id, None)
    assert _events(watch.poll()) == ["attention", "locks", "bookings", "crew"]
    carol_id = await carol.api.user_id()
    removed = await alice.api.delete(f"/properties/{site.property_id}/members/{carol_id}")
    assert removed.status_code == 204
    with pytest.raises(StreamEnded) as ended:
        watch.poll()
    assert (ended.value.status, ended.value.reason) == (404, NO_ACCESS)


async def test_the_overview_watch_sends_the_page_body_when_it_changes(
    people: People, cloud: Cloud
) -> None:
    alice = await people.new("alice")
    site = await new_site(alice.api)
    page = await alice.browser.page("/")
    watch = OverviewWatch(cloud.ctx.db, alice.browser.session_token, _since(page))
    assert watch.poll() == ""
    presence(cloud, site.gateway_id, online=True)
    sent = watch.poll()
    assert _events(sent) == ["overview"]
    assert '<span class="badge ok">online</span>' in sent
    assert watch.poll() == ""


@pytest.mark.usefixtures("fast_streams")
async def test_the_stream_endpoints(people: People, cloud: Cloud) -> None:
    alice = await people.new("alice")
    bob = await people.new("bob")
    site = await new_site(alice.api)
    path = f"/app/properties/{site.property_id}/stream"

    fresh = await alice.browser.get(path)
    assert fresh.status_code == 200
    assert fresh.headers["content-type"].startswith("text/event-stream")
    assert fresh.headers["cache-control"] == "no-store"
    assert fresh.text.startswith("retry: 1000\n\n")
    # No stamp: everything once, then keep-alive comments.
    assert _events(fresh.text) == ["attention", "locks", "bookings", "crew"]
    assert ": keep-alive" in fresh.text
    last_id = re.findall(r"^id: (\S+)$", fresh.text, re.MULTILINE)[-1]

    # A reconnecting browser sends the last id: only what changed since.
    store_event(cloud, site.gateway_id, type="door_opened", lock_id=site.lock_id)
    again = await alice.browser.get(path, headers={"Last-Event-ID": last_id})
    assert _events(again.text) == ["activity"]
    assert "Front door: door opened" in again.text

    assert (await bob.browser.get(path)).status_code == 404
    await alice.browser.post("/logout", {})
    gone = await alice.browser.get(path)
    assert gone.status_code == 401
    assert gone.text == SESSION_ENDED

    overview = await bob.browser.get("/app/stream")
    assert _events(overview.text) == ["overview"]


def test_stamps_parse_only_what_they_print() -> None:
    stamp = PropertyStamp(12, "0123456789ab", "ba9876543210")
    assert PropertyStamp.parse(str(stamp)) == stamp
    for bad in (None, "", "x.y.z", "1.2", "-1.0123456789ab.ba9876543210", "1.0123.ba9876543210"):
        assert PropertyStamp.parse(bad) is None
