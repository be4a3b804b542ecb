"""Templates: one Jinja2 environment, the filters pages use, and HTML responses."""

from __future__ import annotations

import functools
import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from cloud_api.dashboard import words
from cloud_api.dashboard.session import clear_flash, read_flash
from cloud_api.db import utcnow

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_URL = "/app/static"
# Pages load only their own stylesheet and script, post only to themselves, and are never framed
# (a framed "Unlock" confirmation could be clicked through by another site).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages show PINs: keep them out of caches and history
}


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local(value: datetime | None, timezone: str) -> str:
    """An instant in the property's zone: 'Tue 14 Jul 15:00'."""
    if value is None:
        return "—"
    at = value.astimezone(_zone(timezone))
    return f"{at:%a} {at.day} {at:%b %H:%M}"


def when(value: datetime, timezone: str) -> str:
    """An activity entry's time: 'Today 15:02:07' or 'Tue 14 Jul 15:02'."""
    zone = _zone(timezone)
    at = value.astimezone(zone)
    if at.date() == utcnow().astimezone(zone).date():
        return f"Today {at:%H:%M:%S}"
    return local(value, timezone)


def ago(value: datetime | None) -> str:
    """How long ago: 'just now', '5 min ago', 'never'."""
    if value is None:
        return "never"
    seconds = (utcnow() - value).total_seconds()
    if seconds < 30:
        return "just now"
    return f"{words.duration(seconds)} ago"


def iso(value: datetime) -> str:
    """An instant for machines (data attributes, <time datetime>)."""
    return value.isoformat(timespec="seconds")


@functools.cache
def _static_version(name: str) -> str:
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:10]


def static(name: str) -> str:
    """The URL of a static file, versioned by its content so browsers never run a stale one."""
    return f"{STATIC_URL}/{name}?v={_static_version(name)}"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(
        local=local,
        when=when,
        ago=ago,
        iso=iso,
        duration=words.duration,
        lock_state=lambda s: words.LOCK_STATES.get(s, "Unknown"),
        door_state=lambda s: words.DOOR_STATES.get(s, "Unknown"),
        delivery=lambda s: words.DELIVERY_STATES.get(s, str(s)),
        role=lambda r: words.ROLES.get(r, str(r)),
    )
    env.globals.update(
        static=static,
        describe=words.describe,
        attention_text=words.attention_text,
        kind_words=words.KIND_WORDS,
    )
    return env


ENV = _environment()


def render(template: str, **context: Any) -> str:
    """A template rendered to a string."""
    return ENV.get_template(template).render(**context)


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A whole page; it shows (and clears) a pending flash message."""
    flash = read_flash(request)
    context.setdefault("viewer", None)
    context.setdefault("nav", "")
    context.setdefault("stream", None)
    response = HTMLResponse(
        render(template, flash=flash, **context),
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )
    if flash is not None:
        clear_flash(response)
    return response
