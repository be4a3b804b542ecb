"""Lenient parsing: nulls, missing fields, unknown values and odd shapes never raise."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.locks.unifi.messages import (
    Heartbeat,
    Notification,
    door_updates,
    hub_doors,
    parse_message,
)
from agent.locks.unifi.models import (
    Door,
    LockRuleType,
    Position,
    Relay,
    VisitorStatus,
    parse_devices,
    parse_door,
    parse_doors,
    parse_lock_rule,
    parse_log_entry,
    parse_log_page,
    parse_topology,
    parse_visitor,
    parse_visitors,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def test_door_with_nulls_unknown_fields_and_no_position_field() -> None:
    door = parse_door(
        {
            "id": "d1",
            "name": None,
            "full_name": "Site - Door",
            "floor_id": None,
            "is_bind_hub": "true",
            "door_lock_relay_status": "unlock",
            "something_new": {"nested": [1]},
        }
    )
    assert door == Door("d1", "Site - Door", "Site - Door", "", True, Relay.UNLOCK, Position.NONE)


def test_position_spellings() -> None:
    assert [Position.parse(v) for v in ("open", "close", "closed", "", None, "none", "ajar")] == [
        Position.OPEN,
        Position.CLOSE,
        Position.CLOSE,
        Position.NONE,
        Position.NONE,
        Position.NONE,
        Position.UNKNOWN,
    ]
    assert [Relay.parse(v) for v in ("lock", "locked", "unlocked", None, 3)] == [
        Relay.LOCK,
        Relay.LOCK,
        Relay.UNLOCK,
        Relay.UNKNOWN,
        Relay.UNKNOWN,
    ]


def test_unknown_enum_values_do_not_raise() -> None:
    assert VisitorStatus.parse("CANCELLED") is VisitorStatus.CANCELED
    assert VisitorStatus.parse("TELEPORTED") is VisitorStatus.UNKNOWN
    assert VisitorStatus.parse(6) is VisitorStatus.UNKNOWN
    assert parse_lock_rule({"type": "keep_lock_forever", "ended_time": "x"}).type is (
        LockRuleType.UNKNOWN
    )
    assert parse_lock_rule(None).type is LockRuleType.NONE


def test_a_bad_item_is_skipped_not_the_list() -> None:
    doors = parse_doors([{"id": "a"}, "garbage", {"name": "no id"}, {"id": "b", "is_bind_hub": 1}])
    assert [d.id for d in doors] == ["a", "b"]
    assert parse_doors({"not": "a list"}) == ()


def test_topology_lists_each_door_once_with_its_floor() -> None:
    floor = {
        "id": "f1",
        "name": "1F",
        "type": "floor",
        "resources": [{"id": "d1", "name": "Front", "type": "door", "is_bind_hub": True}, None],
    }
    groups = [
        {
            "id": "g",
            "name": "custom",
            "type": "access",
            "resource_topologies": [{**floor, "id": "f-other"}],
        },
        {"id": "b", "name": "Site", "type": "building", "resource_topologies": [floor]},
        "junk",
    ]
    (door,) = parse_topology(groups)
    assert (door.door_id, door.floor_id, door.building_id, door.is_bind_hub) == (
        "d1",
        "f1",
        "b",
        True,
    )


def test_devices_as_list_of_lists_or_flat() -> None:
    nested = [[{"id": "h1", "type": "UAH", "location_id": "d1"}], [{"unique_id": "h2"}]]
    assert [(d.id, d.location_id) for d in parse_devices(nested)] == [("h1", "d1"), ("h2", "")]
    assert [d.id for d in parse_devices([{"id": "h3"}])] == ["h3"]


def test_visitor_with_pin_token_and_string_times() -> None:
    visitor = parse_visitor(
        {
            "id": "v",
            "first_name": "Ada",
            "last_name": None,
            "status": "ACTIVE",
            "start_time": "1700000000",
            "end_time": 1700003600.0,
            "pin_code": {"token": "ab"},
            "resources": [{"id": "d1", "type": "door"}, {"type": "door"}],
        }
    )
    assert visitor is not None
    assert (visitor.name, visitor.start_time, visitor.has_pin) == ("Ada", 1700000000, True)
    assert [r.id for r in visitor.resources] == ["d1"]
    assert parse_visitors([None, {"id": "w"}])[0].status is VisitorStatus.UNKNOWN


def test_log_entry_times_and_missing_parts() -> None:
    entry = parse_log_entry(
        {
            "_id": "x",
            "@timestamp": "2023-07-11T12:11:27Z",
            "_source": {
                "actor": None,
                "event": {"result": "blocked"},
                "target": [5, {"type": "door"}],
            },
        }
    )
    assert entry is not None
    assert entry.at == 1689077487.0
    assert entry.result == "BLOCKED"
    assert entry.targets_of("DOOR")[0].id == ""
    assert parse_log_entry({"_source": {}}) is None  # no id: cannot be deduplicated
    assert parse_log_entry({"_id": "y", "_source": {}}) is None  # no time


def test_log_page_total_inside_or_beside_data() -> None:
    hit = {"_id": "a", "_source": {"event": {"published": 1000}}}
    beside = parse_log_page({"hits": [hit]}, {"page": 2, "total": 30})
    inside = parse_log_page({"hits": [hit], "page": 1, "total": 9}, {})
    assert (beside.page, beside.total, inside.total) == (2, 30, 9)
    assert parse_log_page(None, {}).entries == ()


def test_messages_heartbeat_notifications_and_junk() -> None:
    assert isinstance(parse_message('"Hello"'), Heartbeat)
    assert isinstance(parse_message("Hello"), Heartbeat)
    note = parse_message('{"event": "access.logs.add", "data": null, "receiver_id": 3}')
    assert isinstance(note, Notification)
    assert (note.data, note.receiver_id) == ({}, "3")
    assert parse_message("{not json") is None
    assert parse_message("[1, 2]") is None


def test_door_updates_from_v2_location_device_and_remote_unlock() -> None:
    loc = Notification(
        "access.data.v2.location.update", {"id": "d1", "state": {"lock": "unlocked"}}
    )
    (update,) = door_updates(loc)
    assert (update.relay, update.position) == (Relay.UNLOCK, None)  # dps left out: unchanged
    dev = Notification(
        "access.data.v2.device.update",
        {"id": "hub", "location_states": [{"location_id": "d2", "lock": "locked", "dps": "none"}]},
    )
    assert door_updates(dev)[0].position is Position.NONE
    assert hub_doors(dev) == (("hub", "d2"),)
    remote = Notification("access.data.device.remote_unlock", {"unique_id": "d3"})
    assert door_updates(remote)[0].relay is Relay.UNLOCK


@settings(max_examples=300)
@given(json_values)
def test_parsers_never_raise_on_any_json(value: Any) -> None:
    parse_doors(value)
    parse_door(value)
    parse_topology(value)
    parse_devices(value)
    parse_visitors(value)
    parse_log_entry(value)
    parse_log_page(value, value if isinstance(value, dict) else {})
    parse_lock_rule(value)
    parse_message(json.dumps(value))
    if isinstance(value, dict):
        note = Notification("access.data.v2.location.update", value)
        assert isinstance(door_updates(note), tuple)
        hub_doors(Notification("access.data.v2.device.update", value))
