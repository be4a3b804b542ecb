"""Every endpoint the client uses, against the emulator over real TLS."""

from __future__ import annotations

import time

import pytest

from agent.locks.unifi.client import UnifiClient, VisitorSpec, resources_for
from agent.locks.unifi.errors import (
    ApiError,
    ControllerFailure,
    ControllerTimeout,
    ControllerUnreachable,
    DeviceOffline,
    NotFound,
    PinInvalid,
    PinTaken,
    RuleUnsupported,
    ScopeMissing,
    Throttled,
    TokenRejected,
)
from agent.locks.unifi.models import LockRuleType, Position, Relay, VisitorStatus
from agent.locks.unifi.trust import TrustRecord
from simulator.unifi import UnifiEmulator
from simulator.unifi.app import HttpFault


def spec(door_ids: list[str], *, start: float | None = None, hours: float = 2) -> VisitorSpec:
    begin = int(start if start is not None else time.time() - 60)
    return VisitorSpec(
        "Ada",
        "Lovelace",
        begin,
        begin + int(hours * 3600),
        "kasify:code=c1",
        resources_for(door_ids),
    )


async def test_doors_door_topology_devices(client: UnifiClient, emulator: UnifiEmulator) -> None:
    doors = await client.doors()
    assert [d.name for d in doors] == ["Door 1", "Door 2", "Door 3"]
    assert all(d.relay is Relay.LOCK and d.position is Position.CLOSE for d in doors)
    one = await client.door(doors[0].id)
    assert one.floor_id == emulator.controller.floor_id
    topology = await client.topology()
    assert {t.door_id for t in topology} == {d.id for d in doors}  # the custom group repeats them
    devices = await client.devices()
    assert {d.location_id for d in devices} == {d.id for d in doors}
    with pytest.raises(NotFound):
        await client.door("no-such-door")


async def test_doors_without_sensor_blank_or_left_out(
    client: UnifiClient, emulator: UnifiEmulator
) -> None:
    first, second, _ = emulator.controller.doors.values()
    first.position = None
    second.position, second.omit_position = None, True
    doors = {d.id: d for d in await client.doors()}
    assert doors[first.id].position is Position.NONE
    assert doors[second.id].position is Position.NONE


async def test_unlock_with_actor_and_lock_rules(
    client: UnifiClient, emulator: UnifiEmulator
) -> None:
    door = next(iter(emulator.controller.doors.values()))
    await client.unlock(door.id, actor_id="kasify-agent", actor_name="Kasify")
    assert (await client.door(door.id)).relay is Relay.UNLOCK
    with pytest.raises(ValueError, match="together"):
        await client.unlock(door.id, actor_id="only-id")
    await client.set_lock_rule(door.id, LockRuleType.LOCK_NOW)
    assert (await client.door(door.id)).relay is Relay.LOCK
    await client.set_lock_rule(door.id, LockRuleType.CUSTOM, interval_min=10)
    rule = await client.lock_rule(door.id)
    assert rule.type is LockRuleType.CUSTOM
    assert rule.ended_time is not None
    assert rule.ended_time > time.time()
    await client.set_lock_rule(door.id, LockRuleType.RESET)
    assert (await client.lock_rule(door.id)).type is LockRuleType.NONE


async def test_door_without_lock_rules_or_hub(client: UnifiClient, emulator: UnifiEmulator) -> None:
    _, second, third = emulator.controller.doors.values()
    second.lock_rules = False
    third.is_bind_hub = False
    with pytest.raises(RuleUnsupported):
        await client.lock_rule(second.id)
    with pytest.raises(RuleUnsupported):
        await client.set_lock_rule(second.id, LockRuleType.LOCK_NOW)
    with pytest.raises(DeviceOffline):
        await client.unlock(third.id)


async def test_visitor_lifecycle_and_pins(client: UnifiClient, emulator: UnifiEmulator) -> None:
    door_ids = list(emulator.controller.doors)
    visitor = await client.create_visitor(spec(door_ids[:2]))
    assert visitor.status is VisitorStatus.ACTIVE
    assert {r.id for r in visitor.resources} == set(door_ids[:2])
    await client.assign_pin(visitor.id, "246810")  # the answer carries no data at all
    assert emulator.controller.visitors[visitor.id].pin == "246810"
    assert (await client.visitor(visitor.id)).has_pin
    later = spec(door_ids[:1], start=time.time() + 86400)
    await client.update_visitor(visitor.id, later)
    moved = await client.visitor(visitor.id)
    assert (moved.start_time, moved.status) == (later.start_time, VisitorStatus.UPCOMING)
    other = await client.create_visitor(spec(door_ids))
    with pytest.raises(PinTaken):
        await client.assign_pin(other.id, "246810")
    with pytest.raises(PinInvalid):
        await client.assign_pin(other.id, "12")
    fresh = await client.generate_pin()
    assert fresh.isdigit()
    await client.assign_pin(other.id, fresh)
    await client.delete_visitor(other.id, force=False)  # only canceled
    assert (await client.visitor(other.id)).status is VisitorStatus.CANCELED
    await client.delete_visitor(other.id)
    with pytest.raises(NotFound):
        await client.visitor(other.id)


