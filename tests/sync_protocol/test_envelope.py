"""Signed envelopes: any change, a wrong key or a wrong kind is refused with a precise reason."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from sync_protocol.envelope import SignedKind, key_id, open_envelope, sign
from sync_protocol.errors import ProtocolError, Reason

KEY = SigningKey(b"\x01" * 32)
OTHER = SigningKey(b"\x02" * 32)
BODY = b'{"hello":"door","n":1}'
LIMIT = 4096


def test_round_trip_returns_the_exact_signed_bytes() -> None:
    envelope = sign(SignedKind.DESIRED, BODY, KEY)
    assert open_envelope(envelope, SignedKind.DESIRED, [KEY.verify_key], max_bytes=LIMIT) == BODY


def test_key_rotation_accepts_any_trusted_key() -> None:
    envelope = sign(SignedKind.DESIRED, BODY, OTHER)
    keys = [KEY.verify_key, OTHER.verify_key]
    assert open_envelope(envelope, SignedKind.DESIRED, keys, max_bytes=LIMIT) == BODY


def test_wrong_key_is_unknown() -> None:
    envelope = sign(SignedKind.DESIRED, BODY, OTHER)
    with pytest.raises(ProtocolError) as err:
        open_envelope(envelope, SignedKind.DESIRED, [KEY.verify_key], max_bytes=LIMIT)
    assert err.value.reason is Reason.UNKNOWN_KEY
    assert key_id(OTHER.verify_key) in err.value.detail


def test_forged_key_id_fails_the_signature() -> None:
    envelope = json.loads(sign(SignedKind.DESIRED, BODY, OTHER))
    envelope["kid"] = key_id(KEY.verify_key)
    data = json.dumps(envelope).encode()
    with pytest.raises(ProtocolError) as err:
        open_envelope(data, SignedKind.DESIRED, [KEY.verify_key], max_bytes=LIMIT)
    assert err.value.reason is Reason.BAD_SIGNATURE


def test_a_command_cannot_pose_as_desired_state() -> None:
    envelope = json.loads(sign(SignedKind.COMMAND, BODY, KEY))
    with pytest.raises(ProtocolError) as err:
        open_envelope(
            json.dumps(envelope).encode(), SignedKind.DESIRED, [KEY.verify_key], max_bytes=LIMIT
        )
    assert err.value.reason is Reason.WRONG_KIND
    envelope["kind"] = "desired"  # relabelled: the domain-separated signature no longer matches
    with pytest.raises(ProtocolError) as err:
        open_envelope(
            json.dumps(envelope).encode(), SignedKind.DESIRED, [KEY.verify_key], max_bytes=LIMIT
        )
    assert err.value.reason is Reason.BAD_SIGNATURE


def test_oversized_envelope_is_refused_before_parsing() -> None:
    envelope = sign(SignedKind.DESIRED, b"x" * 5000, KEY)
    with pytest.raises(ProtocolError) as err:
        open_envelope(envelope, SignedKind.DESIRED, [KEY.verify_key], max_bytes=LIMIT)
    assert err.value.reason is Reason.TOO_LARGE
    assert str(len(envelope)) in err.value.detail


def test_non_canonical_base64_is_refused() -> None:
    envelope = json.loads(sign(SignedKind.DESIRED, b"A", KEY))
    assert envelope["body"] == "QQ=="
    envelope["body"] = "QR=="  # decodes to the same byte, but is another spelling
    with pytest.raises(ProtocolError) as err:
        open_envelope(
            json.dumps(envelope).encode(), SignedKind.DESIRED, [KEY.verify_key], max_bytes=LIMIT
        )
    assert err.value.reason is Reason.MALFORMED


@settings(max_examples=400)
@given(position=st.integers(min_value=0), replacement=st.integers(min_value=0, max_value=255))
def test_any_changed_byte_is_refused(position: int, replacement: int) -> None:
    envelope = bytearray(sign(SignedKind.DESIRED, BODY, KEY))
    position %= len(envelope)
    if envelope[position] == replacement:
        replacement ^= 0x01
    envelope[position] = replacement
    with pytest.raises(ProtocolError) as err:
        open_envelope(bytes(envelope), SignedKind.DESIRED, [KEY.verify_key], max_bytes=LIMIT)
    assert err.value.detail  # every refusal says what was wrong


@given(st.binary(min_size=1, max_size=len(BODY)), st.integers(min_value=0))
def test_any_changed_body_fails_the_signature(patch: bytes, offset: int) -> None:
    envelope = json.loads(sign(SignedKind.DESIRED, BODY, KEY))
    body = bytearray(BODY)
    offset %= len(body)
    for i, byte in enumerate(patch):
        body[(offset + i) % len(body)] ^= byte or 0x80
    envelope["body"] = base64.b64encode(bytes(body)).decode()
    with pytest.raises(ProtocolError) as err:
        open_envelope(
            json.dumps(envelope).encode(), SignedKind.DESIRED, [KEY.verify_key], max_bytes=LIMIT
        )
    assert err.value.reason is Reason.BAD_SIGNATURE


@given(st.binary(max_size=600))
def test_random_bytes_never_escape_as_anything_but_a_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        open_envelope(data, SignedKind.DESIRED, [KEY.verify_key], max_bytes=LIMIT)


@pytest.mark.parametrize(
    ("envelope", "reason"),
    [
        (b"[]", Reason.MALFORMED),
        (b'{"v":2,"alg":"Ed25519"}', Reason.UNSUPPORTED_VERSION),
        (b'{"v":1,"alg":"RS256"}', Reason.UNSUPPORTED_VERSION),
        (b'{"v":1,"alg":"Ed25519","kind":"desired","kid":null}', Reason.UNKNOWN_KEY),
        (b"\xff\xfe", Reason.MALFORMED),
    ],
)
def test_malformed_envelopes(envelope: bytes, reason: Reason) -> None:
    with pytest.raises(ProtocolError) as err:
        open_envelope(envelope, SignedKind.DESIRED, [KEY.verify_key], max_bytes=LIMIT)
    assert err.value.reason is reason


def test_missing_body_or_signature_is_malformed() -> None:
    envelope = json.loads(sign(SignedKind.DESIRED, BODY, KEY))
    for field in ("body", "sig"):
        broken = dict(envelope)
        del broken[field]
        with pytest.raises(ProtocolError) as err:
            open_envelope(
                json.dumps(broken).encode(), SignedKind.DESIRED, [KEY.verify_key], max_bytes=LIMIT
            )
        assert err.value.reason is Reason.MALFORMED
        assert field in err.value.detail
