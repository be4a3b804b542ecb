"""Ed25519-signed envelopes that carry the exact signed bytes, so nothing is re-serialised."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from enum import StrEnum

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from sync_protocol.errors import ProtocolError, Reason

ENVELOPE_VERSION = 1
ALGORITHM = "Ed25519"


class SignedKind(StrEnum):
    """What a signature vouches for; part of the signed bytes so one kind cannot pose as another."""

    DESIRED = "desired"
    COMMAND = "cmd"
    ACK = "ack"


def key_id(verify_key: VerifyKey) -> str:
    """A short, stable name for a verify key (first 8 bytes of its SHA-256, hex)."""
    return hashlib.sha256(bytes(verify_key)).hexdigest()[:16]


def _signed_bytes(kind: SignedKind, body: bytes) -> bytes:
    return b"kasify/v1/" + kind.value.encode() + b"\n" + body


def sign(kind: SignedKind, body: bytes, signing_key: SigningKey) -> bytes:
    """Wrap `body` in a signed envelope (compact JSON bytes)."""
    signature = signing_key.sign(_signed_bytes(kind, body)).signature
    envelope = {
        "v": ENVELOPE_VERSION,
        "alg": ALGORITHM,
        "kind": kind.value,
        "kid": key_id(signing_key.verify_key),
        "body": base64.b64encode(body).decode(),
        "sig": base64.b64encode(signature).decode(),
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def _b64(envelope: dict[str, object], field: str) -> bytes:
    value = envelope.get(field)
    if not isinstance(value, str):
        raise ProtocolError(Reason.MALFORMED, f"envelope field {field!r} must be a base64 string")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(Reason.MALFORMED, f"envelope field {field!r} is not base64") from None
    # Refuse non-canonical spellings, so an envelope cannot be altered and still verify.
    if base64.b64encode(decoded).decode() != value:
        raise ProtocolError(Reason.MALFORMED, f"envelope field {field!r} is not canonical base64")
    return decoded


def open_envelope(
    data: bytes, kind: SignedKind, verify_keys: Iterable[VerifyKey], *, max_bytes: int
) -> bytes:
    """Check size, shape and signature of an envelope and return the exact signed body."""
    if len(data) > max_bytes:
        raise ProtocolError(Reason.TOO_LARGE, f"{len(data)} bytes exceeds the {max_bytes} limit")
    try:
        envelope = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(Reason.MALFORMED, f"envelope is not JSON: {exc}") from None
    if not isinstance(envelope, dict):
        raise ProtocolError(Reason.MALFORMED, "envelope must be a JSON object")
    if envelope.get("v") != ENVELOPE_VERSION or envelope.get("alg") != ALGORITHM:
        raise ProtocolError(
            Reason.UNSUPPORTED_VERSION,
            f"envelope v={envelope.get('v')!r} alg={envelope.get('alg')!r}; "
            f"this agent speaks v={ENVELOPE_VERSION} alg={ALGORITHM}",
        )
    if envelope.get("kind") != kind.value:
        raise ProtocolError(
            Reason.WRONG_KIND, f"envelope is {envelope.get('kind')!r}, expected {kind.value!r}"
        )
    kid = envelope.get("kid")
    keys = {key_id(key): key for key in verify_keys}
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise ProtocolError(
            Reason.UNKNOWN_KEY, f"signed by key {kid!r}, trusted keys are {sorted(keys)}"
        )
    body = _b64(envelope, "body")
    signature = _b64(envelope, "sig")
    try:
        key.verify(_signed_bytes(kind, body), signature)
    except (BadSignatureError, ValueError):
        raise ProtocolError(
            Reason.BAD_SIGNATURE, f"signature does not match the body for key {kid}"
        ) from None
    return body
