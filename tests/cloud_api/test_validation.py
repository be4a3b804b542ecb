"""Invalid requests get a precise 422 and store nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.cloud_api.helpers import Host

GOOD_BOOKING = {"guestName": "Ana", "from": "2030-07-01", "to": "2030-07-03"}


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"name": "X", "timezone": "Mars/Olympus"}, "timezone", "unknown IANA time zone"),
        ({"name": "X", "timezone": "Europe/Madird"}, "timezone", "did you mean 'Europe/Madrid'"),
        ({"name": "X" * 121, "timezone": "UTC"}, "name", "at most 120 characters"),
        ({"name": 42, "timezone": "UTC"}, "name", "valid string"),
        ({"name": "X", "timezone": "UTC", "checkInTime": "25:00"}, "checkInTime", "hour value"),
        ({"name": "X", "timezone": "UTC", "checkInTime": 1500}, "checkInTime", "like '15:00'"),
        ({"name": "X", "timezone": "UTC", "checkOutTime": "11:00:30"}, "checkOutTime", "minutes"),
        (
            {"name": "X", "timezone": "UTC", "earlyCheckInBufferMinutes": "60"},
            "earlyCheckInBufferMinutes",
            "valid integer",
        ),
        (
            {"name": "X", "timezone": "UTC", "lateCheckOutBufferMinutes": -5},
            "lateCheckOutBufferMinutes",
            "greater than or equal to 0",
        ),
        (
            {"name": "X", "timezone": "UTC", "checkinTime": "15:00"},
            "checkinTime",
            "Extra inputs are not permitted",
        ),
        (
            {"name": "X", "timezone": "UTC", "earlyCheckInBufferMinutes": 721},
            "earlyCheckInBufferMinutes",
            "less than or equal to 720",
        ),
        ({"timezone": "UTC"}, "name", "is required"),
    ],
)
async def test_bad_property_is_422(
    alice: Host, body: dict[str, Any], field: str, words: str
) -> None:
    before = (await alice.get("/properties")).json()["total"]
    response = await alice.post("/properties", body)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert errors[0]["field"] == field, errors
    assert words in errors[0]["message"]
    assert field in response.json()["detail"]
    assert (await alice.get("/properties")).json()["total"] == before


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"to": "2030-07-01"}, "to", "must be after from"),
        ({"to": "2030-06-28"}, "to", "must be after from"),
        ({"from": "2030-02-30"}, "from", "day value is outside expected range"),
        ({"from": 1893456000}, "from", "like '2025-03-28'"),
        ({"from": "2130-01-01", "to": "2130-01-02"}, "from", "between 2000-01-01 and 2099-12-31"),
        ({"guestName": ""}, "guestName", "at least 1 character"),
        ({"guestName": "   "}, "guestName", "at least 1 character"),
        ({"guestName": "x" * 100_000}, "guestName", "at most 120 characters"),
        ({"guestEmail": "not-an-email"}, "guestEmail", "email address"),
        ({"guestPhone": "call me"}, "guestPhone", "should match pattern"),
        ({"channelId": ["a"]}, "channelId", "valid string"),
        ({"status": "cancelled"}, "status", "Extra inputs are not permitted"),
    ],
)
async def test_bad_booking_is_422_and_nothing_is_stored(
    alice: Host, changes: dict[str, Any], field: str, words: str
) -> None:
    prop = await alice.new_property()
    response = await alice.post(f"/properties/{prop['id']}/bookings", {**GOOD_BOOKING, **changes})
    assert response.status_code == 422, response.text
    error = response.json()["errors"][0]
    assert (error["field"], words in error["message"]) == (field, True), error
    listed = (await alice.get(f"/properties/{prop['id']}/bookings")).json()
    assert listed["total"] == 0


async def test_body_that_is_not_json_is_422(alice: Host) -> None:
    prop = await alice.new_property()
    response = await alice.client.post(
        f"/properties/{prop['id']}/bookings",
        content=b"{not json",
        headers={**alice.auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"size": 101}, "size"),
        ({"size": 0}, "size"),
        ({"page": -1}, "page"),
        ({"page": "x"}, "page"),
    ],
)
async def test_bad_pagination_is_422(alice: Host, params: dict[str, Any], field: str) -> None:
    response = await alice.get("/bookings", params=params)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


async def test_errors_never_leak_stack_traces(alice: Host) -> None:
    response = await alice.client.post(
        "/properties",
        content=b"\xff\xfe",
        headers={**alice.auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert "Traceback" not in response.text
    wrong_method = await alice.client.patch("/properties", headers=alice.auth)
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"detail": "PATCH is not allowed on /properties"}


async def test_huge_bodies_are_refused_before_parsing(alice: Host) -> None:
    huge = b'{"name": "' + b"x" * 2_000_000 + b'", "timezone": "UTC"}'
    response = await alice.client.post(
        "/properties", content=huge, headers={**alice.auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert "exceeds the 1048576-byte limit" in response.json()["detail"]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 100_000

    streamed = await alice.client.post(
        "/properties", content=chunks(), headers={**alice.auth, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
