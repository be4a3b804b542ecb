"""Encode and decode each channel's body: size limits, signatures and the version rule."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from nacl.signing import SigningKey, VerifyKey
from pydantic import BaseModel, ValidationError

from sync_protocol.envelope import SignedKind, open_envelope, sign
from sync_protocol.errors import ProtocolError, Reason
from sync_protocol.models import (
    Command,
    CommandResult,
    DesiredState,
    EventAck,
    EventBatch,
    Presence,
    ReportedState,
)
from sync_protocol.topics import Channel

KIB = 1024
MAX_BYTES: dict[Channel, int] = {
    Channel.DESIRED: 4096 * KIB,  # ~10,000 codes of ~300 bytes each, signed and base64'd
    Channel.REPORTED: 2048 * KIB,
    Channel.EVENTS: 256 * KIB,
    Channel.PRESENCE: 16,
    Channel.CMD: 8 * KIB,
    Channel.CMD_RESULT: 8 * KIB,
    Channel.ACK: 16 * KIB,  # 200 event ids, signed
}
MAX_COMMAND_TTL = timedelta(minutes=10)  # bounds how long an agent must remember command ids

M = TypeVar("M", bound=BaseModel)


def describe(exc: ValidationError, limit: int = 3) -> str:
    """A short, precise account of what failed validation: field path and message."""
    parts = []
    for error in exc.errors()[:limit]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def parse(model: type[M], body: bytes, channel: Channel) -> M:
    """Validate a JSON body against a model within the channel's size limit."""
    limit = MAX_BYTES[channel]
    if len(body) > limit:
        raise ProtocolError(Reason.TOO_LARGE, f"{len(body)} bytes exceeds the {limit} limit")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise ProtocolError(Reason.MALFORMED, f"not JSON: {describe(exc, 1)}") from None
        if any(e["loc"] == ("v",) for e in exc.errors()):
            raise ProtocolError(Reason.UNSUPPORTED_VERSION, describe(exc, 1)) from None
        raise ProtocolError(Reason.INVALID_BODY, describe(exc)) from None


def encode(model: BaseModel) -> bytes:
    """Compact JSON bytes of a model."""
    return model.model_dump_json(exclude_none=False).encode()


def _check_gateway(found: str, expected: str) -> None:
    if found != expected:
        raise ProtocolError(
            Reason.WRONG_GATEWAY, f"message is for gateway {found!r}, this is {expected!r}"
        )


# --- desired state (cloud -> agent, signed) ---------------------------------------------------


def encode_desired(state: DesiredState, signing_key: SigningKey) -> bytes:
    """Sign a desired state; the result is what the cloud publishes, retained."""
    return sign(SignedKind.DESIRED, encode(state), signing_key)


@dataclass(frozen=True, slots=True)
class VerifiedDesired:
    """A desired document that passed every check, with the digest of its signed bytes."""

    state: DesiredState
    digest: str
    duplicate: bool  # same version and bytes as the applied one: nothing to do


def decode_desired(
    data: bytes,
    verify_keys: Iterable[VerifyKey],
    *,
    gateway_id: str,
    applied_version: int,
    applied_digest: str | None,
) -> VerifiedDesired:
    """Verify a desired document and apply the version rule; raise ProtocolError with the reason.

    Version rule: newer than the applied version is applied; the same version with the same signed
    bytes is a harmless redelivery (the broker resends the retained message on every reconnect);
    the same version with other bytes is a conflict; an older version is stale.
    """
    limit = MAX_BYTES[Channel.DESIRED]
    body = open_envelope(data, SignedKind.DESIRED, verify_keys, max_bytes=limit)
    state = parse(DesiredState, body, Channel.DESIRED)
    _check_gateway(state.gateway_id, gateway_id)
    digest = hashlib.sha256(body).hexdigest()
    if state.version < applied_version:
        raise ProtocolError(
            Reason.STALE_VERSION,
            f"version {state.version} is older than the applied version {applied_version}",
        )
    if state.version == applied_version:
        if digest != applied_digest:
            raise ProtocolError(
                Reason.VERSION_CONFLICT,
                f"version {state.version} is already applied with different content",
            )
        return VerifiedDesired(state, digest, duplicate=True)
    return VerifiedDesired(state, digest, duplicate=False)


# --- commands (cloud -> agent, signed) --------------------------------------------------------


def encode_command(command: Command, signing_key: SigningKey) -> bytes:
    """Sign a command."""
    return sign(SignedKind.COMMAND, encode(command), signing_key)


def decode_command(
    data: bytes,
    verify_keys: Iterable[VerifyKey],
    *,
    gateway_id: str,
    now: datetime,
    seen: Callable[[str], bool],
) -> Command:
    """Verify a command; refuse it when expired, replayed or valid for too long."""
    body = open_envelope(data, SignedKind.COMMAND, verify_keys, max_bytes=MAX_BYTES[Channel.CMD])
    command = parse(Command, body, Channel.CMD)
    _check_gateway(command.gateway_id, gateway_id)
    if command.expires_at - command.issued_at > MAX_COMMAND_TTL:
        raise ProtocolError(
            Reason.INVALID_BODY,
            f"command {command.id} is valid for longer than {MAX_COMMAND_TTL}",
        )
    if now >= command.expires_at:
        raise ProtocolError(
            Reason.EXPIRED, f"command {command.id} expired at {command.expires_at.isoformat()}"
        )
    if seen(command.id):
        raise ProtocolError(Reason.REPLAYED, f"command {command.id} was already received")
    return command


# --- event acknowledgements (cloud -> agent, signed) ------------------------------------------


def encode_ack(ack: EventAck, signing_key: SigningKey) -> bytes:
    """Sign an acknowledgement of stored events."""
    return sign(SignedKind.ACK, encode(ack), signing_key)


def decode_ack(data: bytes, verify_keys: Iterable[VerifyKey], *, gateway_id: str) -> EventAck:
    """Verify an acknowledgement meant for this gateway."""
    body = open_envelope(data, SignedKind.ACK, verify_keys, max_bytes=MAX_BYTES[Channel.ACK])
    ack = parse(EventAck, body, Channel.ACK)
    _check_gateway(ack.gateway_id, gateway_id)
    return ack


# --- agent -> cloud (unsigned; the broker's ACL vouches for the sender) -----------------------


def decode_reported(data: bytes, *, gateway_id: str) -> ReportedState:
    """Parse a reported state published on `gateway_id`'s topic."""
    state = parse(ReportedState, data, Channel.REPORTED)
    _check_gateway(state.gateway_id, gateway_id)
    return state


def decode_events(data: bytes, *, gateway_id: str) -> EventBatch:
    """Parse an event batch published on `gateway_id`'s topic."""
    batch = parse(EventBatch, data, Channel.EVENTS)
    _check_gateway(batch.gateway_id, gateway_id)
    return batch


def decode_command_result(data: bytes, *, gateway_id: str) -> CommandResult:
    """Parse a command result published on `gateway_id`'s topic."""
    result = parse(CommandResult, data, Channel.CMD_RESULT)
    _check_gateway(result.gateway_id, gateway_id)
    return result


def decode_presence(data: bytes) -> Presence:
    """Parse a presence body (`online` or `offline`)."""
    if len(data) > MAX_BYTES[Channel.PRESENCE]:
        raise ProtocolError(Reason.TOO_LARGE, f"presence body of {len(data)} bytes")
    try:
        return Presence(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError(
            Reason.MALFORMED, f"presence must be 'online' or 'offline', got {data[:16]!r}"
        ) from None
