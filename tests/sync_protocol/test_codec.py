"""Desired state, commands and agent bodies: version rule, gateway binding, size and shape."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from sync_protocol.codec import (
    MAX_BYTES,
    MAX_COMMAND_TTL,
    decode_command,
    decode_command_result,
    decode_desired,
    decode_events,
    decode_presence,
    decode_reported,
    encode,
    encode_command,
    encode_desired,
)
from sync_protocol.envelope import SignedKind, sign
from sync_protocol.errors import ProtocolError, Reason
from sync_protocol.ids import uuid7
from sync_protocol.models import (
    ClockStatus,
    Command,
    CommandAction,
    Event,
    EventBatch,
    EventType,
    LockState,
    Method,
    Presence,
    ReportedState,
)
from sync_protocol.topics import Channel
from tests.sync_protocol.conftest import GATEWAY, NOW, desired


def _decode(data: bytes, key: SigningKey, applied: int = 0, digest: str | None = None):  # type: ignore[no-untyped-def]
    return decode_desired(
        data, [key.verify_key], gateway_id=GATEWAY, applied_version=applied, applied_digest=digest
    )


def test_desired_round_trip(signing_key: SigningKey, gateway_key: PrivateKey) -> None:
    state = desired(gateway_key, version=3)
    verified = _decode(encode_desired(state, signing_key), signing_key, applied=2)
    assert verified.state == state
    assert not verified.duplicate


def test_version_rule(signing_key: SigningKey, gateway_key: PrivateKey) -> None:
    data = encode_desired(desired(gateway_key, version=5), signing_key)
    applied = _decode(data, signing_key, applied=4)

    # The broker redelivers the retained document on every reconnect: a harmless duplicate.
    again = _decode(data, signing_key, applied=5, digest=applied.digest)
    assert again.duplicate

    other = encode_desired(desired(gateway_key, version=5, codes=1), signing_key)
    with pytest.raises(ProtocolError) as err:
        _decode(other, signing_key, applied=5, digest=applied.digest)
    assert err.value.reason is Reason.VERSION_CONFLICT

    with pytest.raises(ProtocolError) as err:
        _decode(data, signing_key, applied=6, digest="x")
    assert err.value.reason is Reason.STALE_VERSION
    assert "older than the applied version 6" in err.value.detail


def test_wrong_gateway_is_refused(signing_key: SigningKey, gateway_key: PrivateKey) -> None:
    data = encode_desired(desired(gateway_key), signing_key)
    with pytest.raises(ProtocolError) as err:
        decode_desired(
            data,
            [signing_key.verify_key],
            gateway_id="gw-other",
            applied_version=0,
            applied_digest=None,
        )
    assert err.value.reason is Reason.WRONG_GATEWAY


def test_wrong_signing_key_is_refused(gateway_key: PrivateKey) -> None:
    data = encode_desired(desired(gateway_key), SigningKey.generate())
    with pytest.raises(ProtocolError) as err:
        _decode(data, SigningKey.generate())
    assert err.value.reason is Reason.UNKNOWN_KEY


def test_oversized_desired_is_refused(signing_key: SigningKey) -> None:
    data = b" " * (MAX_BYTES[Channel.DESIRED] + 1)
    with pytest.raises(ProtocolError) as err:
        _decode(data, signing_key)
    assert err.value.reason is Reason.TOO_LARGE


def test_signed_but_invalid_body_names_the_field(
    signing_key: SigningKey, gateway_key: PrivateKey
) -> None:
    body = json.loads(encode(desired(gateway_key)))
    body["codes"][0]["lock_ids"] = ["no-such-lock"]
    data = sign(SignedKind.DESIRED, json.dumps(body).encode(), signing_key)
    with pytest.raises(ProtocolError) as err:
        _decode(data, signing_key)
    assert err.value.reason is Reason.INVALID_BODY
    assert "no-such-lock" in err.value.detail

    body = json.loads(encode(desired(gateway_key)))
    body["version"] = "many"
    with pytest.raises(ProtocolError) as err:
        _decode(sign(SignedKind.DESIRED, json.dumps(body).encode(), signing_key), signing_key)
    assert err.value.reason is Reason.INVALID_BODY
    assert err.value.detail.startswith("version:")


def test_future_protocol_version_is_unsupported(
    signing_key: SigningKey, gateway_key: PrivateKey
) -> None:
    body = json.loads(encode(desired(gateway_key)))
    body["v"] = 2
    with pytest.raises(ProtocolError) as err:
        _decode(sign(SignedKind.DESIRED, json.dumps(body).encode(), signing_key), signing_key)
    assert err.value.reason is Reason.UNSUPPORTED_VERSION


def test_unknown_fields_from_a_newer_cloud_are_ignored(
    signing_key: SigningKey, gateway_key: PrivateKey
) -> None:
    body = json.loads(encode(desired(gateway_key)))
    body["new_feature"] = {"x": 1}
    verified = _decode(
        sign(SignedKind.DESIRED, json.dumps(body).encode(), signing_key), signing_key
    )
    assert verified.state.version == 1


def _command(**changes: object) -> Command:
    fields: dict[str, object] = {
        "id": uuid7(),
        "gateway_id": GATEWAY,
        "action": CommandAction.UNLOCK,
        "lock_id": "lock-1",
        "issued_at": NOW,
        "expires_at": NOW + timedelta(seconds=30),
    }
    fields.update(changes)
    return Command.model_validate(fields)


def test_command_checks(signing_key: SigningKey) -> None:
    seen: set[str] = set()
    command = _command()
    data = encode_command(command, signing_key)
    keys = [signing_key.verify_key]
    got = decode_command(data, keys, gateway_id=GATEWAY, now=NOW, seen=seen.__contains__)
    assert got == command
    seen.add(command.id)

    with pytest.raises(ProtocolError) as err:
        decode_command(data, keys, gateway_id=GATEWAY, now=NOW, seen=seen.__contains__)
    assert err.value.reason is Reason.REPLAYED

    with pytest.raises(ProtocolError) as err:
        decode_command(
            data, keys, gateway_id=GATEWAY, now=NOW + timedelta(minutes=1), seen=lambda _: False
        )
    assert err.value.reason is Reason.EXPIRED

    long_lived = encode_command(
        _command(expires_at=NOW + MAX_COMMAND_TTL + timedelta(seconds=1)), signing_key
    )
    with pytest.raises(ProtocolError) as err:
        decode_command(long_lived, keys, gateway_id=GATEWAY, now=NOW, seen=lambda _: False)
    assert err.value.reason is Reason.INVALID_BODY

    with pytest.raises(ProtocolError) as err:
        decode_command(data, keys, gateway_id="gw-other", now=NOW, seen=lambda _: False)
    assert err.value.reason is Reason.WRONG_GATEWAY


def test_a_signed_desired_document_is_not_a_command(
    signing_key: SigningKey, gateway_key: PrivateKey
) -> None:
    data = encode_desired(desired(gateway_key), signing_key)
    with pytest.raises(ProtocolError) as err:
        decode_command(
            data, [signing_key.verify_key], gateway_id=GATEWAY, now=NOW, seen=lambda _: False
        )
    assert err.value.reason is Reason.WRONG_KIND


def test_lock_commands_need_a_lock() -> None:
    with pytest.raises(ValueError, match="needs a lock_id"):
        _command(lock_id=None)


def _event(**changes: object) -> Event:
    fields: dict[str, object] = {
        "id": uuid7(),
        "type": EventType.ACCESS_GRANTED,
        "occurred_at": NOW,
        "clock_trusted": True,
        "lock_id": "lock-1",
        "method": Method.GATEWAY_KEYPAD,
        "result": "granted",
    }
    fields.update(changes)
    return Event.model_validate(fields)


def test_event_batch_round_trip_and_gateway_binding() -> None:
    batch = EventBatch(gateway_id=GATEWAY, events=(_event(), _event(type="door_opened")))
    assert decode_events(encode(batch), gateway_id=GATEWAY) == batch
    with pytest.raises(ProtocolError) as err:
        decode_events(encode(batch), gateway_id="gw-b")
    assert err.value.reason is Reason.WRONG_GATEWAY


def test_values_from_a_newer_agent_do_not_break_ingest() -> None:
    body = json.loads(encode(EventBatch(gateway_id=GATEWAY, events=(_event(),))))
    body["events"][0]["method"] = "telepathy"
    body["events"][0]["type"] = "future_event"
    batch = decode_events(json.dumps(body).encode(), gateway_id=GATEWAY)
    assert batch.events[0].method is Method.UNKNOWN
    assert batch.events[0].type == "future_event"

    reported = ReportedState(
        gateway_id=GATEWAY,
        applied_version=1,
        agent_version="0.1.0",
        uptime_s=1,
        reported_at=NOW,
        clock=ClockStatus(synchronized=True, trusted=True),
        outbox_depth=0,
    )
    raw = json.loads(encode(reported))
    raw["locks"] = [{"lock_id": "lock-1", "state": "levitating"}]
    assert (
        decode_reported(json.dumps(raw).encode(), gateway_id=GATEWAY).locks[0].state
        is LockState.UNKNOWN
    )


def test_event_ids_must_be_uuids() -> None:
    body = json.loads(encode(EventBatch(gateway_id=GATEWAY, events=(_event(),))))
    body["events"][0]["id"] = "1; DROP TABLE events"
    with pytest.raises(ProtocolError) as err:
        decode_events(json.dumps(body).encode(), gateway_id=GATEWAY)
    assert err.value.reason is Reason.INVALID_BODY
    assert "events.0.id" in err.value.detail


def test_presence() -> None:
    assert decode_presence(b"online") is Presence.ONLINE
    assert decode_presence(b"offline") is Presence.OFFLINE
    for bad in (b"", b"ONLINE", b"\xff", b"online" * 10):
        with pytest.raises(ProtocolError):
            decode_presence(bad)


@given(st.binary(max_size=2000))
def test_random_bodies_are_refused_precisely(data: bytes) -> None:
    for decode in (decode_events, decode_reported, decode_command_result):
        with pytest.raises(ProtocolError) as err:
            decode(data, gateway_id=GATEWAY)
        assert err.value.reason in {Reason.MALFORMED, Reason.INVALID_BODY, Reason.TOO_LARGE}


@given(st.integers(min_value=1, max_value=400))
def test_truncated_bodies_are_refused(cut: int) -> None:
    data = encode(EventBatch(gateway_id=GATEWAY, events=(_event(), _event())))
    truncated = data[: max(0, len(data) - cut)]
    with pytest.raises(ProtocolError) as err:
        decode_events(truncated, gateway_id=GATEWAY)
    assert err.value.reason in {Reason.MALFORMED, Reason.INVALID_BODY}
