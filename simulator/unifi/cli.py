"""`kasify-sim unifi …`: serve the emulated controller and drive it from another shell."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeAlias

from simulator.unifi.control import ControlClient

CONTROL_ENV = "KASIFY_SIM_UNIFI_CONTROL"  # default for --control
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Json = dict[str, Any]


def add_unifi(subparsers: Subparsers) -> None:
    """Add `unifi` with its actions to kasify-sim."""
    unifi = subparsers.add_parser(
        "unifi",
        help="UniFi Access controller over HTTPS/WSS",
        description="UniFi Access controller emulator (developer API, notifications, faults).",
    )
    unifi.set_defaults(func=lambda _args: _help(unifi))
    commands = unifi.add_subparsers(dest="unifi_command", metavar="ACTION")

    serve = commands.add_parser("serve", help="serve the developer API on 127.0.0.1")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=12445, help="0 picks a free port")
    serve.add_argument("--doors", type=int, default=2, help="number of doors (1..64)")
    serve.add_argument("--token", help="the API token to accept (default: a random one)")
    serve.add_argument("--unlock-seconds", type=float, default=5.0, help="relay unlock time")
    serve.add_argument("--hello-seconds", type=float, default=5.0, help="heartbeat interval")
    serve.add_argument("--control", default=os.environ.get(CONTROL_ENV), help="control socket")
    serve.add_argument("--info-file", type=Path, help="also write URL, token, fingerprint here")
    serve.add_argument(
        "--state-dir",
        type=Path,
        help="keep certificate, token and doors here across restarts, as a real console does",
    )
    serve.add_argument("--no-sensor", type=int, default=0, help="last N doors: no position sensor")
    serve.add_argument(
        "--omit-position", action="store_true", help="doors without sensor leave the field out"
    )
    serve.add_argument("--no-lock-rules", type=int, default=0, help="last N doors: no lock rules")
    serve.add_argument("--hub-ids-in-logs", action="store_true", help="Access 3.4 log quirk")
    serve.set_defaults(func=_serve)

    def client(name: str, help_text: str, build: Callable[[argparse.Namespace], Json]) -> Any:
        parser = commands.add_parser(name, help=help_text)
        parser.add_argument(
            "--control",
            default=os.environ.get(CONTROL_ENV),
            help=f"emulator control socket (default: ${CONTROL_ENV})",
        )
        parser.set_defaults(func=lambda args: _call(args, build(args)))
        return parser

    type_pin = client(
        "type-pin",
        "type a PIN at a door's reader",
        lambda a: {"cmd": "type-pin", "door": a.door, "pin": a.pin},
    )
    type_pin.add_argument("door", help="door id, name or number (1-based)")
    type_pin.add_argument("pin")
    door = client(
        "door",
        "open or close a door (position sensor)",
        lambda a: {"cmd": "door", "door": a.door, "open": a.state == "open"},
    )
    door.add_argument("door")
    door.add_argument("state", choices=("open", "closed"))
    unlock = client(
        "unlock",
        "an admin unlocks in the console",
        lambda a: {"cmd": "unlock", "door": a.door, "actor": a.actor},
    )
    unlock.add_argument("door")
    unlock.add_argument("--actor", default="Admin")
    reserve = client(
        "reserve-pin",
        "a controller user holds this PIN",
        lambda a: {"cmd": "reserve-pin", "pin": a.pin, "user": a.user},
    )
    reserve.add_argument("pin")
    reserve.add_argument("--user", default="Controller user")
    client("visitors", "list visitors with their PINs", lambda a: {"cmd": "visitors"})
    client("status", "print the emulator state", lambda a: {"cmd": "status"})
    token = client(
        "token",
        "add an API token",
        lambda a: {"cmd": "token", "scopes": a.scopes.split(",") if a.scopes else None},
    )
    token.add_argument("--scopes", help="comma-separated, e.g. view:space,edit:space")
    expire = client(
        "expire", "refuse a token from now on", lambda a: {"cmd": "expire", "token": a.token}
    )
    expire.add_argument("token")
    quirk = client(
        "quirk",
        "log entries name the hub instead of the door",
        lambda a: {"cmd": "quirk", "hub_ids_in_logs": a.state == "on"},
    )
    quirk.add_argument("state", choices=("on", "off"))
    fault = client("fault", "inject a fault", _fault_request)
    fault.add_argument(
        "kind", choices=("http", "slow", "ws-drop", "ws-refuse", "ws-silence", "clear")
    )
    fault.add_argument("state", nargs="?", choices=("on", "off"), default="on")
    fault.add_argument("--status", type=int, default=503, help="for http: the status to answer")
    fault.add_argument("--count", type=int, help="for http/slow: how many requests")
    fault.add_argument("--path", default="", help="for http: only paths starting with this")
    fault.add_argument("--seconds", type=float, default=2.0, help="for slow: the delay")


def _fault_request(args: argparse.Namespace) -> Json:
    request: Json = {"cmd": "fault", "kind": args.kind}
    if args.kind == "http":
        request.update(status=args.status, count=args.count or 1, path=args.path)
    elif args.kind == "slow":
        request["seconds"] = args.seconds
        if args.count is not None:
            request["count"] = args.count
    elif args.kind in ("ws-refuse", "ws-silence"):
        request["on"] = args.state == "on"
    return request


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _call(args: argparse.Namespace, request: Json) -> int:
    if not args.control:
        print(f"kasify-sim: give --control SOCKET or set ${CONTROL_ENV}", file=sys.stderr)
        return 2
    try:
        answer = asyncio.run(_await(ControlClient(args.control).request(request)))
    except (OSError, RuntimeError) as exc:
        print(f"kasify-sim: UniFi emulator at {args.control}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer), flush=True)
    return 0


async def _await(awaitable: Awaitable[Json]) -> Json:
    return await awaitable


def _serve(args: argparse.Namespace) -> int:
    if not 1 <= args.doors <= 64:
        print("kasify-sim unifi serve: --doors must be 1..64", file=sys.stderr)
        return 2

    # The server side (uvicorn, certificates) is imported only when serving.
    from cloud_api.pki import write_secret
    from simulator.unifi.control import ControlServer
    from simulator.unifi.server import UnifiEmulator

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        emulator = UnifiEmulator(
            doors=args.doors,
            host=args.host,
            port=args.port,
            token=args.token,
            unlock_s=args.unlock_seconds,
            hello_interval_s=args.hello_seconds,
            state_dir=args.state_dir,
        )
        doors = list(emulator.controller.doors.values())
        for door in doors[len(doors) - min(args.no_sensor, len(doors)) :]:
            door.position, door.omit_position = None, args.omit_position
        for door in doors[len(doors) - min(args.no_lock_rules, len(doors)) :]:
            door.lock_rules = False
        emulator.controller.hub_ids_in_logs = args.hub_ids_in_logs
        await emulator.start()
        control = ControlServer(emulator, args.control) if args.control else None
        try:
            if control is not None:
                await control.start()
            info = {**emulator.info(), "control": args.control}
            if args.info_file is not None:
                write_secret(args.info_file, json.dumps(info, indent=2).encode())
            print(json.dumps(info), flush=True)
            await stop.wait()
        finally:
            if control is not None:
                await control.stop()
            await emulator.stop()

    try:
        asyncio.run(run())
    except OSError as exc:
        print(f"kasify-sim unifi serve: {exc}", file=sys.stderr)
        return 1
    return 0
