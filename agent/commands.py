"""What every `kasify-agent` subcommand shares (apart from agent.cli to avoid import cycles)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeAlias

from agent.config import AgentConfig

Handler = Callable[[AgentConfig, argparse.Namespace], int]
# argparse's subparsers object; subscripted only for the type checker (not at run time on 3.11).
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class CommandError(Exception):
    """A command cannot do its work; the message says why and what to do (exit status 2)."""
