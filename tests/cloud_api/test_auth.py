"""Registration, login, bearer tokens and the account."""

from __future__ import annotations

import secrets
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from cloud_api.db import utcnow
from cloud_api.errors import TooManyRequests
from cloud_api.models import ApiToken
from cloud_api.services.auth import token_digest
from cloud_api.services.login_throttle import PER_ADDRESS, LoginThrottle
from tests.cloud_api.conftest import Cloud


def _email() -> str:
    return f"host-{secrets.token_hex(6)}@Example.com"


async def _register(
    client: httpx.AsyncClient,
    email: str,
    password: str = "s3cret-pass",  # noqa: S107
) -> str:
    response = await client.post(
        "/auth/register", json={"email": email, "password": password, "name": "Host"}
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def test_register_returns_a_token_that_opens_the_account(client: httpx.AsyncClient) -> None:
    email = _email()
    response = await client.post(
        "/auth/register", json={"email": email, "password": "s3cret-pass", "name": "Ana"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["tokenType"] == "bearer"
    assert body["user"]["email"] == email.lower()
    assert "s3cret-pass" not in response.text
    account = await client.get("/account", headers={"Authorization": f"Bearer {body['token']}"})
    assert account.status_code == 200
    assert account.json() == body["user"]


async def test_register_twice_is_a_conflict(client: httpx.AsyncClient) -> None:
    email = _email()
    await _register(client, email)
    again = await client.post("/auth/register", json={"email": email.upper(), "password": "x" * 9})
    assert again.status_code == 409
    assert "already exists" in again.json()["detail"]


async def test_login_with_right_and_wrong_password(client: httpx.AsyncClient) -> None:
    email = _email()
    await _register(client, email, "right-password")
    good = await client.post("/auth/login", json={"email": email, "password": "right-password"})
    assert good.status_code == 200
    assert good.json()["token"].startswith("kas_")
    bad = await client.post("/auth/login", json={"email": email, "password": "wrong-password"})
    unknown = await client.post(
        "/auth/login", json={"email": _email(), "password": "right-password"}
    )
    assert bad.status_code == unknown.status_code == 401
    # The same answer for both: the API does not reveal which emails have accounts.
    assert bad.json() == unknown.json() == {"detail": "email or password is wrong"}


async def test_missing_and_garbage_tokens_are_401(client: httpx.AsyncClient) -> None:
    missing = await client.get("/properties")
    assert missing.status_code == 401
    assert "missing bearer token" in missing.json()["detail"]
    assert missing.headers["www-authenticate"] == "Bearer"
    garbage = await client.get("/properties", headers={"Authorization": "Bearer nope"})
    assert garbage.status_code == 401
    assert "unknown bearer token" in garbage.json()["detail"]


async def test_logout_revokes_the_token(client: httpx.AsyncClient) -> None:
    token = await _register(client, _email())
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/properties", headers=headers)).status_code == 200
    assert (await client.post("/auth/logout", headers=headers)).status_code == 204
    after = await client.get("/properties", headers=headers)
    assert after.status_code == 401
    assert "revoked" in after.json()["detail"]


async def test_expired_token_is_401(client: httpx.AsyncClient, cloud: Cloud) -> None:
    token = await _register(client, _email())
    with cloud.ctx.db.session() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.token_hash == token_digest(token))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    response = await client.get("/account", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


async def test_only_the_hash_of_a_token_is_stored(client: httpx.AsyncClient, cloud: Cloud) -> None:
    token = await _register(client, _email())
    with cloud.ctx.db.session() as session:
        hashes = set(session.scalars(select(ApiToken.token_hash)))
    assert token_digest(token) in hashes
    assert token not in hashes


async def test_update_account_name_and_password(client: httpx.AsyncClient) -> None:
    email = _email()
    first = await _register(client, email, "old-password")
    second = (
        await client.post("/auth/login", json={"email": email, "password": "old-password"})
    ).json()["token"]
    headers = {"Authorization": f"Bearer {first}"}

    renamed = await client.put("/account", json={"name": "Ana García"}, headers=headers)
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Ana García"

    refused = await client.put("/account", json={"password": "new-password"}, headers=headers)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "currentPassword"

    changed = await client.put(
        "/account",
        json={"password": "new-password", "currentPassword": "old-password"},
        headers=headers,
    )
    assert changed.status_code == 200
    # The session that changed it stays; every other token is revoked.
    assert (await client.get("/account", headers=headers)).status_code == 200
    other = await client.get("/account", headers={"Authorization": f"Bearer {second}"})
    assert other.status_code == 401
    login = await client.post("/auth/login", json={"email": email, "password": "new-password"})
    assert login.status_code == 200


async def test_register_validation(client: httpx.AsyncClient) -> None:
    short = await client.post("/auth/register", json={"email": _email(), "password": "short"})
    assert short.status_code == 422
    assert short.json()["errors"] == [
        {"field": "password", "message": "String should have at least 8 characters"}
    ]
    assert "short" not in short.json()["detail"].replace("at least", "")  # password not echoed
    bad_email = await client.post("/auth/register", json={"email": "nope", "password": "x" * 10})
    assert bad_email.status_code == 422
    assert bad_email.json()["errors"][0]["field"] == "email"


async def test_repeated_wrong_passwords_pause_logins_to_that_account_from_that_address(
    cloud: Cloud,
) -> None:
    email = _email()
    here = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=cloud.app, client=("203.0.113.7", 4000)),
        base_url="http://cloud.test",
    )
    there = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=cloud.app, client=("198.51.100.9", 4000)),
        base_url="http://cloud.test",
    )
    async with here, there:
        await _register(here, email, "right-password")
        for _ in range(PER_ADDRESS):
            wrong = await here.post("/auth/login", json={"email": email, "password": "guess-123"})
            assert wrong.status_code == 401
        paused = await here.post(
            "/auth/login", json={"email": email.upper(), "password": "right-password"}
        )
        assert paused.status_code == 429  # even the right password, even spelled differently
        assert (
            "too many failed logins for this account; try again in 15 minutes"
            in (paused.json()["detail"])
        )
        assert 0 < int(paused.headers["Retry-After"]) <= 15 * 60
        # The host, logging in from elsewhere, is not locked out by someone guessing.
        elsewhere = await there.post(
            "/auth/login", json={"email": email, "password": "right-password"}
        )
        assert elsewhere.status_code == 200
        # Another account from the guessing address is not affected either.
        other = _email()
        await _register(there, other, "other-password")
        ok = await here.post("/auth/login", json={"email": other, "password": "other-password"})
        assert ok.status_code == 200


