"""Schemathesis fuzzes every operation of the OpenAPI document, valid and invalid input, as the
owner of a property whose real ids fill the path parameters: no 5xx anywhere, every response
documented and shaped as documented, every 4xx a JSON body with a message a person can act on."""

from __future__ import annotations

import asyncio
import os
import secrets
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, CheckContext, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.cloud_api.conftest import Cloud
from tests.cloud_api.helpers import FakeAgent

EXAMPLES_PER_OPERATION = int(
    os.environ.get("KASIFY_FUZZ_EXAMPLES", "8")
)  # fuzzing phase; the examples phase adds the schema's own examples
MIN_DETAIL_CHARS = 8


def _ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def _seed(cloud: Cloud) -> dict[str, str]:
    """A property with everything in it, and the ids the fuzzer should use for path params."""
    return asyncio.run(_seed_async(cloud))


async def _seed_async(cloud: Cloud) -> dict[str, str]:
    token = cloud.user(f"fuzz-{secrets.token_hex(4)}@example.com")
    auth = {"Authorization": f"Bearer {token}"}
    async with cloud.client() as http:
        return await _create(http, token, auth)


async def _create(http: httpx.AsyncClient, token: str, auth: dict[str, str]) -> dict[str, str]:
    prop = _ok(
        await http.post("/properties", json={"name": "Fuzz", "timezone": "UTC"}, headers=auth)
    )
    pid = prop["id"]
    gateway = _ok(await http.post(f"/properties/{pid}/gateways", json={"name": "Pi"}, headers=auth))
    agent = FakeAgent.for_gateway(gateway["id"])
    _ok(await http.post("/gateways/enroll", json=agent.enroll_body(gateway["enrollmentToken"])))
    lock = _ok(
        await http.post(
            f"/properties/{pid}/smartlocks",
            json={
                "kind": "nuki",
                "deviceRef": "ABCDEF",
                "name": "Door",
                "gatewayId": gateway["id"],
            },
            headers=auth,
        )
    )
    booking = _ok(
        await http.post(
            f"/properties/{pid}/bookings",
            json={"guestName": "G", "from": "2030-01-01", "to": "2030-01-03"},
            headers=auth,
        )
    )
    task = _ok(
        await http.post(
            "/tasks",
            json={
                "propertyId": pid,
                "title": "T",
                "startsAt": "2030-01-03T11:00",
                "endsAt": "2030-01-03T12:00",
            },
            headers=auth,
        )
    )
    integration = _ok(
        await http.post(
            "/integrations/nuki", json={"name": "N", "gatewayId": gateway["id"]}, headers=auth
        )
    )
    invitation = _ok(
        await http.post(
            f"/properties/{pid}/invitations", json={"email": "f@example.com"}, headers=auth
        )
    )
    account = _ok(await http.get("/account", headers=auth), 200)
    return {
        "token": token,
        "property_id": pid,
        "gateway_id": gateway["id"],
        "lock_id": lock["id"],
        "booking_id": booking["id"],
        "code_id": booking["accessCodes"][0]["id"],
        "task_id": task["id"],
        "integration_id": integration["id"],
        "invitation_id": invitation["id"],
        "member_id": account["id"],
        "command_id": "0190c1d2-0000-7000-8000-000000000000",
    }


def actionable_errors(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every 4xx is JSON with a `detail` a person can act on (a 422 also lists fields)."""
    if not 400 <= response.status_code < 500:
        return None
    body = response.json()
    assert isinstance(body, dict), f"{response.status_code} body is not a JSON object"
    detail = body.get("detail")
    assert isinstance(detail, str), f"{response.status_code} without a string detail: {body}"
    assert len(detail) >= MIN_DETAIL_CHARS, f"{response.status_code} detail too short: {detail!r}"
    assert "Traceback" not in detail
    if response.status_code == 422:
        errors = body.get("errors")
        assert isinstance(errors, list), f"422 without errors: {body}"
        assert errors, f"422 with an empty errors list: {body}"
        for error in errors:
            assert error.get("field"), f"422 error entry without a field: {error}"
            assert error.get("message"), f"422 error entry without a message: {error}"
    return True


CALLS: list[str] = []
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    actionable_errors,
]


def test_no_server_error_and_every_error_is_actionable(cloud: Cloud) -> None:
    # Schemathesis' pytest plugin does not run on pytest 9 yet (it reads a private attribute
    # of the test node), so each operation gets its own Hypothesis test here.
    ids = _seed(cloud)
    auth = {"Authorization": f"Bearer {ids.pop('token')}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", cloud.app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 60
    for operation in operations:
        params = {name: ids[name] for name in _path_names(operation.path) if name in ids}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            label = f"{operation.method.upper()} {operation.path} ({mode.value})"
            try:
                _fuzz(operation.as_strategy(mode, path_parameters=params or None), auth)
            except Unsatisfiable:
                continue  # nothing to make invalid (no parameters, no body)
            except (AssertionError, BaseExceptionGroup) as exc:  # report every operation's
                failures.append(f"{label}: {exc}")
    assert not failures, "\n\n".join(failures[:10])
    assert len(set(CALLS)) == len(operations)  # every operation was called


def _fuzz(strategy: Any, auth: dict[str, str]) -> None:
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
    )
    @given(case=strategy)
    def run(case: Case) -> None:
        case.call_and_validate(headers=auth, checks=CHECKS)
        CALLS.append(case.operation.label)

    run()


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]
