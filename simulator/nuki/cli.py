"""`kasify-sim radio` and `kasify-sim nuki …`: the virtual radio and the emulated Nuki."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agent.locks.nuki.adverts import parse_nuki_id
from simulator.nuki.control import NukiControl
from simulator.nuki.emulator import LockOptions, serve_lock
from simulator.radio import run_radio

CONTROL_ENV = "KASIFY_SIM_NUKI_CONTROL"  # default for --control
DEFAULT_PORTS = (9001, 9002)


async def _until_signal(run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await run(stop)


# --- radio ---------------------------------------------------------------------------------------


def add_radio_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`kasify-sim radio`: bumble controllers on one link, each on a loopback TCP port."""
    radio = subparsers.add_parser(
        "radio",
        help="virtual BLE radio (HCI over TCP)",
        description="Bumble controllers on one virtual link; each port is a bumble transport "
        "tcp-client:HOST:PORT for one host (the agent, an emulated lock, any bleak program).",
    )
    radio.add_argument(
        "--port", type=int, action="append", help="a controller port (repeat; default 9001 9002)"
    )
    radio.add_argument("--host", default="127.0.0.1", help="address to listen on")
    radio.set_defaults(func=_radio)


def _radio(args: argparse.Namespace) -> int:
    ports = args.port or list(DEFAULT_PORTS)
    try:
        asyncio.run(_until_signal(lambda stop: run_radio(ports, args.host, stop)))
    except OSError as exc:
        print(f"kasify-sim radio: {exc}", file=sys.stderr)
        return 1
    return 0


# --- nuki ----------------------------------------------------------------------------------------


def add_nuki_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`kasify-sim nuki serve|status|pairing|keypad|door|turn|battery|motor|pin|fault|codes|log`."""
    nuki = subparsers.add_parser(
        "nuki", help="emulated Nuki Smart Lock 3.0 on the radio", description=__doc__
    )
    nuki.set_defaults(func=lambda _args: _help(nuki))
    commands = nuki.add_subparsers(dest="nuki_command", metavar="ACTION")

    serve = commands.add_parser("serve", help="run the lock on a bumble HCI transport")
    serve.add_argument("--hci", default="tcp-client:127.0.0.1:9002", help="bumble transport")
    serve.add_argument("--control", required=True, help="Unix control socket to listen on")
    serve.add_argument("--nuki-id", default="2A3B4C5D", help="8 hex digits")
    serve.add_argument("--name", help="advertised name (default Nuki_<ID>)")
    serve.add_argument("--state", type=Path, help="keep keys, pairings and codes in this file")
    serve.add_argument("--pin", type=int, default=1234, help="security PIN")
    serve.add_argument("--motor-s", type=float, default=2.0, help="motor run time")
    serve.add_argument(
        "--push-interval-s", type=float, default=1.0, help="state pushes while moving"
    )
    serve.add_argument("--idle-s", type=float, default=20.0, help="drop an idle link after this")
    serve.add_argument("--capacity", type=int, default=100, help="keypad codes the lock holds")
    serve.add_argument("--drain", type=float, default=0.05, help="battery percent per motor run")
    serve.add_argument("--pairing", type=float, default=0.0, help="start in pairing mode for N s")
    serve.set_defaults(func=_serve)

    def client(
        name: str, help_text: str, func: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text)
        parser.add_argument(
            "--control", default=os.environ.get(CONTROL_ENV),
            help=f"emulator control socket (default: ${CONTROL_ENV})",
        )  # fmt: skip
        parser.set_defaults(func=func)
        return parser

    client("status", "print the lock's state as JSON", _simple("status"))
    pairing = client("pairing", "enter pairing mode (like holding the button 5 s)", _pairing)
    pairing.add_argument("state", nargs="?", choices=("on", "off"), default="on")
    pairing.add_argument("--seconds", type=float, default=60.0)
    keypad = client("keypad", "type a code on the Nuki Keypad", _keypad)
    keypad.add_argument("code")
    door = client("door", "set the door sensor", _door)
    door.add_argument("state", choices=("open", "closed"))
    turn = client("turn", "turn the knob by hand (or let auto-lock fire)", _turn)
    turn.add_argument("action", choices=("lock", "unlock", "unlatch"))
    turn.add_argument("--auto", action="store_true", help="as auto-lock, not by hand")
    battery = client("battery", "set the battery level", _battery)
    battery.add_argument("percent", type=float)
    motor = client("motor", "set the motor run time", _motor)
    motor.add_argument("seconds", type=float)
    pin = client("pin", "set the security PIN", _pin)
    pin.add_argument("pin", type=int)
    fault = client("fault", "inject a fault", _fault)
    fault.add_argument(
        "kind",
        choices=("busy", "motor_blocked", "drop_on_command", "drop_after_accept", "silence",
                 "corrupt", "truncate", "replay", "delay", "disconnect", "clear"),
    )  # fmt: skip
    fault.add_argument("--count", type=int, default=1)
    fault.add_argument("--seconds", type=float, default=1.0, help="for delay")
    client("codes", "list the keypad codes (no PINs)", _simple("codes"))
    log = client("log", "print the newest log entries", _simple("log"))
    log.add_argument("--count", type=int, default=20)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _serve(args: argparse.Namespace) -> int:
    try:
        options = LockOptions(
            nuki_id=parse_nuki_id(args.nuki_id), name=args.name, security_pin=args.pin,
            motor_s=args.motor_s, push_interval_s=args.push_interval_s,
            idle_timeout_s=args.idle_s, capacity=args.capacity, pairing_s=args.pairing,
            battery_drain_per_action=args.drain,
            state_file=args.state,
        )  # fmt: skip
        asyncio.run(_until_signal(lambda stop: serve_lock(args.hci, args.control, options, stop)))
    except (OSError, ValueError) as exc:
        print(f"kasify-sim nuki serve: {exc}", file=sys.stderr)
        return 1
    return 0


def _call(args: argparse.Namespace, cmd: str, **params: Any) -> int:
    if not args.control:
        print(f"kasify-sim: give --control SOCKET or set ${CONTROL_ENV}", file=sys.stderr)
        return 2
    try:
        answer = asyncio.run(NukiControl(args.control).command(cmd, **params))
    except (OSError, RuntimeError) as exc:
        print(f"kasify-sim: nuki emulator at {args.control}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer), flush=True)
    return 0


def _simple(cmd: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        params = {"count": args.count} if cmd == "log" else {}
        return _call(args, cmd, **params)

    return handler


def _pairing(args: argparse.Namespace) -> int:
    return _call(args, "pairing", on=args.state == "on", seconds=args.seconds)


def _keypad(args: argparse.Namespace) -> int:
    return _call(args, "keypad", code=args.code)


def _door(args: argparse.Namespace) -> int:
    return _call(args, "door", open=args.state == "open")


def _turn(args: argparse.Namespace) -> int:
    return _call(args, "turn", action=args.action, trigger="auto" if args.auto else "manual")


def _battery(args: argparse.Namespace) -> int:
    return _call(args, "battery", percent=args.percent)


def _motor(args: argparse.Namespace) -> int:
    return _call(args, "motor", seconds=args.seconds)


def _pin(args: argparse.Namespace) -> int:
    return _call(args, "pin", pin=args.pin)


def _fault(args: argparse.Namespace) -> int:
    return _call(args, "fault", kind=args.kind, count=args.count, seconds=args.seconds)
