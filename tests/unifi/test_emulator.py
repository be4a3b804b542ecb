"""The emulator's own rules: PINs enforced by window, door and rule; routes; WebSocket denials."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from agent.locks.unifi.trust import TrustRecord
from simulator.unifi import Controller, UnifiEmulator


def visitor(ctl: Controller, pin: str, resources: list[dict[str, str]], **times: int) -> str:
    now = int(time.time())
    body = {
        "first_name": "G",
        "last_name": "H",
        "visit_reason": "Others",
        "start_time": times.get("start", now - 60),
        "end_time": times.get("end", now + 3600),
        "resources": resources,
    }
    created = ctl.create_visitor(body)
    ctl.assign_pin(created.id, pin)
    return created.id


async def test_pins_are_checked_by_window_door_group_and_rule() -> None:
    ctl = Controller(2, unlock_s=0.2)
    d1, d2 = ctl.doors
    now = int(time.time())
    visitor(ctl, "1111", [{"id": d1, "type": "door"}])
    visitor(ctl, "2222", [{"id": d1, "type": "door"}], start=now + 3600, end=now + 7200)
    visitor(ctl, "3333", [{"id": ctl.building_id, "type": "door_group"}])
    cancelled = visitor(ctl, "4444", [{"id": d1, "type": "door"}])
    ctl.delete_visitor(cancelled, force=False)
    assert ctl.type_pin(d1, "1111")["result"] == "granted"
    assert ctl.type_pin(d2, "1111")["message"] == "Access Denied / No Access (PIN)"
    assert ctl.type_pin(d1, "2222")["message"] == "Access Denied / Outside Schedule (PIN)"
    assert ctl.type_pin("2", "3333")["result"] == "granted"  # by number, via the building
    assert ctl.type_pin("Door 1", "4444")["result"] == "denied"
    ctl.set_rule(d1, "keep_lock", None)
    assert ctl.type_pin(d1, "1111")["message"] == "Access Denied / Door Locked (PIN)"
    ctl.user_pins["9999"] = "Staff"
    assert ctl.type_pin(d2, "9999")["result"] == "granted"
    assert len(ctl.logs) == 7


async def test_unknown_routes_methods_and_bodies(emulator: UnifiEmulator) -> None:
    headers = {"Authorization": f"Bearer {emulator.token}"}
    verify = TrustRecord(emulator.url, emulator.fingerprint).context()
    async with httpx.AsyncClient(base_url=emulator.url, headers=headers, verify=verify) as http:
        assert (await http.get("/api/v1/developer/nothing")).status_code == 404
        assert (await http.delete("/api/v1/developer/doors")).status_code == 405
        bad = await http.post("/api/v1/developer/visitors", content=b"{not json")
        assert (bad.status_code, bad.json()["code"]) == (200, "CODE_PARAMS_INVALID")
        missing = await http.post("/api/v1/developer/visitors", json={"first_name": "x"})
        assert missing.json()["code"] == "CODE_PARAMS_INVALID"
        assert (await http.get("/elsewhere")).status_code == 404


async def test_websocket_upgrades_refused_for_token_scope_and_fault(
    emulator: UnifiEmulator,
) -> None:
    record = TrustRecord(emulator.url, emulator.fingerprint)

    async def status(token: str) -> int:
        with pytest.raises(InvalidStatus) as refused:
            await connect(
                record.websocket_url,
                ssl=record.context(),
                proxy=None,
                additional_headers={"Authorization": f"Bearer {token}"},
            )
        return refused.value.response.status_code

    assert await status("wrong") == 401
    assert await status(emulator.controller.add_token(scopes=frozenset()).value) == 403
    emulator.app.faults.ws_refuse = True
    assert await status(emulator.token) == 503
    emulator.app.faults.ws_refuse = False
    async with connect(
        record.websocket_url,
        ssl=record.context(),
        proxy=None,
        additional_headers={"Authorization": f"Bearer {emulator.token}"},
    ) as ws:
        assert await ws.recv() == '"Hello"'


async def test_a_restarted_console_keeps_its_certificate_token_and_doors(tmp_path: Path) -> None:
    first = UnifiEmulator(doors=2, state_dir=tmp_path / "console")
    await first.start()
    before = first.info()
    await first.stop()
    second = UnifiEmulator(doors=2, state_dir=tmp_path / "console")
    await second.start()
    try:
        after = second.info()
    finally:
        await second.stop()
    assert after["fingerprint"] == before["fingerprint"]
    assert after["token"] == before["token"]
    assert [d["id"] for d in after["doors"]] == [d["id"] for d in before["doors"]]
