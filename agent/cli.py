"""`kasify-agent`: run the daemon, enroll the gateway, and inspect its state."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from agent import __version__
from agent.commands import CommandError, Handler, Subparsers
from agent.config import AgentConfig, ConfigError, load_config
from agent.identity import Identity, NotEnrolled
from agent.locks.nuki.commands import add_nuki_commands
from agent.locks.unifi.cli import add_unifi_commands
from agent.store import Store, StoreError

# Command groups of the lock integrations: each adds subcommands whose `func` is a Handler.
COMMAND_GROUPS: tuple[Callable[[Subparsers], None], ...] = (
    add_nuki_commands,
    add_unifi_commands,
)


def build_parser() -> argparse.ArgumentParser:
    """The command line; each subcommand sets `func` to a Handler."""
    parser = argparse.ArgumentParser(prog="kasify-agent", description=__doc__)
    parser.add_argument("--version", action="version", version=f"kasify-agent {__version__}")
    parser.add_argument(
        "--config", type=Path, help="configuration file (default /etc/kasify-agent/agent.toml)"
    )
    parser.add_argument("--state-dir", type=Path, help="override the configured state directory")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the agent (what systemd starts)").set_defaults(func=_run)
    enroll_cmd = sub.add_parser("enroll", help="enroll this gateway with the cloud")
    enroll_cmd.add_argument("--cloud", required=True, help="the cloud's URL, e.g. https://…")
    enroll_cmd.add_argument("--token", required=True, help="the one-time enrollment token")
    enroll_cmd.add_argument("--force", action="store_true", help="replace an existing enrollment")
    enroll_cmd.set_defaults(func=_enroll)
    sub.add_parser(
        "status", help="show enrollment, applied desired state and queued events"
    ).set_defaults(func=_status)
    codes = sub.add_parser("codes", help="list the cached access codes (never their PINs)")
    codes.add_argument("--json", action="store_true", help="one JSON object per code")
    codes.set_defaults(func=_codes)
    events = sub.add_parser("events", help="list events waiting to be sent to the cloud")
    events.add_argument("--limit", type=int, default=20, help="how many, oldest first")
    events.add_argument("--json", action="store_true", help="one JSON object per event")
    events.set_defaults(func=_events)
    doctor = sub.add_parser("doctor", help="check broker, keypad, Bluetooth, clock and state")
    doctor.add_argument("--offline", action="store_true", help="skip the broker check")
    doctor.set_defaults(func=_doctor)
    for add_commands in COMMAND_GROUPS:
        add_commands(sub)
    return parser


def _config(args: argparse.Namespace) -> AgentConfig:
    config = load_config(args.config)
    if args.state_dir is not None:
        config = config.model_copy(update={"state_dir": args.state_dir})
    return config


def _run(config: AgentConfig, args: argparse.Namespace) -> int:
    from agent.daemon import Agent  # the daemon pulls in serial and MQTT; not needed elsewhere

    identity = Identity.load(config.state_dir)

    async def main() -> None:
        agent = await Agent.open(config, identity)
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            if task is not None:
                loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await agent.run()

    logging.getLogger(__name__).info(
        "kasify-agent %s starting as gateway %s", __version__, identity.gateway_id
    )
    asyncio.run(main())
    return 0


def _enroll(config: AgentConfig, args: argparse.Namespace) -> int:
    from agent.enroll import EnrollError, enroll  # httpx and cryptography: only needed here

    try:
        identity = enroll(args.cloud, args.token, config.state_dir, force=args.force)
    except EnrollError as exc:
        raise CommandError(str(exc)) from None
    print(f"enrolled as gateway {identity.gateway_id} of property {identity.property_id}")
    broker = f"{identity.broker_host}:{identity.broker_port}"
    print(f"broker {broker}; state in {config.state_dir}")
    return 0


def _status(config: AgentConfig, args: argparse.Namespace) -> int:
    identity = Identity.load(config.state_dir)
    store = Store(config.state_dir / "agent.db")
    try:
        applied = store.applied()
        print(
            json.dumps(
                {
                    "gateway_id": identity.gateway_id,
                    "property_id": identity.property_id,
                    "broker": f"{identity.broker_host}:{identity.broker_port}",
                    "cloud": identity.cloud_url,
                    "applied_version": applied.version,
                    "timezone": applied.timezone,
                    "locks": [lock.id for lock in store.locks()],
                    "codes": len(store.codes()),
                    "outbox_depth": store.outbox.depth,
                },
                indent=2,
            )
        )
    finally:
        store.close()
    return 0


def _open_store(config: AgentConfig) -> Store:
    path = config.state_dir / "agent.db"
    if not path.exists():
        raise CommandError(f"{path} does not exist: has the agent run yet?")
    return Store(path)


def _local(ts: float | None, zone: ZoneInfo) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M")


def _codes(config: AgentConfig, args: argparse.Namespace) -> int:
    store = _open_store(config)
    try:
        applied = store.applied()
        codes = store.codes()
    finally:
        store.close()
    zone = ZoneInfo(applied.timezone or "UTC")
    for c in codes:
        if args.json:
            row = {
                "id": c.id,
                "kind": c.kind,
                "starts_at": c.starts_at,
                "ends_at": c.ends_at,
                "locks": list(c.lock_ids),
                "booking_id": c.booking_id,
                "task_id": c.task_id,
                "label": c.label,
            }
            print(json.dumps(row))
        else:
            window = f"{_local(c.starts_at, zone)} → {_local(c.ends_at, zone)}"
            print(f"{c.id}  {c.kind:<8} {window:<35} {c.label:<20} {','.join(c.lock_ids)}")
    if not args.json:
        print(f"{len(codes)} codes, desired version {applied.version}, times in {zone.key}")
    return 0


def _events(config: AgentConfig, args: argparse.Namespace) -> int:
    store = _open_store(config)
    try:
        rows = store.outbox.rows(args.limit)
        depth = store.outbox.depth
    finally:
        store.close()
    for row in rows:
        if args.json:
            print(row.body)
            continue
        body = json.loads(row.body)
        print(
            f"{body['occurred_at']}  {body['type']:<18} {body.get('result') or '':<10} "
            f"{body.get('code_id') or ''}"
        )
    if not args.json:
        print(f"{depth} events waiting for the broker")
    return 0


def _doctor(config: AgentConfig, args: argparse.Namespace) -> int:
    from agent.doctor import Verdict, diagnose, report

    findings = diagnose(config, broker=not args.offline)
    print(report(findings))
    return 1 if any(f.verdict is Verdict.FAIL for f in findings) else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `kasify-agent` console script."""
    args = build_parser().parse_args(argv)
    try:
        config = _config(args)
        logging.basicConfig(
            level=config.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request is noise
        handler: Handler = args.func
        return handler(config, args)
    except (ConfigError, NotEnrolled, StoreError, CommandError) as exc:
        print(f"kasify-agent: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
