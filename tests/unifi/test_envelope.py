"""The response envelope in all its shapes, and errors that say what to fix (pure, no I/O)."""

from __future__ import annotations

import json

import pytest

from agent.locks.unifi.client import ASSIGN_PIN, CREATE_VISITOR, DOORS, LOCK_RULE, UNLOCK, unwrap
from agent.locks.unifi.errors import (
    ApiError,
    ControllerFailure,
    DeviceOffline,
    NotFound,
    ParamsInvalid,
    PinInvalid,
    PinTaken,
    ProtocolError,
    RuleUnsupported,
    ScopeMissing,
    Throttled,
    TokenRejected,
    UnifiError,
)


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


@pytest.mark.parametrize(
    ("raw", "data"),
    [
        (body(code="SUCCESS", msg="success", data={"id": "d1"}), {"id": "d1"}),
        (body(code="SUCCESS", msg="success", data=[1, 2]), [1, 2]),
        (body(code="SUCCESS", msg="success", data=None), None),
        (body(code="SUCCESS", msg="success", data="success"), "success"),
        (body(code="SUCCESS", msg="success"), None),  # data missing entirely
        (body(code="success", data="x"), "x"),  # lower-case code
        (b"", None),  # no body at all
        (b"[1]", [1]),  # a bare list
    ],
)
def test_success_shapes(raw: bytes, data: object) -> None:
    assert unwrap(UNLOCK, 200, {}, raw).data == data


def test_pagination_beside_data_is_kept() -> None:
    raw = body(code="SUCCESS", data=[], pagination={"page_num": 1, "page_size": 25, "total": 3})
    assert unwrap(DOORS, 200, {}, raw).envelope["pagination"]["total"] == 3


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (200, "CODE_CREDS_PIN_CODE_CREDS_ALREADY_EXIST", PinTaken),
        (200, "CODE_CREDS_PIN_CODE_CREDS_LENGTH_INVALID", PinInvalid),
        (200, "CODE_PARAMS_INVALID", ParamsInvalid),
        (200, "CODE_RESOURCE_NOT_FOUND", NotFound),
        (200, "CODE_NOT_EXISTS", NotFound),
        (200, "CODE_SYSTEM_ERROR", ControllerFailure),
        (200, "CODE_DEVICE_DEVICE_OFFLINE", DeviceOffline),
        (200, "CODE_SOMETHING_NEW", ApiError),
        (400, "CODE_CREDS_PIN_CODE_CREDS_ALREADY_EXIST", PinTaken),
        (404, None, NotFound),
        (404, "CODE_RESOURCE_NOT_FOUND", NotFound),
        (500, None, ControllerFailure),
        (502, "CODE_SUCCESS_LOOKALIKE", ControllerFailure),
        (418, None, ApiError),
    ],
)
def test_errors_by_status_then_code(status: int, code: str | None, error: type[ApiError]) -> None:
    with pytest.raises(error) as caught:
        unwrap(ASSIGN_PIN, status, {}, body(code=code, msg="m", data=None))
    assert type(caught.value) is error
    assert caught.value.status == status
    assert caught.value.endpoint == "PUT /visitors/{id}/pin_codes"


def test_http_status_wins_over_a_success_code() -> None:
    with pytest.raises(ControllerFailure):
        unwrap(DOORS, 503, {}, body(code="SUCCESS", data=[]))


@pytest.mark.parametrize("code", ["CODE_AUTH_FAILED", "CODE_ACCESS_TOKEN_INVALID"])
def test_a_refused_token_says_which_token_is_wanted(code: str) -> None:
    with pytest.raises(TokenRejected) as caught:
        unwrap(DOORS, 401, {}, body(code=code, msg="The provided access token is invalid."))
    text = str(caught.value)
    assert code in text
    assert "UniFi Access API token" in text
    assert "other UniFi apps (Network, Protect" in text
    assert not caught.value.retryable


def test_a_missing_scope_is_named() -> None:
    with pytest.raises(ScopeMissing) as caught:
        unwrap(CREATE_VISITOR, 403, {}, body(code="CODE_UNAUTHORIZED", msg="not allowed"))
    assert caught.value.scope == "edit:visitor"
    assert "lacks the scope edit:visitor" in str(caught.value)


def test_throttling_carries_retry_after() -> None:
    with pytest.raises(Throttled) as caught:
        unwrap(DOORS, 429, {"retry-after": "7"}, b"")
    assert caught.value.retry_after_s == 7.0
    assert caught.value.retryable
    with pytest.raises(Throttled) as again:
        unwrap(DOORS, 429, {"retry-after": "soon"}, b"")
    assert again.value.retry_after_s is None


def test_a_door_without_lock_rules_is_told_apart() -> None:
    with pytest.raises(RuleUnsupported):
        unwrap(LOCK_RULE, 404, {}, b"")
    with pytest.raises(RuleUnsupported):
        unwrap(LOCK_RULE, 200, {}, body(code="CODE_RESOURCE_NOT_FOUND"))


def test_unreadable_success_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        unwrap(DOORS, 200, {}, b"<html>captive portal</html>")


def test_every_error_is_a_unifi_error() -> None:
    for cls in (TokenRejected, ScopeMissing, Throttled, PinTaken, RuleUnsupported, ProtocolError):
        assert issubclass(cls, UnifiError)
