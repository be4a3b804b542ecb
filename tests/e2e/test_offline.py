"""The property loses its internet: the door keeps working, and nothing is lost or doubled.

Every part is its own process. While the broker is down the agent decides alone (valid code
opens, wrong code is refused) and queues each decision; when the broker returns, the cloud's
activity feed holds every decision exactly once, in the order they happened.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from simulator.keypad import KeypadControl
from simulator.stack import Api, Stack, provision_property
from tests.e2e.support import until

pytestmark = pytest.mark.e2e
ZONE = "Europe/Madrid"


def test_an_outage_changes_nothing_at_the_door_and_loses_nothing(stack: Stack) -> None:
    stack.init_cloud()
    broker = stack.start_broker()
    stack.start_cloud(broker)
    api = Api(stack.api_url)
    api.register_or_login("host@example.com", "correct horse battery", "Host")
    ids = provision_property(api, "Casa Rural", ZONE)
    api.call("PUT", f"/properties/{ids['property_id']}", {"checkInTime": "00:00"})
    stack.start_keypad()
    stack.enroll_agent(ids["enrollment_token"])
    stack.start_agent()
    gateway = ids["gateway_id"]
    before = api.call("GET", f"/gateways/{gateway}")["desiredVersion"]
    today = datetime.now(ZoneInfo(ZONE)).date()
    booking = api.call(
        "POST",
        f"/properties/{ids['property_id']}/bookings",
        {"guestName": "Ada Lovelace", "from": str(today), "to": str(today + timedelta(days=2))},
        201,
    )
    pin = booking["accessCodes"][0]["pin"]
    until(
        lambda: api.call("GET", f"/gateways/{gateway}"),
        lambda g: (g["appliedVersion"] or 0) > before,
    )

    broker.stop()  # the line to the internet is cut
    stack.services.remove(broker)
    keypad = KeypadControl(str(stack.keypad_control))
    wrong = "999999" if pin != "999999" else "888888"
    typed = [pin, wrong, pin]
    results = [asyncio.run(keypad.type_code(code, wait=5)) for code in typed]
    assert [r["result"] for r in results] == ["granted", "denied", "granted"]
    assert [r["relay_pulsed"] for r in results] == [True, False, True]

    stack.start_broker()  # the line comes back

    def door_events() -> list[dict[str, Any]]:
        feed = api.call("GET", "/timeline/activity?size=100")["activities"]
        return [a for a in feed if a["type"] in ("access_granted", "access_denied")]

    events = until(door_events, lambda found: len(found) >= 3, 60)
    time.sleep(1.0)  # anything sent twice would have arrived by now
    events = door_events()
    assert len(events) == 3
    assert len({e["id"] for e in events}) == 3
    in_order = sorted(events, key=lambda e: e["occurredAt"])
    assert [e["type"] for e in in_order] == ["access_granted", "access_denied", "access_granted"]
    assert all(e["bookingId"] == booking["id"] for e in in_order if e["type"] == "access_granted")
    api.close()
