"""Errors raised when a message does not honour the sync contract."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a message was refused; reported back to the cloud verbatim."""

    TOO_LARGE = "too_large"
    MALFORMED = "malformed"
    UNSUPPORTED_VERSION = "unsupported_version"
    WRONG_KIND = "wrong_kind"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    INVALID_BODY = "invalid_body"
    WRONG_GATEWAY = "wrong_gateway"
    STALE_VERSION = "stale_version"
    VERSION_CONFLICT = "version_conflict"
    EXPIRED = "expired"
    REPLAYED = "replayed"
    BAD_SEAL = "bad_seal"
    BAD_TOPIC = "bad_topic"


class ProtocolError(Exception):
    """A message was refused; `.reason` says why in one word, the text says it precisely."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
