"""Registration, login, bearer tokens and the account."""

from __future__ import annotations

import secrets
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from cloud_api.db import utcnow
from cloud_api.models import ApiToken
from cloud_api.services.auth import token_digest
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
