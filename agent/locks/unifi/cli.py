"""`kasify-agent unifi trust | doors | unlock | visitors`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from agent.commands import CommandError, Subparsers
from agent.config import AgentConfig

if TYPE_CHECKING:
    from agent.locks.unifi.client import UnifiClient
    from agent.locks.unifi.models import Door, TopologyDoor, Visitor

# The client (httpx, cryptography, websockets) is imported only by the handlers that use it,
# so that every other kasify-agent command starts quickly.

T = TypeVar("T")


def add_unifi_commands(sub: Subparsers) -> None:
    """Add `unifi` and its actions to kasify-agent."""
    unifi = sub.add_parser(
        "unifi", help="the UniFi Access controller: trust it, list doors and visitors, unlock"
    )
    actions = unifi.add_subparsers(dest="unifi_command", required=True, metavar="ACTION")
    trust = actions.add_parser(
        "trust", help="connect once, show the controller's certificate and pin its fingerprint"
    )
    trust.add_argument("url", help="the controller, e.g. https://192.168.1.10:12445")
    trust.add_argument(
        "--fingerprint",
        help="the SHA-256 fingerprint you expect (refuse the certificate if it differs)",
    )
    trust.set_defaults(func=_trust)
    doors = actions.add_parser("doors", help="list the controller's doors with their state")
    doors.add_argument("--json", action="store_true", help="print JSON")
    doors.set_defaults(func=_doors)
    unlock = actions.add_parser("unlock", help="unlock a door once through the controller")
    unlock.add_argument("door", help="door id or name")
    unlock.set_defaults(func=_unlock)
    visitors = actions.add_parser("visitors", help="list the visitors that carry our codes")
    visitors.add_argument("--all", action="store_true", help="every visitor, not only ours")
    visitors.add_argument("--json", action="store_true", help="print JSON")
    visitors.set_defaults(func=_visitors)


def _run(factory: Callable[[], Awaitable[T]]) -> T:
    from agent.locks.unifi.errors import UnifiError

    async def main() -> T:
        return await factory()

    try:
        return asyncio.run(main())
    except UnifiError as exc:
        raise CommandError(str(exc)) from None


def _client(config: AgentConfig) -> UnifiClient:
    from agent.locks.unifi.client import UnifiClient
    from agent.locks.unifi.config import TokenUnavailable
    from agent.locks.unifi.errors import UnifiError
    from agent.locks.unifi.trust import trusted_controller

    try:
        record = trusted_controller(config.state_dir, config.unifi.url)
        token = config.unifi.load_token()
    except (UnifiError, TokenUnavailable) as exc:
        raise CommandError(str(exc)) from None
    return UnifiClient.for_record(record, token)


async def _with_client(config: AgentConfig, work: Callable[[UnifiClient], Awaitable[T]]) -> T:
    client = _client(config)
    try:
        return await work(client)
    finally:
        await client.aclose()


# --- trust ---------------------------------------------------------------------------------


def _trust(config: AgentConfig, args: argparse.Namespace) -> int:
    from agent.locks.unifi.config import TokenUnavailable
    from agent.locks.unifi.trust import (
        TrustRecord,
        fetch_certificate,
        normalize_fingerprint,
        normalize_url,
    )

    try:
        url = normalize_url(args.url)
        expected = normalize_fingerprint(args.fingerprint) if args.fingerprint else None
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    cert = _run(lambda: fetch_certificate(url))
    print(f"controller          {url}")
    print(f"subject             {cert.subject}")
    print(f"issuer              {cert.issuer}")
    print(f"valid until         {cert.not_after}")
    print(f"SHA-256 fingerprint {cert.fingerprint}")
    if expected is not None and expected != cert.fingerprint:
        raise CommandError(
            f"the controller presented {cert.fingerprint}, not the expected {expected}: "
            "not trusted (is this the right address? was the console's certificate replaced?)"
        )
    previous = TrustRecord.load(config.state_dir)
    if previous is not None and previous.fingerprint != cert.fingerprint:
        print(f"replacing the previously trusted certificate {previous.fingerprint}")
    path = TrustRecord.of(url, cert).save(config.state_dir)
    print(f"trusted: stored in {path}; any other certificate will be refused")
    if expected is None:
        print("compare the fingerprint with the one the UniFi console shows for this controller")
    try:
        config.unifi.load_token()
    except TokenUnavailable as exc:
        print(f"next: {exc}")
        return 0
    try:
        doors = _run(lambda: _with_client(config, lambda c: c.doors()))
    except CommandError as exc:
        print(f"warning: the token does not work yet: {exc}", file=sys.stderr)
        return 0
    print(f"token accepted: {len(doors)} doors (kasify-agent unifi doors lists them)")
    return 0


# --- doors ---------------------------------------------------------------------------------


def _doors(config: AgentConfig, args: argparse.Namespace) -> int:
    async def fetch(client: UnifiClient) -> tuple[tuple[TopologyDoor, ...], tuple[Door, ...]]:
        return await client.topology(), await client.doors()

    topology, doors = _run(lambda: _with_client(config, fetch))
    floors = {d.door_id: d.floor_id for d in topology}
    rows = [
        {
            "door_id": d.id,
            "floor_id": floors.get(d.id, d.floor_id),
            "name": d.name,
            "relay": d.relay.value,
            "position": d.position.value,
            "hub_bound": d.is_bind_hub,
        }
        for d in doors
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    _table(rows, ("door_id", "floor_id", "name", "relay", "position", "hub_bound"))
    return 0


def _unlock(config: AgentConfig, args: argparse.Namespace) -> int:
    from agent.locks.unifi.events import OUR_ACTOR_ID, OUR_ACTOR_NAME

    async def unlock(client: UnifiClient) -> Door:
        doors = await client.doors()
        matches = [d for d in doors if d.id == args.door] or [
            d for d in doors if d.name.casefold() == args.door.casefold()
        ]
        if len(matches) != 1:
            known = ", ".join(f"{d.name} ({d.id})" for d in doors) or "none"
            what = "several doors are" if matches else "no door is"
            raise CommandError(f"{what} called {args.door!r}; doors: {known}")
        await client.unlock(matches[0].id, actor_id=OUR_ACTOR_ID, actor_name=OUR_ACTOR_NAME)
        return matches[0]

    door = _run(lambda: _with_client(config, unlock))
    print(f"unlocked {door.name} ({door.id})")
    return 0


# --- visitors ------------------------------------------------------------------------------


def _visitors(config: AgentConfig, args: argparse.Namespace) -> int:
    from agent.locks.unifi.reconcile import MARKER_RE

    async def fetch(client: UnifiClient) -> tuple[tuple[Visitor, ...], tuple[Door, ...]]:
        return await client.visitors(), await client.doors()

    visitors, doors = _run(lambda: _with_client(config, fetch))
    names = {d.id: d.name for d in doors}
    rows = []
    for visitor in visitors:
        match = MARKER_RE.search(visitor.remarks)
        if match is None and not args.all:
            continue
        rows.append(
            {
                "visitor_id": visitor.id,
                "name": visitor.name,
                "status": visitor.status.value,
                "from": _time(visitor.start_time),
                "until": _time(visitor.end_time),
                "doors": ", ".join(names.get(r.id, r.id) for r in visitor.resources),
                "code_id": match["code"] if match else "",
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no visitors" if args.all else "no visitors carry our codes (--all shows others)")
        return 0
    _table(rows, ("visitor_id", "name", "status", "from", "until", "doors", "code_id"))
    return 0


def _time(ts: int | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    widths = {c: max([len(c), *(len(str(r[c])) for r in rows)]) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns).rstrip())
