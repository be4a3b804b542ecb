"""A browser-like client for the dashboard (cookies, forms, CSRF) and the people who use it."""

from __future__ import annotations

import html
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from types import TracebackType
from typing import Any

import httpx
from fastapi import FastAPI

from cloud_api.sync.ingest import Ingest
from sync_protocol.ids import uuid7
from sync_protocol.models import ClockStatus, Event, EventBatch, LockStatus, ReportedState
from sync_protocol.topics import Channel, topic
from tests.cloud_api.conftest import Cloud
from tests.cloud_api.helpers import Host, enroll

PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """Cookies, forms and the last page, over the app in-process (HTTPS, as behind a proxy)."""

    def __init__(self, app: FastAPI) -> None:
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://cloud.test"
        )
        self.last = ""
        self.token = ""  # the CSRF token of the latest page that had a form

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.http.aclose()

    def _remember(self, response: httpx.Response) -> None:
        self.last = response.text
        found = CSRF_RE.search(self.last)
        if found is not None:
            self.token = html.unescape(found.group(1))

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET a page and remember it."""
        response = await self.http.get(path, **kwargs)
        self._remember(response)
        return response

    async def page(self, path: str) -> str:
        """GET a page that must answer 200; its HTML."""
        response = await self.get(path)
        assert response.status_code == 200, (response.status_code, response.text[:2000])
        return response.text

    @property
    def session_token(self) -> str:
        """The token in the session cookie."""
        token = self.http.cookies.get("kasify_session")
        assert token, "not logged in"
        return token

    @property
    def csrf(self) -> str:
        """The CSRF token of the latest page's forms."""
        assert self.token, "no page with a form yet"
        return self.token

    async def post(self, path: str, data: dict[str, str], *, csrf: bool = True) -> httpx.Response:
        """Submit a form (with the last page's CSRF token) and remember the answer."""
        body = {"csrf": self.csrf, **data} if csrf else data
        response = await self.http.post(path, data=body)
        self._remember(response)
        return response

    async def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        """Log in through the form; the answer is its redirect."""
        await self.page("/login")
        return await self.post("/login", {"email": email, "password": password, "next": "/"})

    async def follow(self, response: httpx.Response) -> str:
        """Follow a 303 and return the page it leads to."""
        assert response.status_code == 303, (response.status_code, response.text[:2000])
        return await self.page(response.headers["location"])


@dataclass
class Person:
    """A user: their API client and their logged-in browser."""

    email: str
    api: Host
    browser: Browser


class People:
    """Registers users, each with an API client and a browser logged in through the form."""

    def __init__(self, cloud: Cloud, api: httpx.AsyncClient) -> None:
        self.cloud = cloud
        self.api = api
        self.browsers: list[Browser] = []

    async def new(self, name: str) -> Person:
        """A new user (unique email), logged in to the dashboard."""
        email = f"{name}-{secrets.token_hex(4)}@example.com"
        token = self.cloud.user(email, PASSWORD)
        browser = Browser(self.cloud.app)
        self.browsers.append(browser)
        response = await browser.login(email)
        assert response.status_code == 303, response.text
        return Person(email, Host(self.api, token, email), browser)

    async def close(self) -> None:
        """Close every browser."""
        for browser in self.browsers:
            await browser.http.aclose()


@dataclass
class Site:
    """A property with an enrolled gateway and a relay lock."""

    property_id: str
    gateway_id: str
    lock_id: str


async def new_site(host: Host, name: str = "Casa Azul", **fields: Any) -> Site:
    """A property (Europe/Madrid), an enrolled gateway and a relay lock named Front door."""
    prop = await host.new_property(name=name, **fields)
    agent = await enroll(host.client, await host.new_gateway(prop["id"]))
    response = await host.post(
        f"/properties/{prop['id']}/smartlocks",
        {"kind": "relay", "deviceRef": "1", "name": "Front door", "gatewayId": agent.gateway_id},
    )
    assert response.status_code == 201, response.text
    return Site(prop["id"], agent.gateway_id, response.json()["id"])


def report(cloud: Cloud, gateway_id: str, **fields: Any) -> None:
    """Store a reported state as the ingest would (clock trusted, uptime 1 h unless told)."""
    body = ReportedState(
        gateway_id=gateway_id,
        applied_version=fields.pop("applied_version", 1),
        agent_version=fields.pop("agent_version", "0.1.0-test"),
        uptime_s=fields.pop("uptime_s", 3600.0),
        reported_at=fields.pop("reported_at", datetime.now(UTC)),
        clock=fields.pop("clock", ClockStatus(synchronized=True, trusted=True)),
        outbox_depth=fields.pop("outbox_depth", 0),
        **fields,
    )
    Ingest(cloud.ctx.db).handle(
        topic(gateway_id, Channel.REPORTED), body.model_dump_json().encode()
    )


def lock_status(lock_id: str, **fields: Any) -> LockStatus:
    """A lock's live status as its gateway reports it (locked, door closed, reachable)."""
    values: dict[str, Any] = {"state": "locked", "door": "closed", "reachable": True, **fields}
    return LockStatus(lock_id=lock_id, **values)


def store_event(cloud: Cloud, gateway_id: str, **fields: Any) -> str:
    """Store one event from a gateway as the ingest would; its id."""
    event = Event(
        id=fields.pop("id", uuid7()),
        type=fields.pop("type", "access_granted"),
        occurred_at=fields.pop("occurred_at", datetime.now(UTC)),
        clock_trusted=fields.pop("clock_trusted", True),
        method=fields.pop("method", "gateway_keypad"),
        **fields,
    )
    batch = EventBatch(gateway_id=gateway_id, events=(event,))
    Ingest(cloud.ctx.db).handle(topic(gateway_id, Channel.EVENTS), batch.model_dump_json().encode())
    return event.id


def presence(cloud: Cloud, gateway_id: str, online: bool) -> None:
    """Store a gateway's presence as the ingest would."""
    value = b"online" if online else b"offline"
    Ingest(cloud.ctx.db).handle(topic(gateway_id, Channel.PRESENCE), value)


class _Fields(HTMLParser):
    """Form fields and labels of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "label" and values.get("for"):
            self.label_for.add(str(values["for"]))
        if tag in ("select", "textarea") or (tag == "input" and values.get("type") != "hidden"):
            self.fields.append({"tag": tag, **values})


def unlabelled_fields(page: str) -> list[dict[str, str | None]]:
    """Visible form fields without a <label for=...> naming them."""
    parser = _Fields()
    parser.feed(page)
    return [f for f in parser.fields if f.get("id") not in parser.label_for]
