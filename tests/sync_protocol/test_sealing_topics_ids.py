"""PIN sealing, topic names and UUIDv7 ids."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.public import PrivateKey

from sync_protocol.errors import ProtocolError, Reason
from sync_protocol.ids import uuid7, uuid7_ms
from sync_protocol.sealing import seal_pin, unseal_pin
from sync_protocol.topics import Channel, parse_topic, shared, topic


@given(st.text(alphabet="0123456789", min_size=4, max_size=12))
def test_seal_round_trip(pin: str) -> None:
    key = PrivateKey.generate()
    assert unseal_pin(seal_pin(pin, "code-1", key.public_key), "code-1", key) == pin


def test_sealed_pins_differ_each_time() -> None:
    key = PrivateKey.generate()
    assert seal_pin("345678", "c", key.public_key) != seal_pin("345678", "c", key.public_key)


def test_another_gateways_key_cannot_unseal() -> None:
    sealed = seal_pin("345678", "code-1", PrivateKey.generate().public_key)
    with pytest.raises(ProtocolError) as err:
        unseal_pin(sealed, "code-1", PrivateKey.generate())
    assert err.value.reason is Reason.BAD_SEAL


def test_a_pin_moved_to_another_code_is_refused() -> None:
    key = PrivateKey.generate()
    sealed = seal_pin("345678", "code-1", key.public_key)
    with pytest.raises(ProtocolError, match="sealed for another code"):
        unseal_pin(sealed, "code-2", key)


@pytest.mark.parametrize("pin", ["", "123", "1234567890123", "12a456", "١٢٣٤٥٦"])
def test_only_digit_pins_can_be_sealed(pin: str) -> None:
    with pytest.raises(ValueError, match="4 to 12 digits"):
        seal_pin(pin, "c", PrivateKey.generate().public_key)


def test_topics_round_trip() -> None:
    for channel in Channel:
        assert parse_topic(topic("gw-1", channel)) == ("gw-1", channel)
    assert shared("kasify/v1/gw/+/events") == "$share/cloud/kasify/v1/gw/+/events"


@pytest.mark.parametrize("gateway", ["", "+", "#", "a/b", "cloud", "x" * 65, "gw 1", "-lead"])
def test_unsafe_gateway_ids_are_refused(gateway: str) -> None:
    with pytest.raises(ProtocolError) as err:
        topic(gateway, Channel.DESIRED)
    assert err.value.reason is Reason.WRONG_GATEWAY


@pytest.mark.parametrize(
    "name", ["kasify/v1/gw/gw-1", "kasify/v2/gw/gw-1/desired", "kasify/v1/gw/gw-1/secrets", "x"]
)
def test_foreign_topics_are_refused(name: str) -> None:
    with pytest.raises(ProtocolError) as err:
        parse_topic(name)
    assert err.value.reason is Reason.BAD_TOPIC


def test_uuid7_layout_and_order() -> None:
    ids = [uuid7(1_700_000_000_000 + i) for i in range(50)]
    assert ids == sorted(ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert uuid7_ms(ids[3]) == 1_700_000_000_003
    assert len({uuid7(5) for _ in range(1000)}) == 1000
