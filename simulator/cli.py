"""kasify-sim: command line for the hardware emulators."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from simulator.keypad import KeypadControl, serve
from simulator.nuki.cli import add_nuki_command, add_radio_command
from simulator.unifi.cli import add_unifi

__all__ = ["build_parser", "main"]

CONTROL_ENV = "KASIFY_SIM_KEYPAD_CONTROL"  # default for --control

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """Return the kasify-sim parser; each emulator adds its subcommand with an _add_* function."""
    parser = argparse.ArgumentParser(prog="kasify-sim", description="Emulated site hardware.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_keypad(subparsers)
    add_radio_command(subparsers)
    add_nuki_command(subparsers)
    add_unifi(subparsers)
    _add_demo(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run kasify-sim with argv (default: sys.argv[1:]) and return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler: Handler | None = getattr(args, "func", None)
    if handler is None:
        parser.print_help()
        return 2
    return handler(args)


# -- demo -------------------------------------------------------------------------------------


def _add_demo(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="run a whole simulated property on this machine",
        description="Broker, cloud, an emulated keypad and an enrolled agent for a demo property.",
    )
    demo.add_argument("--dir", default="demo-data", help="where the demo keeps its data")
    demo.add_argument("--api-port", type=int, default=8000, help="port of the cloud API")
    demo.add_argument("--broker-port", type=int, default=8883, help="TLS port of the broker")
    demo.add_argument("--reset", action="store_true", help="delete the demo data and start afresh")
    demo.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from simulator.demo import run_demo

    return run_demo(
        Path(args.dir), api_port=args.api_port, broker_port=args.broker_port, reset=args.reset
    )


# -- keypad -----------------------------------------------------------------------------------


def _add_keypad(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keypad = subparsers.add_parser(
        "keypad", help="keypad controller on a pty", description="Keypad controller emulator."
    )
    keypad.set_defaults(func=lambda _args: _help(keypad))
    commands = keypad.add_subparsers(dest="keypad_command", metavar="ACTION")

    serve = commands.add_parser("serve", help="run the emulator on a pty")
    serve.add_argument("--link", required=True, help="symlink to create for the pty slave")
    serve.add_argument("--control", required=True, help="Unix control socket to listen on")
    serve.set_defaults(func=_keypad_serve)

    def client(name: str, help_text: str, func: Handler) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text)
        parser.add_argument(
            "--control",
            default=os.environ.get(CONTROL_ENV),
            help=f"emulator control socket (default: ${CONTROL_ENV})",
        )
        parser.set_defaults(func=func)
        return parser

    type_ = client("type", "type a code and '#'", _keypad_type)
    type_.add_argument("code", help="digits to type")
    type_.add_argument("--wait", type=float, help="seconds to wait for the device's reaction")

    press = client("press", "press keys (0-9, * clears, # submits)", _keypad_press)
    press.add_argument("keys")

    door = client("door", "set the door contact", _keypad_door)
    door.add_argument("state", choices=("open", "closed"))

    tamper = client("tamper", "set the tamper switch", _keypad_tamper)
    tamper.add_argument("state", choices=("on", "off"))

    watch = client("watch", "stream device effects as JSON lines", _keypad_watch)
    watch.add_argument("--count", type=int, help="exit after this many events")

    client("status", "print the emulator state as JSON", _keypad_status)

    fault = client("fault", "inject a fault", _keypad_fault)
    fault.add_argument(
        "kind", choices=("drop", "corrupt", "garbage", "hang", "resume", "unplug", "reboot")
    )
    fault.add_argument("--count", type=int, default=1, help="frames (drop, corrupt) or bytes")
    fault.add_argument("--direction", choices=("in", "out", "both"), default="both")
    fault.add_argument("--seconds", type=float, default=1.0, help="how long to stay unplugged")
    fault.add_argument("--no-reboot", action="store_true", help="keep device state on replug")


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _keypad_serve(args: argparse.Namespace) -> int:
    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve(args.link, args.control, stop)

    try:
        asyncio.run(run())
    except (OSError, ValueError) as exc:
        print(f"kasify-sim keypad serve: {exc}", file=sys.stderr)
        return 1
    return 0


def _client_call(args: argparse.Namespace, call: Callable[[KeypadControl], Awaitable[int]]) -> int:
    if not args.control:
        print(f"kasify-sim: give --control SOCKET or set ${CONTROL_ENV}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_await(call(KeypadControl(args.control))))
    except (OSError, RuntimeError) as exc:
        print(f"kasify-sim: keypad emulator at {args.control}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def _print(answer: dict[str, Any]) -> int:
    print(json.dumps(answer), flush=True)
    return 0


def _keypad_type(args: argparse.Namespace) -> int:
    async def call(control: KeypadControl) -> int:
        return _print(await control.type_code(args.code, args.wait))

    return _client_call(args, call)


def _keypad_press(args: argparse.Namespace) -> int:
    return _client_call(args, lambda c: _answer(c, {"cmd": "press", "keys": args.keys}))


def _keypad_door(args: argparse.Namespace) -> int:
    return _client_call(args, lambda c: _answer(c, {"cmd": "door", "open": args.state == "open"}))


def _keypad_tamper(args: argparse.Namespace) -> int:
    request = {"cmd": "tamper", "active": args.state == "on"}
    return _client_call(args, lambda c: _answer(c, request))


def _keypad_status(args: argparse.Namespace) -> int:
    return _client_call(args, lambda c: _answer(c, {"cmd": "status"}))


def _keypad_fault(args: argparse.Namespace) -> int:
    kind = args.kind
    request: dict[str, Any] = {"cmd": kind}
    if kind == "drop":
        request.update(count=args.count, direction=args.direction)
    elif kind in ("corrupt", "garbage"):
        request["count"] = args.count
    elif kind in ("hang", "resume"):
        request = {"cmd": "hang", "on": kind == "hang"}
    elif kind == "unplug":
        request.update(seconds=args.seconds, reboot=not args.no_reboot)
    return _client_call(args, lambda c: _answer(c, request))


def _keypad_watch(args: argparse.Namespace) -> int:
    async def call(control: KeypadControl) -> int:
        seen = 0
        async for event in control.watch():
            print(json.dumps(event), flush=True)
            seen += 1
            if args.count is not None and seen >= args.count:
                break
        return 0

    return _client_call(args, call)


async def _answer(control: KeypadControl, request: dict[str, Any]) -> int:
    return _print(await control.request(request))


async def _await(awaitable: Awaitable[int]) -> int:
    return await awaitable


if __name__ == "__main__":
    sys.exit(main())
