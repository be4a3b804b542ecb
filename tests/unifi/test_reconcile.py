"""PIN reconciliation: the pure plan, and passes against the emulator (200 codes, collisions)."""

from __future__ import annotations

import math
import stat
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from agent.clock import Clock
from agent.locks.base import LockCode
from agent.locks.unifi.client import UnifiClient
from agent.locks.unifi.reconcile import PIN_TAKEN, RETRY_FAILED_S, Reconciler, Wanted, plan
from agent.locks.unifi.state import STATE_FILE, STATE_SUBDIR, KnownVisitor, UnifiState
from agent.locks.unifi.trust import TrustRecord
from simulator.unifi import UnifiEmulator
from simulator.unifi.app import HttpFault
from sync_protocol.models import DeliveryState
from tests.unifi.support import code

CONTROLLER = ":".join(["AB"] * 32)


class Wall:
    """An adjustable wall clock for the agent."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
async def reconciler(state_dir: Path, wall: Wall) -> AsyncIterator[Reconciler]:
    state = UnifiState.load(state_dir, CONTROLLER)
    yield Reconciler(state, Clock(wall=wall), "gw0001")
    await state.flush()
    state.close()


def pins(count: int) -> list[str]:
    return [f"{100000 + 7919 * i % 900000:06d}" for i in range(count)]


def wanted_for(codes: list[LockCode], doors: Callable[[int], tuple[str, ...]]) -> dict[str, Wanted]:
    return {c.code_id: Wanted(c, doors(i)) for i, c in enumerate(codes)}


def states(rec: Reconciler) -> dict[DeliveryState, int]:
    counts: dict[DeliveryState, int] = {}
    for state in rec.codes.values():
        counts[state.state] = counts.get(state.state, 0) + 1
    return counts


# --- the pure plan ---------------------------------------------------------------------------


def fp(c: LockCode) -> str:
    return "pin-" + c.pin


def test_plan_creates_updates_pins_deletes_and_skips_expired() -> None:
    now = time.time()
    new, same, moved, rekeyed = (code(f"c{i}", f"11110{i}", now=now) for i in range(4))
    gone_by_time = code("old", "222222", starts_in_s=-7200, lasts_s=3600, now=now)
    wanted = {c.code_id: Wanted(c, ("d1",)) for c in (new, same, moved, rekeyed, gone_by_time)}
    from agent.locks.unifi.reconcile import window_fingerprint

    known = {
        "c1": KnownVisitor("v1", window_fingerprint(wanted["c1"]), ("d1",), fp(same)),
        "c2": KnownVisitor("v2", "an-older-window", ("d1",), fp(moved)),
        "c3": KnownVisitor("v3", window_fingerprint(wanted["c3"]), ("d1",), "pin-of-before"),
        "revoked": KnownVisitor("v4", "w", ("d1",), "p"),
        "old": KnownVisitor("v5", "w", ("d1",), "p"),
    }
    work = plan(wanted, known, now=now, pin_fp=fp)
    assert work.creates == ("c0",)
    assert work.updates == ("c2",)
    assert work.pins == ("c3",)
    assert work.deletes == ("old", "revoked")
    assert not work.conflicts


def test_plan_gives_a_shared_pin_to_its_holder_then_to_the_earliest() -> None:
    now = time.time()
    early = code("early", "555555", starts_in_s=-7200, now=now)
    late = code("late", "555555", starts_in_s=-60, now=now)
    wanted = {c.code_id: Wanted(c, ("d1",)) for c in (early, late)}
    assert plan(wanted, {}, now=now, pin_fp=fp).conflicts == {"late": "early"}
    holding = {"late": KnownVisitor("v", "w", ("d1",), fp(late))}
    assert plan(wanted, holding, now=now, pin_fp=fp).conflicts == {"early": "late"}


# --- passes against the emulator --------------------------------------------------------------


async def test_two_hundred_codes_from_scratch_then_twenty_changes(
    reconciler: Reconciler, client: UnifiClient, emulator: UnifiEmulator, wall: Wall
) -> None:
    doors = list(emulator.controller.doors)
    codes = [code(f"c{i:03d}", pin, now=wall.now) for i, pin in enumerate(pins(200))]
    wanted = wanted_for(codes, lambda i: (doors[i % 3],))
    result = await reconciler.run(client, wanted)
    assert result.requests == 1 + 2 * 200  # one visitor listing, then create + PIN per code
    assert states(reconciler) == {DeliveryState.SET: 200}
    by_pin = {v.pin: v for v in emulator.controller.visitors.values()}
    assert set(by_pin) == set(pins(200))
    sample = by_pin[codes[7].pin]
    assert sample.resources[0]["id"] == doors[7 % 3]
    assert (sample.start_time, sample.end_time) == (
        math.floor(codes[7].starts_at or 0),
        math.ceil(codes[7].ends_at or 0),
    )
    assert (sample.first_name, sample.last_name) == ("Ada", "Lovelace")
    assert "kasify:code=c007" in sample.remarks

    assert (await reconciler.run(client, wanted)).requests == 0  # nothing changed, nothing sent

    for cid in [f"c{i:03d}" for i in range(10)]:  # 10 windows move (the guest stays longer)
        old = wanted[cid].code
        moved = LockCode(
            old.code_id,
            old.kind,
            old.pin,
            old.starts_at,
            (old.ends_at or 0) + 86400,
            old.label,
            old.booking_id,
        )
        wanted[cid] = Wanted(moved, wanted[cid].doors)
    for i in range(10, 15):  # 5 revoked
        del wanted[f"c{i:03d}"]
    for i, pin in enumerate(["700001", "700002", "700003", "700004", "700005"]):  # 5 new
        wanted[f"n{i}"] = Wanted(code(f"n{i}", pin, now=wall.now), (doors[0],))
    result = await reconciler.run(client, wanted)
    assert result.requests == 10 + 5 + 2 * 5
    assert states(reconciler) == {DeliveryState.SET: 200}
    assert len(emulator.controller.visitors) == 200
    moved_visitor = emulator.controller.visitors[reconciler.state.visitors["c000"].visitor_id]
    assert moved_visitor.end_time == math.ceil(wanted["c000"].code.ends_at or 0)


async def test_a_pin_taken_on_the_controller_fails_then_recovers(
    reconciler: Reconciler, client: UnifiClient, emulator: UnifiEmulator, wall: Wall
) -> None:
    emulator.controller.user_pins["424242"] = "Cleaner (UniFi user)"
    door = next(iter(emulator.controller.doors))
    wanted = {"c1": Wanted(code("c1", "424242", now=wall.now), (door,))}
    result = await reconciler.run(client, wanted)
    assert reconciler.codes["c1"].state is DeliveryState.FAILED
    assert reconciler.codes["c1"].error == PIN_TAKEN
    assert result.retry_in_s == pytest.approx(RETRY_FAILED_S, abs=1)
    assert (await reconciler.run(client, wanted)).requests == 0  # resting until the retry time
    del emulator.controller.user_pins["424242"]
    wall.now += RETRY_FAILED_S + 1
    result = await reconciler.run(client, wanted)
    assert result.requests == 1  # the visitor exists already: only the PIN is assigned
    assert reconciler.codes["c1"].state is DeliveryState.SET
    assert len(emulator.controller.visitors) == 1


async def test_two_of_our_codes_with_one_pin(
    reconciler: Reconciler, client: UnifiClient, emulator: UnifiEmulator, wall: Wall
) -> None:
    door = next(iter(emulator.controller.doors))
    first = code("first", "313131", starts_in_s=-7200, now=wall.now)
    second = code("second", "313131", starts_in_s=-60, now=wall.now)
    wanted = {c.code_id: Wanted(c, (door,)) for c in (first, second)}
    await reconciler.run(client, wanted)
    assert reconciler.codes["first"].state is DeliveryState.SET
    failed = reconciler.codes["second"]
    assert failed.state is DeliveryState.FAILED
    assert failed.error is not None
    assert "also used by code first" in failed.error
    del wanted["first"]  # the first booking is cancelled: the PIN is free for the second
    await reconciler.run(client, wanted)
    assert reconciler.codes["second"].state is DeliveryState.SET
    assert [v.pin for v in emulator.controller.visitors.values()] == ["313131"]


async def test_one_visitor_for_a_code_on_several_doors(
    reconciler: Reconciler, client: UnifiClient, emulator: UnifiEmulator, wall: Wall
) -> None:
    d1, d2, _ = emulator.controller.doors
    wanted = {"c1": Wanted(code("c1", "808080", now=wall.now), (d1, d2))}
    await reconciler.run(client, wanted)
    (visitor,) = emulator.controller.visitors.values()
    assert sorted(r["id"] for r in visitor.resources) == sorted([d1, d2])
    wanted["c1"] = Wanted(wanted["c1"].code, (d2,))
    assert (await reconciler.run(client, wanted)).requests == 1
    assert [r["id"] for r in visitor.resources] == [d2]


async def test_expired_codes_are_force_deleted(
    reconciler: Reconciler, client: UnifiClient, emulator: UnifiEmulator, wall: Wall
) -> None:
    door = next(iter(emulator.controller.doors))
    short = code("short", "616161", starts_in_s=-60, lasts_s=600, now=wall.now)
    wanted = {"short": Wanted(short, (door,))}
    result = await reconciler.run(client, wanted)
    assert reconciler.codes["short"].state is DeliveryState.SET
    assert result.retry_in_s is None
    wall.now += 601
    await reconciler.run(client, wanted)
    assert emulator.controller.visitors == {}  # deleted with is_force, not only canceled
    assert reconciler.codes["short"].state is DeliveryState.UNSET
    assert reconciler.state.code_of_visitor(next(iter(reconciler.state.retired))) == (
        "short",
        "b-short",
        None,
    )


async def test_a_new_pin_for_the_same_code_is_assigned(
    reconciler: Reconciler, client: UnifiClient, emulator: UnifiEmulator, wall: Wall
) -> None:
    door = next(iter(emulator.controller.doors))
    wanted = {"c1": Wanted(code("c1", "121212", now=wall.now), (door,))}
    await reconciler.run(client, wanted)
    wanted = {"c1": Wanted(code("c1", "343434", now=wall.now), (door,))}
    assert (await reconciler.run(client, wanted)).requests == 1
    assert [v.pin for v in emulator.controller.visitors.values()] == ["343434"]


async def test_state_is_private_and_holds_no_pin(
    reconciler: Reconciler,
    client: UnifiClient,
    emulator: UnifiEmulator,
    state_dir: Path,
    wall: Wall,
) -> None:
    door = next(iter(emulator.controller.doors))
    wanted = {
        f"c{i}": Wanted(code(f"c{i}", pin, now=wall.now), (door,)) for i, pin in enumerate(pins(5))
    }
    await reconciler.run(client, wanted)
    await reconciler.state.flush()
    path = state_dir / STATE_SUBDIR / STATE_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = path.read_text()
    assert all(pin not in raw for pin in pins(5))
    reloaded = UnifiState.load(state_dir, CONTROLLER)
    assert set(reloaded.visitors) == set(wanted)
    assert UnifiState.load(state_dir, "another-controller").visitors == {}


async def test_after_losing_its_state_the_agent_adopts_its_visitors(
    client: UnifiClient, emulator: UnifiEmulator, tmp_path: Path, wall: Wall
) -> None:
    door = next(iter(emulator.controller.doors))
    wanted = {
        f"c{i}": Wanted(code(f"c{i}", pin, now=wall.now), (door,)) for i, pin in enumerate(pins(5))
    }
    first = UnifiState.load(tmp_path / "one", CONTROLLER)
    await Reconciler(first, Clock(wall=wall), "gw0001").run(client, wanted)
    await first.flush()
    first.close()
    emulator.controller.create_visitor(
        {
            "first_name": "Other",
            "last_name": "Gateway",
            "start_time": 1,
            "end_time": 2**31,
            "visit_reason": "Others",
            "remarks": "kasify:code=x9 gw=gw9999",
        }
    )
    lost = UnifiState.load(tmp_path / "two", CONTROLLER)
    rec = Reconciler(lost, Clock(wall=wall), "gw0001")
    del wanted["c4"]  # meanwhile revoked: its visitor is ours and no longer wanted
    await rec.run(client, wanted)
    await lost.flush()
    lost.close()
    assert states(rec) == {DeliveryState.SET: 4}
    remarks = sorted(
        v.remarks.split("kasify:code=")[1][:2] for v in emulator.controller.visitors.values()
    )
    assert remarks == ["c0", "c1", "c2", "c3", "x9"]  # no duplicates; another gateway's kept


async def test_transient_failures_are_retried(
    reconciler: Reconciler, client: UnifiClient, emulator: UnifiEmulator, wall: Wall
) -> None:
    door = next(iter(emulator.controller.doors))
    wanted = {
        f"c{i}": Wanted(code(f"c{i}", pin, now=wall.now), (door,)) for i, pin in enumerate(pins(6))
    }
    emulator.app.faults.http.append(HttpFault(503, 3, "/visitors/"))
    result = await reconciler.run(client, wanted)
    assert result.retry_in_s == 0.0
    assert DeliveryState.SETTING in states(reconciler)
    await reconciler.run(client, wanted)
    assert states(reconciler) == {DeliveryState.SET: 6}
    assert sorted(v.pin or "" for v in emulator.controller.visitors.values()) == sorted(pins(6))


async def test_a_token_without_visitor_rights_fails_every_code_with_the_scope(
    reconciler: Reconciler, emulator: UnifiEmulator, trusted: TrustRecord, wall: Wall
) -> None:
    token = emulator.controller.add_token(scopes=frozenset({"view:space", "view:visitor"})).value
    weak = UnifiClient.for_record(trusted, token)
    door = next(iter(emulator.controller.doors))
    try:
        result = await reconciler.run(
            weak, {"c1": Wanted(code("c1", "191919", now=wall.now), (door,))}
        )
    finally:
        await weak.aclose()
    assert result.needs_user is not None
    assert "edit:visitor" in result.needs_user
    state = reconciler.codes["c1"]
    assert state.state is DeliveryState.FAILED
    assert state.error is not None
    assert "edit:visitor" in state.error
