"""The OpenAPI document is accurate, and the request log has one line per request, no secrets."""

from __future__ import annotations

import logging
import secrets

import httpx
import pytest

from tests.cloud_api.conftest import Cloud

EXPECTED = {
    ("post", "/auth/register"),
    ("post", "/auth/login"),
    ("post", "/auth/logout"),
    ("get", "/account"),
    ("put", "/account"),
    ("get", "/properties"),
    ("post", "/properties"),
    ("get", "/properties/{property_id}"),
    ("put", "/properties/{property_id}"),
    ("delete", "/properties/{property_id}"),
    ("get", "/properties/{property_id}/invitations"),
    ("post", "/properties/{property_id}/invitations"),
    ("delete", "/properties/{property_id}/invitations/{invitation_id}"),
    ("post", "/invitations/{token}/accept"),
    ("get", "/properties/{property_id}/members"),
    ("patch", "/properties/{property_id}/members/{member_id}"),
    ("delete", "/properties/{property_id}/members/{member_id}"),
    ("get", "/properties/{property_id}/gateways"),
    ("post", "/properties/{property_id}/gateways"),
    ("get", "/gateways/{gateway_id}"),
    ("delete", "/gateways/{gateway_id}"),
    ("post", "/gateways/enroll"),
    ("get", "/properties/{property_id}/smartlocks"),
    ("post", "/properties/{property_id}/smartlocks"),
    ("delete", "/properties/{property_id}/smartlocks/{lock_id}"),
    ("post", "/smartlocks/{lock_id}/actions"),
    ("get", "/smartlocks/{lock_id}/actions/{command_id}"),
    ("get", "/integrations"),
    ("get", "/integrations/nuki/{integration_id}/smartlocks"),
    ("get", "/integrations/unifi/{integration_id}/smartlocks"),
    ("get", "/integrations/{integration}"),
    ("post", "/integrations/{integration}"),
    ("put", "/integrations/{integration}/{integration_id}"),
    ("delete", "/integrations/{integration}/{integration_id}"),
    ("get", "/properties/{property_id}/bookings"),
    ("post", "/properties/{property_id}/bookings"),
    ("get", "/properties/{property_id}/bookings/current"),
    ("post", "/properties/{property_id}/bookings/import"),
    ("get", "/bookings"),
    ("get", "/bookings/{booking_id}"),
    ("patch", "/bookings/{booking_id}"),
    ("post", "/bookings/{booking_id}/access-codes"),
    ("get", "/bookings/{booking_id}/access-codes"),
    ("get", "/properties/{property_id}/access-codes"),
    ("post", "/properties/{property_id}/access-codes"),
    ("get", "/access-codes/{code_id}"),
    ("delete", "/access-codes/{code_id}"),
    ("get", "/bookings/{booking_id}/checkin"),
    ("post", "/bookings/{booking_id}/checkin/guests"),
    ("get", "/tasks"),
    ("post", "/tasks"),
    ("get", "/properties/{property_id}/tasks"),
    ("get", "/tasks/{task_id}"),
    ("patch", "/tasks/{task_id}"),
    ("delete", "/tasks/{task_id}"),
    ("post", "/tasks/{task_id}/start"),
    ("post", "/tasks/{task_id}/complete"),
    ("get", "/properties/{property_id}/calendar"),
    ("get", "/calendar"),
    ("get", "/timeline"),
    ("get", "/timeline/activity"),
    ("get", "/healthz"),
    ("get", "/metrics"),
}
# Operations that answer with more than one success status.
SEVERAL_SUCCESSES = {("post", "/smartlocks/{lock_id}/actions"): {"200", "202"}}
NOT_JSON = {("get", "/metrics")}


async def test_openapi_lists_every_endpoint_with_typed_responses(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    operations = {
        (method, path): op for path, item in spec["paths"].items() for method, op in item.items()
    }
    assert set(operations) == EXPECTED
    for (method, path), op in operations.items():
        success = [code for code in op["responses"] if code.startswith("2")]
        if (method, path) in SEVERAL_SUCCESSES:
            assert set(success) == SEVERAL_SUCCESSES[method, path]
        else:
            assert len(success) == 1, (method, path)
        if success[0] != "204" and (method, path) not in NOT_JSON:
            schema = op["responses"][success[0]]["content"]["application/json"]["schema"]
            assert "$ref" in schema, (method, path)
        if "422" in op["responses"]:
            ref = op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ValidationErrorPublic"), (method, path)
    booking = spec["components"]["schemas"]["BookingCreate"]["properties"]
    assert {"from", "to", "guestName"} <= set(booking)
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "mqtt": "disabled",
        "ingest": False,
    }


async def test_request_log_has_one_line_per_request_and_no_secrets(
    client: httpx.AsyncClient, cloud: Cloud, caplog: pytest.LogCaptureFixture
) -> None:
    password = "pw-" + secrets.token_hex(8)
    email = f"log-{secrets.token_hex(4)}@example.com"
    with caplog.at_level(logging.DEBUG):
        registered = await client.post(
            "/auth/register", json={"email": email, "password": password}
        )
        token = registered.json()["token"]
        await client.get("/account", headers={"Authorization": f"Bearer {token}"})
        await client.get("/properties", params={"size": 5})
    access = [r.getMessage() for r in caplog.records if r.name == "cloud_api.access"]
    assert len(access) == 3
    assert access[0].startswith("POST /auth/register 201 ")
    assert access[1].startswith("GET /account 200 ")
    assert access[2].startswith("GET /properties 401 ")
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert password not in everything
    assert token not in everything
