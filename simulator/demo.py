"""`kasify-sim demo`: a whole simulated property on this machine, set up as a person would.

Broker, cloud (SQLite), a virtual BLE radio with an emulated Nuki lock, an emulated UniFi Access
controller with one door, an emulated door keypad, and one agent: enrolled with its one-time
token, the Nuki paired with `kasify-agent nuki pair`, the controller trusted with
`kasify-agent unifi trust`. The first run creates the host, the property, its three locks and a
booking checking in today; later runs reuse all of it (`--reset` starts afresh).
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from simulator.broker import free_port, listening
from simulator.stack import Api, Stack, StackError, provision_property

DEMO_EMAIL = "host@demo.kasify.local"
DEMO_PASSWORD = "kasify-demo-2026"  # noqa: S105 - the published login of the local demo
DEMO_PROPERTY = "Casa Demo"
DEMO_TIMEZONE = "Europe/Madrid"
DEMO_GUEST = "Ada Lovelace"
NUKI_ID = "2A3B4C5D"
NUKI_PIN = 1234  # the emulated lock's security PIN, given when pairing
APPLY_TIMEOUT_S = 60.0  # the first Nuki connection and 2 keypad codes take a few seconds
WATCH_INTERVAL_S = 1.0


def _today() -> datetime:
    return datetime.now(ZoneInfo(DEMO_TIMEZONE))


def _first_run(stack: Stack, api: Api) -> dict[str, Any]:
    ids = provision_property(api, DEMO_PROPERTY, DEMO_TIMEZONE)
    del ids["lock_id"]
    # Check-in at midnight, so the guest arriving today can use the code right away.
    api.call("PUT", f"/properties/{ids['property_id']}", {"checkInTime": "00:00"})
    door = stack.unifi["doors"][0]
    for kind, ref, name in (
        ("nuki", NUKI_ID, "Apartment door"),
        ("unifi", door["id"], "Building entrance"),
    ):
        api.call(
            "POST",
            f"/properties/{ids['property_id']}/smartlocks",
            {"kind": kind, "deviceRef": ref, "name": name, "gatewayId": ids["gateway_id"]},
            201,
        )
    stack.enroll_agent(ids.pop("enrollment_token"))
    stack.pair_nuki(NUKI_ID, NUKI_PIN)
    today = _today().date()
    booking = api.call(
        "POST",
        f"/properties/{ids['property_id']}/bookings",
        {"guestName": DEMO_GUEST, "from": str(today), "to": str(today + timedelta(days=3))},
        201,
    )
    return {**ids, "booking_id": booking["id"]}


def _wait_codes_set(api: Api, state: dict[str, Any]) -> list[dict[str, Any]]:
    """Until the guest code is set on every lock (or the time is up): its per-lock states."""
    deadline = time.monotonic() + APPLY_TIMEOUT_S
    locks: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        codes = api.call("GET", f"/bookings/{state['booking_id']}/access-codes")["accessCodes"]
        active = [c for c in codes if c["status"] == "active"]
        locks = active[0]["locks"] if active else []
        if locks and all(lock["state"] == "set" for lock in locks):
            break
        time.sleep(0.5)
    return locks


def _banner(stack: Stack, api: Api, state: dict[str, Any], locks: list[dict[str, Any]]) -> str:
    booking = api.call("GET", f"/bookings/{state['booking_id']}")
    active = [c for c in booking["accessCodes"] if c["status"] == "active"]
    pin = active[0]["pin"] if active else "(revoked)"
    zone = ZoneInfo(DEMO_TIMEZONE)

    def local(ts: str | None) -> str:
        return datetime.fromisoformat(ts).astimezone(zone).strftime("%a %d %b %H:%M") if ts else "-"

    window = f"{local(active[0]['startsAt'])} → {local(active[0]['endsAt'])}" if active else ""
    on_locks = ", ".join(f"{lock['lockName']}: {lock['state']}" for lock in locks) or "-"
    sim = "kasify-sim" if shutil.which("kasify-sim") else ".venv/bin/kasify-sim"
    today = _today().date()
    return f"""
Kasify Edge demo is running ({stack.root}).

  Dashboard     {stack.api_url}/    log in as {DEMO_EMAIL} / {DEMO_PASSWORD}
  API docs      {stack.api_url}/docs
  Property      {DEMO_PROPERTY} ({DEMO_TIMEZONE}), gateway {state["gateway_id"]}
  Guest code    {DEMO_GUEST}: {pin}   valid {window} ({DEMO_TIMEZONE})
                on the locks: {on_locks}

