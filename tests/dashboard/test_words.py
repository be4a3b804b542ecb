"""What the dashboard says: activity entries, durations and errors in a host's words."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cloud_api.dashboard.words import describe, duration, say
from cloud_api.errors import Conflict, InvalidInput, NotFound, PermissionDenied, ServiceUnavailable
from cloud_api.schemas.activity import ActivityPublic

AT = datetime(2030, 7, 1, 16, 5, tzinfo=UTC)


def _entry(kind: str, **fields: Any) -> ActivityPublic:
    values: dict[str, Any] = {
        "id": "e1",
        "type": kind,
        "occurred_at": AT,
        "received_at": AT,
        "clock_trusted": True,
        "method": None,
        "result": None,
        "details": {},
        "property_id": "p",
        "property_name": "Casa Azul",
        "gateway_id": "g",
        "gateway_name": "Hall Pi",
        "lock_id": "l",
        "lock_name": "Front door",
        "code_id": None,
        "code_kind": None,
        "booking_id": None,
        "guest_name": None,
        "task_id": None,
        **fields,
    }
    return ActivityPublic(**values)


@pytest.mark.parametrize(
    ("entry", "title", "detail", "tone"),
    [
        (
            _entry(
                "access_granted",
                method="gateway_keypad",
                result="granted",
                code_id="c",
                code_kind="guest",
                guest_name="Ada",
            ),
            "Ada opened Front door",
            "Code typed at the door keypad",
            "ok",
        ),
        (
            _entry("access_granted", result="error", details={"error": "relay refused"}),
            "A code: code accepted, door did not open",
            "relay refused",
            "warn",
        ),
        (
            _entry("access_denied", details={"reason": "expired"}, code_id="c", code_kind="crew"),
            "Code refused at Front door (Crew code)",
            "The code has expired",
            "deny",
        ),
        (
            _entry("keypad_lockout", result="locked", details={"duration_s": 30, "failures": 5}),
            "Keypad locked for 30 s",
            "After 5 wrong codes at Front door",
            "deny",
        ),
        (
            _entry(
                "unlocked",
                method="remote",
                result="ok",
                details={"action": "unlock", "requested_by": "ana@example.com"},
            ),
            "Front door unlocked",
            "Remotely by ana@example.com",
            "info",
        ),
        (
            _entry("unlocked", method="remote", result="failed", details={"detail": "jammed"}),
            "Remote action on Front door failed",
            "jammed",
            "warn",
        ),
        (_entry("battery_low"), "Battery critical on Front door", "", "warn"),
        (_entry("gateway_offline", lock_name=None), "Gateway Hall Pi went offline", "", "warn"),
        (
            _entry("code_failed", code_kind="guest", guest_name="Ada", details={"error": "full"}),
            "Ada: code could not be set on Front door",
            "full",
            "warn",
        ),
        (_entry("something_new"), "Something new", "", "info"),
    ],
)
def test_activity_in_words(entry: ActivityPublic, title: str, detail: str, tone: str) -> None:
    line = describe(entry)
    assert (line.title, line.detail, line.tone) == (title, detail, tone)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(5, "5 s"), (125, "2 min"), (3600, "1 h"), (3 * 3600 + 300, "3 h 5 min"), (86400, "1 day")],
)
def test_durations(seconds: float, words: str) -> None:
    assert duration(seconds) == words


def test_errors_in_words() -> None:
    denied = PermissionDenied("your role at property p is crew; to change it you need owner")
    assert say(denied).startswith("Your role does not allow this.")
    assert "could not find this booking" in say(NotFound("booking b not found"), "this booking")
    assert say(InvalidInput("guestName", "is required")) == "Guest name: is required"
    assert say(ServiceUnavailable("mqtt down")).startswith("The cloud cannot reach the gateways")
    offline = Conflict("gateway g of lock l is offline (last seen 2030-07-01 10:00 UTC); ...")
    assert say(offline).startswith("The gateway is offline")
    assert say(Conflict("something else entirely")) == "Something else entirely"
