"""The emulators' control sockets: JSON lines on a Unix socket, one server and one client.

A request is one JSON object with "cmd" on one line; the answer is one JSON object with "ok" (and
"error" when false) on one line. A "watch" request turns the connection into a stream of effect
objects, one per line, until the client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
from collections.abc import AsyncIterator
from typing import Any

Json = dict[str, Any]


def _remove_stale(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)


class ControlServer:
    """Serves one emulator's control protocol; subclasses implement `handle` (and `watch`)."""

    # Errors that mean "this request is wrong", answered with ok=false instead of a crash.
    refusals: tuple[type[Exception], ...] = (ValueError, KeyError, TypeError)

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind the socket (replacing a stale one) and accept clients."""
        _remove_stale(self.socket_path)
        self._server = await asyncio.start_unix_server(self._client, path=self.socket_path)

    async def stop(self) -> None:
        """Close the socket and every client."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.wait(self._handlers)
        await server.wait_closed()
        _remove_stale(self.socket_path)

    async def handle(self, request: Json) -> Json:
        """Execute one request and return its answer."""
        raise ValueError(f"unknown command {request.get('cmd')!r}")

    async def watch(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Stream effects to the client until it goes away."""
        raise ValueError("this emulator has nothing to watch")

    def error_text(self, exc: Exception) -> str:
        """How a refusal reads in the answer."""
        return str(exc)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ValueError("a request is a JSON object")
                    if request.get("cmd") == "watch":
                        await self.watch(reader, writer)
                        return
                    answer = await self.handle(request)
                except self.refusals as exc:
                    answer = {"ok": False, "error": self.error_text(exc)}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._handlers.discard(task)
            writer.close()


class ControlClient:
    """Client of an emulator's control socket."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path

    async def request(self, request: Json) -> Json:
        """Send one request and return the answer; raise RuntimeError if it was refused."""
        reader, writer = await asyncio.open_unix_connection(self.socket_path)
        try:
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
        finally:
            writer.close()
        if not line:
            raise RuntimeError(f"emulator at {self.socket_path} closed the connection")
        answer: Json = json.loads(line)
        if not answer.get("ok"):
            raise RuntimeError(f"emulator refused {request.get('cmd')}: {answer.get('error')}")
        return answer

    async def status(self) -> Json:
        """The emulator's status."""
        return await self.request({"cmd": "status"})

    async def watch(self) -> AsyncIterator[Json]:
        """Yield the emulator's effects as they happen."""
        reader, writer = await asyncio.open_unix_connection(self.socket_path)
        try:
            writer.write(b'{"cmd": "watch"}\n')
            await writer.drain()
            await reader.readline()
            while line := await reader.readline():
                yield json.loads(line)
        finally:
            writer.close()
