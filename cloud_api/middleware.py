"""ASGI middleware: a request body limit and a one-line-per-request log."""

from __future__ import annotations

import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud_api.metrics import Metrics

log = logging.getLogger("cloud_api.access")
SECRET_PARAMS = frozenset({"token"})  # path parameters never written to the log

MAX_BODY_BYTES = 1024 * 1024  # the largest legitimate body (an enrollment CSR) is ~16 KiB


class BodyLimit:
    """Refuse request bodies over MAX_BODY_BYTES with 413 before anything parses them."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check Content-Length, then read the body (up to the limit) and replay it to the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send, int(declared))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body: nobody to answer
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._refuse(send, size)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, size: int) -> None:
        body = json.dumps(
            {"detail": f"request body of {size} bytes exceeds the {self.limit}-byte limit"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class RequestLog:
    """One info line per request (method, path without query, status, duration), with the same
    facts as structured fields, and the request latency metric by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Log the request once the response has started."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_logged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None)
            path = _shown_path(scope, route)
            log.info(
                "%s %s %d %.1fms",
                scope["method"],
                path,
                status,
                elapsed * 1000,
                extra={
                    "http_method": scope["method"],
                    "http_path": path,
                    "http_route": route,
                    "http_status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            if self.metrics is not None:
                self.metrics.request_seconds.labels(
                    scope["method"], route or "unmatched", str(status)
                ).observe(elapsed)


def _shown_path(scope: Scope, route: str | None) -> str:
    """The request path, with secret path parameters (invitation tokens) masked."""
    params = scope.get("path_params") or {}
    if route is not None and SECRET_PARAMS & params.keys():
        shown = route
        for name, value in params.items():
            shown = shown.replace(f"{{{name}}}", "***" if name in SECRET_PARAMS else str(value))
        return shown
    return str(scope["path"])
