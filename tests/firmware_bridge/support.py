"""Helpers for keypad-link tests: frame splitting, waiting on real I/O, a scripted wire."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from firmware_bridge.link import LinkOutput
from firmware_bridge.messages import DeviceMessage, Message
from firmware_bridge.transport import SerialKeypad

M = TypeVar("M", bound=DeviceMessage)

WAIT_S = 5.0  # generous bound for real-I/O conditions; tests never assert on elapsed time


def split_frames(data: bytes) -> list[bytes]:
    """Return each delimited frame in data as its own wire bytes (00 body 00)."""
    return [b"\x00" + body + b"\x00" for body in data.split(b"\x00") if body]


async def eventually(condition: Callable[[], bool], within: float = WAIT_S) -> None:
    """Wait until condition() holds; raise TimeoutError after within seconds."""
    async with asyncio.timeout(within):
        # Polling: the conditions are state of real I/O peers that offer no event to wait on.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def next_of(keypad: SerialKeypad, kind: type[M]) -> M:
    """Return the next delivered message of kind, skipping heartbeats and the like."""
    async with asyncio.timeout(WAIT_S):
        while True:
            message = await keypad.receive()
            if isinstance(message, kind):
                return message


class Recorder:
    """Collects what a link endpoint produced across calls."""

    def __init__(self) -> None:
        self.delivered: list[Message] = []
        self.acked: list[int] = []
        self.failed: list[int] = []
        self.errors: list[str] = []
        self.resyncs = 0

    def take(self, out: LinkOutput) -> bytes:
        """Record out's events; return its bytes."""
        self.delivered += out.delivered
        self.acked += out.acked
        self.failed += [f.ticket or 0 for f in out.failed]
        self.errors += [str(e) for e in out.errors]
        self.resyncs += out.resync
        return out.data
