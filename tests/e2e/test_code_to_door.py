"""End to end, every part its own process: booking → code at the agent → door opens → activity."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from simulator.keypad import KeypadControl
from simulator.stack import Api, Stack, provision_property
from tests.e2e.support import until

pytestmark = pytest.mark.e2e

ZONE = "Europe/Madrid"


def _applied_after(api: Api, gateway_id: str, version: int) -> None:
    """Wait until the agent reports a desired version newer than `version`."""
    until(
        lambda: api.call("GET", f"/gateways/{gateway_id}"),
        lambda g: (g["appliedVersion"] or 0) > version,
    )


def _desired_version(api: Api, gateway_id: str) -> int:
    return int(api.call("GET", f"/gateways/{gateway_id}")["desiredVersion"])


def test_a_booking_code_opens_the_door_and_the_host_sees_it(stack: Stack) -> None:
    stack.init_cloud()
    broker = stack.start_broker()
    stack.start_cloud(broker)
    api = Api(stack.api_url)
    api.register_or_login("host@example.com", "correct horse battery", "Host")
    ids = provision_property(api, "Piso Centro", ZONE)
    api.call("PUT", f"/properties/{ids['property_id']}", {"checkInTime": "00:00"})
    stack.start_keypad()
    stack.enroll_agent(ids["enrollment_token"])
    stack.start_agent()

    _applied_after(api, ids["gateway_id"], 0)
    before = _desired_version(api, ids["gateway_id"])
    today = datetime.now(ZoneInfo(ZONE)).date()
    booking = api.call(
        "POST",
        f"/properties/{ids['property_id']}/bookings",
        {"guestName": "Ada Lovelace", "from": str(today), "to": str(today + timedelta(days=2))},
        201,
    )
    pin = booking["accessCodes"][0]["pin"]
    _applied_after(api, ids["gateway_id"], before)

    keypad = KeypadControl(str(stack.keypad_control))
    granted = asyncio.run(keypad.type_code(pin, wait=5))
    assert granted["result"] == "granted"
    assert granted["relay_pulsed"]
    assert granted["pulse_ms"] == 3000

    wrong = "999999" if pin != "999999" else "888888"
    denied = asyncio.run(keypad.type_code(wrong, wait=2))
    assert denied["result"] == "denied"
    assert not denied["relay_pulsed"]

    feed = until(
        lambda: api.call("GET", "/timeline/activity?size=100")["activities"],
        lambda acts: {"access_granted", "access_denied"} <= {a["type"] for a in acts},
    )
    entry = next(a for a in feed if a["type"] == "access_granted")
    assert entry["bookingId"] == booking["id"]
    assert entry["guestName"] == "Ada Lovelace"
    assert entry["lockId"] == ids["lock_id"]
    assert entry["method"] == "gateway_keypad"
    denial = next(a for a in feed if a["type"] == "access_denied")
    assert denial["result"] == "denied"
    assert denial["details"]["reason"] == "unknown_code"
    assert denial["bookingId"] is None

    # Revoking the code takes it off the door.
    code_id = booking["accessCodes"][0]["id"]
    before = _desired_version(api, ids["gateway_id"])
    api.call("DELETE", f"/access-codes/{code_id}", expect=204)
    _applied_after(api, ids["gateway_id"], before)
    again = asyncio.run(keypad.type_code(pin, wait=2))
    assert again["result"] == "denied"
    assert not again["relay_pulsed"]
    api.close()
