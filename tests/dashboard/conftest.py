"""Fixtures for the dashboard: the cloud suite's apps (SQLite, then PostgreSQL), hosts, browsers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.cloud_api import conftest as cloud_suite
from tests.cloud_api.conftest import Cloud
from tests.dashboard.support import Browser, People

# The cloud suite's apps, one per database (SQLite, then PostgreSQL), for this directory too.
postgres_schema_url = cloud_suite.postgres_schema_url
database_url = cloud_suite.database_url
cloud = cloud_suite.cloud


@pytest.fixture
async def api(cloud: Cloud) -> AsyncIterator[httpx.AsyncClient]:
    """An unauthenticated client of the JSON API."""
    async with cloud.client() as http:
        yield http


@pytest.fixture
async def people(cloud: Cloud, api: httpx.AsyncClient) -> AsyncIterator[People]:
    """Makes users with an API client and a logged-in browser each; closes their browsers."""
    made = People(cloud, api)
    yield made
    await made.close()


@pytest.fixture
async def browser(cloud: Cloud) -> AsyncIterator[Browser]:
    """A browser with no session."""
    async with Browser(cloud.app) as http:
        yield http
