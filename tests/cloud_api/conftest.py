"""Fixtures for the cloud: data directories, SQLite and PostgreSQL apps, logged-in users."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from cloud_api.app import create_app
from cloud_api.context import AppContext
from cloud_api.keys import init_data_dir
from cloud_api.pki import CertificateAuthority
from cloud_api.schemas.auth import RegisterCreate
from cloud_api.services.auth import register
from cloud_api.settings import Settings
from tests.cloud_api.helpers import Host

POSTGRES_URL = os.environ.get(
    "KASIFY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PUBLIC_URL = "https://cloud.test.example"
POSTGRES_HINT = (
    "PostgreSQL is not reachable at {url} ({error}). Start one with trust auth, e.g. "
    "`sudo pg_ctlcluster 15 main start` and `createdb -U postgres test`, or "
    "`docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test "
    "postgres:15`; or point KASIFY_TEST_POSTGRES_URL at one."
)


def _plain_postgres_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(scope="session")
def postgres_schema_url() -> Iterator[str]:
    """A URL whose search_path is a schema unique to this run (dropped afterwards)."""
    plain = _plain_postgres_url(POSTGRES_URL)
    try:
        conn = psycopg.connect(plain, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        pytest.skip(POSTGRES_HINT.format(url=POSTGRES_URL, error=str(exc).strip()[:200]))
    schema = f"kasify_test_{os.getpid()}_{secrets.token_hex(4)}"
    with conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The database under test: an SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'cloud.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


def api_settings(data_dir: Path, database_url: str, **overrides: object) -> Settings:
    """Settings for an API-only app."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "mqtt_enabled": False,
        "public_url": PUBLIC_URL,
        "broker_reload_command": None,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class Cloud:
    """One app on one database, and what tests need to reach inside it."""

    app: FastAPI
    data_dir: Path

    @property
    def ctx(self) -> AppContext:
        """The app's shared state."""
        ctx: AppContext = self.app.state.ctx
        return ctx

    def client(self) -> httpx.AsyncClient:
        """An in-process HTTP client."""
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://cloud.test"
        )

    def user(self, email: str, password: str = "correct horse battery") -> str:  # noqa: S107
        """Register a user directly (no HTTP) and return a bearer token."""
        with self.ctx.db.session() as session:
            issued = register(
                session,
                RegisterCreate.model_validate({"email": email, "password": password}),
                timedelta(days=1),
            )
            return issued.token


@pytest.fixture(scope="session")
def cloud(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, ca: CertificateAuthority
) -> Iterator[Cloud]:
    """An API-only app per backend, shared by the tests of that backend."""
    data_dir = tmp_path_factory.mktemp("cloud")
    init_data_dir(data_dir, ca)
    app = create_app(api_settings(data_dir, database_url))
    yield Cloud(app, data_dir)
    app.state.ctx.db.dispose()


@dataclass
class Users:
    """Tokens per backend, shared: tests isolate by creating their own properties (and inviting
    Carol, Dave or Erin into them with the role they need)."""

    alice: str
    bob: str
    carol: str
    dave: str
    erin: str
    emails: dict[str, str]


@pytest.fixture(scope="session")
def users(cloud: Cloud) -> Users:
    """Alice and Bob (hosts), Carol, Dave and Erin (team members), registered once per backend."""
    run = secrets.token_hex(4)
    emails = {
        name: f"{name}-{run}@example.com" for name in ("alice", "bob", "carol", "dave", "erin")
    }
    tokens = {name: cloud.user(email) for name, email in emails.items()}
    return Users(**tokens, emails=emails)


@pytest.fixture
async def client(cloud: Cloud) -> AsyncIterator[httpx.AsyncClient]:
    """An unauthenticated client."""
    async with cloud.client() as http:
        yield http


@pytest.fixture
def alice(client: httpx.AsyncClient, users: Users) -> Host:
    """Alice, logged in."""
    return Host(client, users.alice, users.emails["alice"])


@pytest.fixture
def bob(client: httpx.AsyncClient, users: Users) -> Host:
    """Bob, logged in; he is no member of Alice's properties."""
    return Host(client, users.bob, users.emails["bob"])


@pytest.fixture
def carol(client: httpx.AsyncClient, users: Users) -> Host:
    """Carol, logged in; tests invite her (usually as crew)."""
    return Host(client, users.carol, users.emails["carol"])


@pytest.fixture
def dave(client: httpx.AsyncClient, users: Users) -> Host:
    """Dave, logged in; tests invite him (usually as contractor)."""
    return Host(client, users.dave, users.emails["dave"])


@pytest.fixture
def erin(client: httpx.AsyncClient, users: Users) -> Host:
    """Erin, logged in; tests invite her (usually as manager)."""
    return Host(client, users.erin, users.emails["erin"])
