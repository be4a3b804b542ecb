"""The emulator's HTTP and WebSocket face: an ASGI app serving the developer API.

Quirks reproduced: the envelope's `data` as object, list, null, the string "success", or missing
(PIN assignment); errors with HTTP 200 and an error code; `page`/`total` beside `data` for system
logs and `pagination` for visitors; device lists as a list of lists; "Hello" heartbeats; hub ids
in place of door ids in log entries (switchable); doors without a position field.
Fault injection: HTTP statuses for the next N requests, slow responses, dropped, refused or
silent WebSockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from simulator.unifi.controller import VISITOR_STATUS_CODES, Controller, Json, Refusal

API: Final = "/api/v1/developer"
HELLO_INTERVAL_S: Final = 5.0  # what real consoles do
HELLO: Final = json.dumps("Hello")
LOG_TOPICS: Final = frozenset({"door_openings", "all"})  # our entries are all door openings

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
NO_DATA: Final = object()  # the answer has no "data" key at all

_STATUS_TEXT: Final = {
    401: ("CODE_AUTH_FAILED", "Authentication failed."),
    403: ("CODE_UNAUTHORIZED", "You are not allowed to perform this action."),
    404: ("CODE_NOT_EXISTS", "The requested resource does not exist."),
    429: ("CODE_SYSTEM_ERROR", "Too many requests."),
}


@dataclass
class HttpFault:
    """Answer the next `remaining` requests (under `path`, if given) with `status`."""

    status: int
    remaining: int
    path: str = ""


@dataclass
class Faults:
    """What the emulator does wrong on purpose."""

    http: list[HttpFault] = field(default_factory=list)
    slow_s: float = 0.0
    slow_remaining: int | None = None  # None: every request while slow_s > 0
    ws_refuse: bool = False  # new WebSocket upgrades get HTTP 503
    ws_silent: bool = False  # open WebSockets get nothing, not even "Hello"

    def take_http(self, path: str) -> int | None:
        """The status to fake for this request, if any."""
        for fault in self.http:
            if fault.remaining > 0 and path.startswith(fault.path):
                fault.remaining -= 1
                status = fault.status
                self.http = [f for f in self.http if f.remaining > 0]
                return status
        return None

    def take_slow(self) -> float:
        """Seconds to stall this request."""
        if self.slow_s <= 0:
            return 0.0
        if self.slow_remaining is not None:
            if self.slow_remaining <= 0:
                return 0.0
            self.slow_remaining -= 1
        return self.slow_s

    def clear(self) -> None:
        """No more faults."""
        self.http.clear()
        self.slow_s, self.slow_remaining = 0.0, None
        self.ws_refuse = self.ws_silent = False


class _Session:
    """One open notifications WebSocket."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Json] = asyncio.Queue()
        self.dropped = asyncio.Event()

    def push(self, message: Json) -> None:
        self.queue.put_nowait(message)


Handler = Callable[["UnifiApp", re.Match[str], dict[str, str], Any], Any]