Type the guest code where a guest would (each prints what the door did):
  at the door keypad (the gateway decides, the strike relay pulses):
    {sim} keypad type {pin} --control {stack.keypad_control} --wait 5
  at the UniFi Access reader of the building entrance (the controller checks its visitor PIN):
    {sim} unifi type-pin 1 {pin} --control {stack.unifi_control}
  at the Nuki Keypad of the apartment door (the lock checks its keypad code):
    {sim} nuki keypad {pin} --control {stack.nuki_control}
A wrong code is refused and shows up as a denial:
    {sim} keypad type 999999 --control {stack.keypad_control} --wait 5

Every entry, denial and lock change appears live on the dashboard's property page. The API:
  TOKEN=$(curl -s {stack.api_url}/auth/login -H 'content-type: application/json' \\
          -d '{{"email":"{DEMO_EMAIL}","password":"{DEMO_PASSWORD}"}}' \\
          | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  curl -s -H "Authorization: Bearer $TOKEN" {stack.api_url}/timeline/activity | python3 -m json.tool
Create another booking (its code reaches the door in well under a second):
  curl -s -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
       {stack.api_url}/properties/{state["property_id"]}/bookings \\
       -d '{{"guestName":"Grace Hopper","from":"{today}","to":"{today + timedelta(days=1)}"}}'

Logs are in {stack.root / "logs"}. Ctrl-C stops everything; `make demo` again reuses this
property and its data, `make demo-reset` starts afresh.
"""


def _ports(state: dict[str, Any] | None, api_port: int, broker_port: int) -> dict[str, Any]:
    if state is not None:
        return dict(state["ports"])
    return {
        "api": api_port,
        "broker": broker_port,
        "unifi": free_port(),
        "radio": [free_port(), free_port()],
    }


def run_demo(root: Path, *, api_port: int, broker_port: int, reset: bool) -> int:
    """Start the stack, provision it on the first run, print the guide, serve until Ctrl-C."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise here
    root = root.resolve()
    if reset and root.exists():
        shutil.rmtree(root)
    state_file = root / "demo.json"
    state: dict[str, Any] | None = None
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if "ports" not in state or not (root / "agent" / "gateway.json").exists():
            state = None  # an older or unfinished demo: start afresh
            shutil.rmtree(root)
    ports = _ports(state, api_port, broker_port)
    for port, what in ((ports["api"], "API"), (ports["broker"], "broker")):
        if listening("127.0.0.1", port):
            print(
                f"kasify-sim demo: port {port} for the {what} is in use (is a demo already "
                "running?). Stop it, or start afresh on other ports with `make demo-reset`."
            )
            return 2

    stack = Stack(root, ports["api"], ports["broker"])
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    api = Api(stack.api_url)
    try:
        print("starting the broker, the cloud and the emulated hardware …", flush=True)
        stack.init_cloud()
        stack.start_cloud(stack.start_broker())
        api.register_or_login(DEMO_EMAIL, DEMO_PASSWORD, "Demo Host")
        stack.start_keypad()
        stack.start_radio(tuple(ports["radio"]))
        stack.start_nuki(NUKI_ID, NUKI_PIN)
        stack.start_unifi(doors=1, port=ports["unifi"])
        if state is None:
            print("first run: property, locks, enrollment, Nuki pairing, UniFi trust …", flush=True)
            root.mkdir(parents=True, exist_ok=True)
            stack.write_agent_config()
            stack.trust_unifi()
            state = {**_first_run(stack, api), "ports": ports}
            state_file.write_text(json.dumps(state, indent=2))
        else:
            stack.write_agent_config()
        stack.start_agent()
        locks = _wait_codes_set(api, state)
        print(_banner(stack, api, state, locks), flush=True)
        while not stop.wait(WATCH_INTERVAL_S):
            dead = [s for s in stack.services if not s.alive()]
            if dead:
                print(f"{dead[0].name} stopped unexpectedly:\n{dead[0].log()}")
                return 1
        print("\nstopping …", flush=True)
        return 0
    except StackError as exc:
        print(f"kasify-sim demo: {exc}")
        return 1
    finally:
        api.close()
        stack.stop()
