"""A PIN typed at an emulated UniFi Access reader reaches the host's feed with its booking.

Every part is its own process: Mosquitto, the cloud, `kasify-sim unifi serve` (HTTPS + WebSocket
with a self-signed certificate), and the agent, trusted with `kasify-agent unifi trust`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from simulator.stack import Api, Stack, provision_property
from simulator.unifi.control import ControlClient
from tests.e2e.support import until

pytestmark = pytest.mark.e2e
ZONE = "America/New_York"


def test_a_pin_typed_at_a_unifi_reader_shows_up_with_its_booking(stack: Stack) -> None:
    stack.init_cloud()
    stack.start_cloud(stack.start_broker())
    api = Api(stack.api_url)
    api.register_or_login("host@example.com", "correct horse battery", "Host")
    ids = provision_property(api, "Loft SoHo", ZONE)
    api.call("PUT", f"/properties/{ids['property_id']}", {"checkInTime": "00:00"})
    controller = stack.start_unifi(doors=1)
    door = controller["doors"][0]
    lock = api.call(
        "POST",
        f"/properties/{ids['property_id']}/smartlocks",
        {"kind": "unifi", "deviceRef": door["id"], "name": "Lobby", "gatewayId": ids["gateway_id"]},
        201,
    )
    stack.enroll_agent(ids["enrollment_token"], keypad=False)
    assert controller["fingerprint"] in stack.trust_unifi()
    stack.start_agent()

    today = datetime.now(ZoneInfo(ZONE)).date()
    booking = api.call(
        "POST",
        f"/properties/{ids['property_id']}/bookings",
        {"guestName": "Grace Hopper", "from": str(today), "to": str(today + timedelta(days=1))},
        201,
    )
    pin = booking["accessCodes"][0]["pin"]
    control = ControlClient(str(stack.unifi_control))

    def visitors() -> list[dict[str, Any]]:
        return list(asyncio.run(control.request({"cmd": "visitors"}))["visitors"])

    visitor = until(visitors, lambda vs: any(v["pin"] == pin for v in vs))
    assert any("Grace Hopper" in v["name"] for v in visitor)

    reaction = asyncio.run(control.type_pin(door["id"], pin))
    assert reaction["result"] == "granted", reaction

    def entries() -> list[dict[str, Any]]:
        feed = api.call("GET", "/timeline/activity?size=100")["activities"]
        return [a for a in feed if a["type"] == "access_granted" and a["method"] == "unifi_pin"]

    entry = until(entries, lambda found: len(found) == 1, 60)[0]
    assert entry["bookingId"] == booking["id"]
    assert entry["guestName"] == "Grace Hopper"
    assert entry["lockId"] == lock["id"]
    api.close()
