"""`kasify-agent nuki scan | pair | state | action | codes`: the parser only.

The handlers (bleak, bumble, the Nuki client) are imported when a nuki command runs, so the other
`kasify-agent` commands, `run` above all, do not load the BLE stack.
"""

from __future__ import annotations

import argparse
from typing import Final

from agent.commands import Handler, Subparsers
from agent.config import AgentConfig
from agent.locks.base import LockAction

FIND_TIMEOUT_S: Final = 15.0  # adverts come every ~1 s; a sleeping lock may take a few


def _lazy(name: str) -> Handler:
    def run(config: AgentConfig, args: argparse.Namespace) -> int:
        from agent.locks.nuki import cli

        handler: Handler = getattr(cli, name)
        return handler(config, args)

    return run


def add_nuki_commands(sub: Subparsers) -> None:
    """Add `nuki` and its subcommands; each sets `func` to a Handler."""
    nuki = sub.add_parser("nuki", help="Nuki locks over Bluetooth LE")
    commands = nuki.add_subparsers(dest="nuki_command", required=True, metavar="COMMAND")

    scan = commands.add_parser("scan", help="list Nuki locks in range")
    scan.add_argument("--seconds", type=float, default=5.0, help="how long to listen")
    scan.set_defaults(func=_lazy("_scan"))

    pair = commands.add_parser(
        "pair", help="pair as a bridge (hold the lock's button 5 s first), or set its PIN"
    )
    pair.add_argument("nuki_id", nargs="?", help="8 hex digits; default: the lock in pairing mode")
    pair.add_argument("--pin", type=int, help="the lock's security PIN (needed for keypad codes)")
    pair.add_argument("--force", action="store_true", help="pair again although paired")
    pair.add_argument("--timeout", type=float, default=FIND_TIMEOUT_S, help="seconds to search")
    pair.set_defaults(func=_lazy("_pair"))

    state = commands.add_parser("state", help="read a paired lock's state and battery")
    state.add_argument("nuki_id", nargs="?", help="default: the only paired lock")
    state.add_argument("--timeout", type=float, default=FIND_TIMEOUT_S)
    state.set_defaults(func=_lazy("_state"))

    action = commands.add_parser("action", help="unlock, lock or unlatch a paired lock")
    action.add_argument("action", choices=[a.value for a in LockAction])
    action.add_argument("nuki_id", nargs="?", help="default: the only paired lock")
    action.add_argument("--timeout", type=float, default=FIND_TIMEOUT_S)
    action.set_defaults(func=_lazy("_action"))

    codes = commands.add_parser("codes", help="list the Nuki Keypad codes a paired lock holds")
    codes.add_argument("nuki_id", nargs="?", help="default: the only paired lock")
    codes.add_argument("--timeout", type=float, default=FIND_TIMEOUT_S)
    codes.set_defaults(func=_lazy("_codes"))