def test_the_login_throttle_window_slides_and_a_success_clears_the_address() -> None:
    now = [1000.0]
    throttle = LoginThrottle(per_address=3, per_account=5, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        throttle.check("a@example.com", "10.0.0.1")
        throttle.failed("a@example.com", "10.0.0.1")
        now[0] += 10
    with pytest.raises(TooManyRequests) as refused:
        throttle.check("A@example.com ", "10.0.0.1")
    assert refused.value.retry_after_s == 30  # the first failure leaves the window at 1060
    now[0] = 1060.5
    throttle.check("a@example.com", "10.0.0.1")  # one failure aged out: one more try
    throttle.failed("a@example.com", "10.0.0.1")
    with pytest.raises(TooManyRequests):
        throttle.check("a@example.com", "10.0.0.1")
    # Five failures from different addresses pause the account everywhere...
    for i in range(2):
        throttle.failed("a@example.com", f"10.0.1.{i}")
    with pytest.raises(TooManyRequests):
        throttle.check("a@example.com", "10.0.2.1")
    # ...until the window has passed; a success clears only its own address's count.
    now[0] += 61
    throttle.failed("b@example.com", "10.0.0.1")
    throttle.failed("b@example.com", "10.0.0.1")
    throttle.succeeded("b@example.com", "10.0.0.1")
    throttle.failed("b@example.com", "10.0.0.1")
    throttle.failed("b@example.com", "10.0.0.1")
    throttle.check("b@example.com", "10.0.0.1")
    throttle.check("a@example.com", "10.0.0.1")