async def test_visitor_pages(client: UnifiClient, emulator: UnifiEmulator) -> None:
    door = list(emulator.controller.doors)[:1]
    for _ in range(7):
        await client.create_visitor(spec(door))
    before = client.requests
    assert len(await client.visitors(page_size=3)) == 7
    assert client.requests - before == 3


async def test_system_logs_pages_and_range(client: UnifiClient, emulator: UnifiEmulator) -> None:
    start = int(time.time()) - 1
    for _ in range(130):
        emulator.controller.type_pin("1", "999999")
    page = await client.system_logs(since=start, page_size=100)
    assert (len(page.entries), page.total) == (100, 130)
    entries = await client.all_system_logs(since=start)
    assert len({e.id for e in entries}) == 130
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    assert all(e.credential_provider == "PIN_CODE" and e.result == "BLOCKED" for e in entries)
    assert await client.all_system_logs(since=int(time.time()) + 3600) == []


async def test_tokens_refused_expired_or_short_of_scope(
    emulator: UnifiEmulator, trusted: TrustRecord
) -> None:
    async def call(token: str) -> None:
        client = UnifiClient.for_record(trusted, token)
        try:
            await client.create_visitor(spec(list(emulator.controller.doors)[:1]))
        finally:
            await client.aclose()

    with pytest.raises(TokenRejected, match="UniFi Access API token"):
        await call("a-unifi-network-api-key")
    expiring = emulator.controller.add_token().value
    emulator.controller.tokens[expiring].expired = True
    with pytest.raises(TokenRejected, match="expired"):
        await call(expiring)
    read_only = emulator.controller.add_token(scopes=frozenset({"view:space"})).value
    with pytest.raises(ScopeMissing, match="edit:visitor") as caught:
        await call(read_only)
    assert caught.value.scope == "edit:visitor"


async def test_injected_http_faults(client: UnifiClient, emulator: UnifiEmulator) -> None:
    faults = emulator.app.faults
    faults.http.append(HttpFault(429, 1))
    with pytest.raises(Throttled) as throttled:
        await client.doors()
    assert throttled.value.retry_after_s == 1.0
    faults.http.append(HttpFault(503, 1, "/visitors"))
    assert len(await client.doors()) == 3  # other paths unaffected
    with pytest.raises(ControllerFailure):
        await client.visitors()
    faults.http.append(HttpFault(401, 1))
    with pytest.raises(TokenRejected):
        await client.doors()
    faults.http.append(HttpFault(403, 1))
    with pytest.raises(ScopeMissing, match="view:space"):
        await client.doors()
    faults.http.append(HttpFault(409, 1))
    with pytest.raises(ApiError):
        await client.doors()
    assert len(await client.doors()) == 3


async def test_a_slow_controller_times_out(emulator: UnifiEmulator, trusted: TrustRecord) -> None:
    emulator.app.faults.slow_s, emulator.app.faults.slow_remaining = 1.0, 1
    client = UnifiClient.for_record(trusted, emulator.token, timeout_s=0.2)
    try:
        with pytest.raises(ControllerTimeout):
            await client.doors()
        assert len(await client.doors()) == 3  # the next answer is quick again
    finally:
        await client.aclose()


async def test_nothing_listening(trusted: TrustRecord) -> None:
    record = TrustRecord("https://127.0.0.1:9", trusted.fingerprint)
    client = UnifiClient.for_record(record, "t")
    try:
        with pytest.raises(ControllerUnreachable) as caught:
            await client.doors()
        assert not isinstance(caught.value, ControllerTimeout)
    finally:
        await client.aclose()


async def test_a_visitor_with_a_week_schedule(client: UnifiClient, emulator: UnifiEmulator) -> None:
    weekly = {"monday": [{"start_time": "10:00:00", "end_time": "17:00:59"}], "sunday": []}
    base = spec(list(emulator.controller.doors)[:1])
    scheduled = VisitorSpec(
        base.first_name,
        base.last_name,
        base.start_time,
        base.end_time,
        base.remarks,
        base.resources,
        week_schedule=weekly,
    )
    visitor = await client.create_visitor(scheduled)
    assert emulator.controller.visitors[visitor.id].week_schedule == weekly