class UnifiApp:
    """ASGI application over a Controller."""

    def __init__(self, controller: Controller, *, hello_interval_s: float = HELLO_INTERVAL_S):
        self.controller = controller
        self.hello_interval_s = hello_interval_s
        self.faults = Faults()
        self.requests = 0  # HTTP requests answered (WebSocket upgrades not counted)
        self.requests_by_route: dict[str, int] = {}
        self.sessions: set[_Session] = set()
        self.websocket_connects = 0

    def drop_websockets(self) -> int:
        """Close every open notifications link abruptly (close code 1011); return how many."""
        sessions = list(self.sessions)
        for session in sessions:
            session.dropped.set()
        return len(sessions)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "lifespan":
            message = await receive()
            while message["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
                message = await receive()
            await send({"type": "lifespan.shutdown.complete"})

    # --- HTTP ---------------------------------------------------------------------------

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        self.requests += 1
        path: str = scope["path"]
        method: str = scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = _query(scope.get("query_string", b""))
        delay = self.faults.take_slow()
        if delay:
            await asyncio.sleep(delay)
        fake = self.faults.take_http(path.removeprefix(API))
        if fake is not None:
            code, msg = _STATUS_TEXT.get(fake, ("CODE_SYSTEM_ERROR", "Injected failure."))
            extra = [(b"retry-after", b"1")] if fake == 429 else []
            await _respond(send, fake, {"code": code, "msg": msg, "data": None}, extra)
            return
        status, answer = self._route(method, path, headers, query, body)
        await _respond(send, status, answer)

    def _route(
        self, method: str, path: str, headers: dict[str, str], query: dict[str, str], body: bytes
    ) -> tuple[int, Json]:
        if not path.startswith(API + "/"):
            return 404, {"code": "CODE_NOT_EXISTS", "msg": "no such API", "data": None}
        sub = path.removeprefix(API)
        for route_method, pattern, scope, handler in ROUTES:
            match = pattern.fullmatch(sub)
            if match is None or route_method != method:
                continue
            key = f"{method} {pattern.pattern}"
            self.requests_by_route[key] = self.requests_by_route.get(key, 0) + 1
            try:
                self.controller.authorize(headers.get("authorization"), scope)
                payload = json.loads(body) if body.strip() else None
                data = handler(self, match, query, payload)
            except Refusal as refusal:
                return refusal.status, {"code": refusal.code, "msg": refusal.msg, "data": None}
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                return 200, {"code": "CODE_PARAMS_INVALID", "msg": str(exc), "data": None}
            if isinstance(data, tuple):  # (data, fields beside it)
                data, beside = data
            else:
                beside = {}
            answer: Json = {"code": "SUCCESS", "msg": "success", **beside}
            if data is not NO_DATA:
                answer["data"] = data
            return 200, answer
        known = any(p.fullmatch(sub) for _, p, _, _ in ROUTES)
        status = 405 if known else 404
        return status, {"code": "CODE_NOT_EXISTS", "msg": f"{method} {sub}", "data": None}

    # --- WebSocket ----------------------------------------------------------------------

    async def _websocket(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()  # websocket.connect
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["path"] != API + "/devices/notifications":
            await _deny(send, 404, {"code": "CODE_NOT_EXISTS", "msg": "no such socket"})
            return
        if self.faults.ws_refuse:
            await _deny(send, 503, {"code": "CODE_SYSTEM_ERROR", "msg": "Injected failure."})
            return
        try:
            self.controller.authorize(headers.get("authorization"), "view:device")
        except Refusal as refusal:
            await _deny(send, refusal.status, {"code": refusal.code, "msg": refusal.msg})
            return
        await send({"type": "websocket.accept"})
        self.websocket_connects += 1
        session = _Session()
        self.sessions.add(session)
        self.controller.listeners.add(session.push)
        gone = asyncio.ensure_future(_until_disconnect(receive))
        try:
            await self._pump(session, send, gone)
        finally:
            self.controller.listeners.discard(session.push)
            self.sessions.discard(session)
            gone.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gone

    async def _pump(self, session: _Session, send: Send, gone: asyncio.Future[None]) -> None:
        loop = asyncio.get_running_loop()
        next_hello = loop.time() + self.hello_interval_s
        dropped: asyncio.Future[Any] = asyncio.ensure_future(session.dropped.wait())
        item: asyncio.Future[Json] | None = None
        try:
            while True:
                if item is None:
                    item = asyncio.ensure_future(session.queue.get())
                waiters: set[asyncio.Future[Any]] = {item, gone, dropped}
                timeout = max(0.0, next_hello - loop.time())
                await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if gone.done():
                    return
                if dropped.done():
                    with contextlib.suppress(Exception):
                        await send({"type": "websocket.close", "code": 1011})
                    return
                if item.done():
                    message, item = item.result(), None
                    if not self.faults.ws_silent:
                        await send({"type": "websocket.send", "text": json.dumps(message)})
                if loop.time() >= next_hello:
                    next_hello = loop.time() + self.hello_interval_s
                    if not self.faults.ws_silent:
                        await send({"type": "websocket.send", "text": HELLO})
        finally:
            dropped.cancel()
            if item is not None:
                item.cancel()


# --- route handlers ----------------------------------------------------------------------


def _doors(app: UnifiApp, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    return [d.rest() for d in app.controller.doors.values()]


def _door(app: UnifiApp, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    return app.controller.door(m["id"]).rest() if m["id"] in app.controller.doors else _missing()


def _unlock(app: UnifiApp, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    body = body or {}
    actor_id, actor_name = body.get("actor_id"), body.get("actor_name")
    if (actor_id is None) != (actor_name is None):
        raise Refusal(200, "CODE_PARAMS_INVALID", "actor_id and actor_name go together")
    if m["id"] not in app.controller.doors:
        _missing()
    app.controller.remote_unlock(m["id"], actor_id or "", actor_name or "")
    return "success"


def _get_rule(app: UnifiApp, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    return app.controller.rule_of(m["id"]) if m["id"] in app.controller.doors else _missing()


def _put_rule(app: UnifiApp, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    if m["id"] not in app.controller.doors:
        _missing()
    app.controller.set_rule(m["id"], str(body["type"]), body.get("interval"))
    return "success"


def _topology(app: UnifiApp, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    return app.controller.topology()


def _devices(app: UnifiApp, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    return app.controller.devices()


def _visitors(app: UnifiApp, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    now = app.controller.clock()
    visitors = list(app.controller.visitors.values())
    if "status" in q:
        wanted = VISITOR_STATUS_CODES.get(int(q["status"]), "")
        visitors = [v for v in visitors if v.status(now) == wanted]
    page, size = int(q.get("page_num", 1)), int(q.get("page_size", 25))
    chunk = visitors[(page - 1) * size : page * size]
    pagination = {"page_num": page, "page_size": size, "total": len(visitors)}
    return [v.rest(now) for v in chunk], {"pagination": pagination}


def _create_visitor(app: UnifiApp, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    return app.controller.create_visitor(body).rest(app.controller.clock())


def _visitor(app: UnifiApp, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    return app.controller.visitor(m["id"]).rest(app.controller.clock())


def _update_visitor(app: UnifiApp, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    return app.controller.update_visitor(m["id"], body).rest(app.controller.clock())


def _delete_visitor(app: UnifiApp, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    app.controller.delete_visitor(m["id"], force=q.get("is_force", "false").lower() == "true")
    return None


def _assign_pin(app: UnifiApp, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    app.controller.assign_pin(m["id"], (body or {}).get("pin_code"))
    return NO_DATA  # real consoles leave `data` out here


def _generate_pin(app: UnifiApp, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    return app.controller.generate_pin()


def _logs(app: UnifiApp, m: re.Match[str], q: dict[str, str], body: Any) -> Any:
    body = body or {}
    if not isinstance(body.get("topic"), str):
        raise Refusal(200, "CODE_PARAMS_INVALID", "topic is required")
    since = int(body["since"]) if body.get("since") is not None else None
    until = int(body["until"]) if body.get("until") is not None else None
    hits = app.controller.query_logs(since, until) if body["topic"] in LOG_TOPICS else []
    page, size = int(q.get("page_num", 1)), int(q.get("page_size", 25))
    chunk = hits[(page - 1) * size : page * size]
    return {"hits": chunk}, {"page": page, "total": len(hits)}


def _missing() -> Any:
    raise Refusal(404, "CODE_RESOURCE_NOT_FOUND", "The requested resource was not found.")


_ID = r"(?P<id>[^/]+)"
ROUTES: Final[list[tuple[str, re.Pattern[str], str, Handler]]] = [
    ("GET", re.compile("/doors"), "view:space", _doors),
    ("GET", re.compile(f"/doors/{_ID}"), "view:space", _door),
    ("PUT", re.compile(f"/doors/{_ID}/unlock"), "edit:space", _unlock),
    ("GET", re.compile(f"/doors/{_ID}/lock_rule"), "view:space", _get_rule),
    ("PUT", re.compile(f"/doors/{_ID}/lock_rule"), "edit:space", _put_rule),
    ("GET", re.compile("/door_groups/topology"), "view:space", _topology),
    ("GET", re.compile("/devices"), "view:device", _devices),
    ("GET", re.compile("/visitors"), "view:visitor", _visitors),
    ("POST", re.compile("/visitors"), "edit:visitor", _create_visitor),
    ("GET", re.compile(f"/visitors/{_ID}"), "view:visitor", _visitor),
    ("PUT", re.compile(f"/visitors/{_ID}"), "edit:visitor", _update_visitor),
    ("DELETE", re.compile(f"/visitors/{_ID}"), "edit:visitor", _delete_visitor),
    ("PUT", re.compile(f"/visitors/{_ID}/pin_codes"), "edit:visitor", _assign_pin),
    ("POST", re.compile("/credentials/pin_codes"), "view:credential", _generate_pin),
    ("POST", re.compile("/system/logs"), "view:system_log", _logs),
]


# --- ASGI plumbing -----------------------------------------------------------------------


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _query(raw: bytes) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(raw.decode("latin-1")))


async def _respond(
    send: Send, status: int, body: Json, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": data})


async def _deny(send: Send, status: int, body: Json) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "websocket.http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "websocket.http.response.body", "body": data})


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "websocket.disconnect":
        pass
