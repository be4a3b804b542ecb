"""Logging in and out of the dashboard: the API's accounts and tokens, cookie flags, CSRF."""

from __future__ import annotations

import secrets

import httpx
import pytest

from cloud_api.services.login_throttle import PER_ADDRESS
from tests.cloud_api.conftest import Cloud
from tests.dashboard.support import PASSWORD, Browser, People, new_site


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", ["/", "/app/gateways", "/app/properties/some-id"])
async def test_pages_send_a_visitor_to_the_login_page(browser: Browser, path: str) -> None:
    response = await browser.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={path}"


async def test_the_login_form_is_the_api_login(
    browser: Browser, cloud: Cloud, api: httpx.AsyncClient
) -> None:
    email = f"host-{secrets.token_hex(4)}@example.com"
    cloud.user(email, PASSWORD)
    await browser.page("/login?next=/app/gateways")
    wrong = await browser.post(
        "/login", {"email": email, "password": "not the password", "next": "/app/gateways"}
    )
    assert wrong.status_code == 401
    assert "Email or password is wrong." in wrong.text
    assert email in wrong.text  # what the host typed stays in the form

    done = await browser.post(
        "/login", {"email": email.upper(), "password": PASSWORD, "next": "/app/gateways"}
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/app/gateways"
    cookie = next(c for c in done.headers.get_list("set-cookie") if c.startswith("kasify_session="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", "secure", "path=/"} <= flags

    # The session's token is an API token like any other...
    token = browser.session_token
    account = await api.get("/account", headers=_bearer(token))
    assert account.status_code == 200
    assert account.json()["email"] == email
    # ...but the API still wants it as a bearer token: a cookie alone is not enough.
    cookie_only = {"Cookie": f"kasify_session={token}"}
    assert (await api.get("/account", headers=cookie_only)).status_code == 401

    # Logging out revokes the token.
    await browser.page("/")
    out = await browser.post("/logout", {})
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    assert "You are logged out." in await browser.follow(out)
    assert (await api.get("/account", headers=_bearer(token))).status_code == 401
    assert (await browser.get("/")).status_code == 303


async def test_logging_in_needs_the_forms_own_token(browser: Browser, cloud: Cloud) -> None:
    email = f"host-{secrets.token_hex(4)}@example.com"
    cloud.user(email, PASSWORD)
    forged = await browser.post(
        "/login", {"email": email, "password": PASSWORD, "csrf": "from-another-site"}, csrf=False
    )
    assert forged.status_code == 400
    assert "expired" in forged.text
    assert "kasify_session" not in browser.http.cookies


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
async def test_after_login_the_browser_stays_on_this_site(
    browser: Browser, cloud: Cloud, target: str
) -> None:
    email = f"host-{secrets.token_hex(4)}@example.com"
    cloud.user(email, PASSWORD)
    await browser.page("/login")
    done = await browser.post("/login", {"email": email, "password": PASSWORD, "next": target})
    assert done.headers["location"] == "/"


async def test_a_revoked_session_says_why_it_ended(people: People, api: httpx.AsyncClient) -> None:
    alice = await people.new("alice")
    token = alice.browser.session_token
    assert (await api.post("/auth/logout", headers=_bearer(token))).status_code == 204
    response = await alice.browser.get("/app/gateways")
    assert response.headers["location"] == "/login?next=/app/gateways"
    assert "Your session has ended. Please log in again." in await alice.browser.follow(response)


async def test_forms_need_this_sessions_csrf_token(people: People) -> None:
    alice = await people.new("alice")
    bob = await people.new("bob")
    site = await new_site(alice.api)
    path = f"/app/properties/{site.property_id}/bookings"
    booking = {"guestName": "Eve", "from": "2030-07-01", "to": "2030-07-03", "guestCount": "1"}
    await alice.browser.page(f"/app/properties/{site.property_id}")
    missing = await alice.browser.post(path, booking, csrf=False)
    assert missing.status_code == 403
    assert "This form has expired" in missing.text
    await bob.browser.page("/")
    stolen = await alice.browser.post(path, {"csrf": bob.browser.csrf, **booking}, csrf=False)
    assert stolen.status_code == 403
    bookings = (await alice.api.get(f"/properties/{site.property_id}/bookings")).json()
    assert bookings["total"] == 0


async def test_an_open_login_page_goes_on_when_already_logged_in(people: People) -> None:
    alice = await people.new("alice")
    response = await alice.browser.get("/login?next=/app/gateways")
    assert response.status_code == 303
    assert response.headers["location"] == "/app/gateways"


async def test_the_dashboard_is_not_in_the_api_schema(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p in ("/", "/login", "/logout") or p.startswith("/app")]
    unknown = await api.get("/app/nothing-here")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("text/html")
    assert (await api.get("/nothing-here")).json()["detail"].startswith("no such endpoint")


async def test_a_login_paused_after_wrong_passwords_says_so_in_words(
    browser: Browser, cloud: Cloud
) -> None:
    email = f"host-{secrets.token_hex(4)}@example.com"
    cloud.user(email, PASSWORD)
    for _ in range(PER_ADDRESS):
        await browser.page("/login")
        wrong = await browser.post("/login", {"email": email, "password": "a wrong guess"})
        assert wrong.status_code == 401
    await browser.page("/login")
    paused = await browser.post("/login", {"email": email, "password": PASSWORD})
    assert paused.status_code == 429
    assert "Too many wrong passwords for this account." in paused.text
    assert "try again in 15 minutes" in paused.text
    assert "kasify_session" not in browser.http.cookies
