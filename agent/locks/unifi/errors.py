"""Errors of the UniFi Access client: one tree, each carrying what went wrong and where.

Every error says whether trying again later can help (`retryable`); the ones that need a person
(`CertificateRefused`, `TokenRejected`, `ScopeMissing`, `NotConfigured`) say what to do.
"""

from __future__ import annotations

TRUST_COMMAND = "kasify-agent unifi trust"


class UnifiError(Exception):
    """Something about the UniFi Access controller went wrong."""

    retryable = False


class NotConfigured(UnifiError):
    """The controller is not trusted yet, or no token is configured; the message names the fix."""


class ControllerUnreachable(UnifiError, ConnectionError):
    """No connection to the controller (refused, reset, DNS, TLS failure)."""

    retryable = True

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"UniFi Access controller at {url} unreachable: {reason}")
        self.url = url
        self.reason = reason


class ControllerTimeout(ControllerUnreachable, TimeoutError):
    """The controller did not answer in time."""


class CertificateRefused(UnifiError):
    """The controller presented another certificate than the one we pinned."""

    def __init__(self, url: str, expected: str, actual: str) -> None:
        super().__init__(
            f"the UniFi Access controller at {url} presented a certificate with SHA-256 "
            f"fingerprint {actual}, not the trusted {expected}; refusing to send the token. "
            f"If the controller was reset or its certificate replaced, check it in the UniFi "
            f"console and run `{TRUST_COMMAND} {url}` again"
        )
        self.url = url
        self.expected = expected
        self.actual = actual


class ProtocolError(UnifiError):
    """The controller answered something we cannot read."""

    def __init__(self, endpoint: str, detail: str) -> None:
        super().__init__(f"{endpoint}: unreadable answer from the controller: {detail}")
        self.endpoint = endpoint


class ApiError(UnifiError):
    """The controller refused a request: HTTP status, its error code and message."""

    def __init__(
        self, endpoint: str, status: int, code: str | None, msg: str | None, text: str = ""
    ) -> None:
        detail = text or f"{code or 'no code'}: {msg or 'no message'}"
        super().__init__(f"{endpoint}: HTTP {status}, {detail}")
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.msg = msg


class TokenRejected(ApiError):
    """401: the token is not a valid UniFi Access API token (wrong app, deleted, mistyped)."""

    def __init__(self, endpoint: str, status: int, code: str | None, msg: str | None) -> None:
        super().__init__(
            endpoint,
            status,
            code,
            msg,
            f"the controller refused the API token ({code or 'no code'}: {msg or 'no message'}). "
            "It must be a UniFi Access API token (UniFi Access app > Settings > Advanced > API "
            "Token); tokens of other UniFi apps (Network, Protect, the UniFi OS console) and "
            "deleted or expired tokens are refused. Put the right one into [unifi] token",
        )


class ScopeMissing(ApiError):
    """403: the token lacks the permission scope this endpoint needs."""

    def __init__(
        self, endpoint: str, status: int, code: str | None, msg: str | None, scope: str
    ) -> None:
        super().__init__(
            endpoint,
            status,
            code,
            msg,
            f"the API token lacks the scope {scope} ({code or 'no code'}); edit the token in "
            "the UniFi Access app (Settings > Advanced > API Token) and grant it",
        )
        self.scope = scope


class NotFound(ApiError):
    """404 or CODE_RESOURCE_NOT_FOUND / CODE_NOT_EXISTS."""


class Throttled(ApiError):
    """429: too many requests; `retry_after_s` when the controller said how long to wait."""

    retryable = True

    def __init__(
        self,
        endpoint: str,
        status: int,
        code: str | None,
        msg: str | None,
        retry_after_s: float | None,
    ) -> None:
        super().__init__(endpoint, status, code, msg)
        self.retry_after_s = retry_after_s


class ControllerFailure(ApiError):
    """5xx or CODE_SYSTEM_ERROR: the controller failed; it may work again shortly."""

    retryable = True


class DeviceOffline(ApiError):
    """CODE_DEVICE_DEVICE_OFFLINE: the hub behind the door is offline."""

    retryable = True


class ParamsInvalid(ApiError):
    """CODE_PARAMS_INVALID: the controller did not accept what we sent."""


class PinTaken(ApiError):
    """CODE_CREDS_PIN_CODE_CREDS_ALREADY_EXIST: someone else on the controller holds this PIN."""


class PinInvalid(ApiError):
    """CODE_CREDS_PIN_CODE_CREDS_LENGTH_INVALID: the PIN's length is not allowed here."""


class RuleUnsupported(NotFound):
    """The door's hub has no lock rules (the controller answers 404)."""
