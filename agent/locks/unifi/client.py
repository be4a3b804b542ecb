"""REST client of the UniFi Access developer API (httpx, pinned TLS, typed answers).

Every call names its endpoint and the scope that endpoint needs, so a 403 can say which scope
the token lacks. `unwrap` reads the response envelope in all its shapes (data as object, list,
null, the string "success", or missing), checking the HTTP status first and then `code`.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

import httpx

from agent.locks.unifi.errors import (
    ApiError,
    CertificateRefused,
    ControllerFailure,
    ControllerTimeout,
    ControllerUnreachable,
    DeviceOffline,
    NotFound,
    ParamsInvalid,
    PinInvalid,
    PinTaken,
    ProtocolError,
    RuleUnsupported,
    ScopeMissing,
    Throttled,
    TokenRejected,
)
from agent.locks.unifi.models import (
    Device,
    Door,
    LockRule,
    LockRuleType,
    LogEntry,
    LogPage,
    Resource,
    TopologyDoor,
    Visitor,
    parse_devices,
    parse_door,
    parse_doors,
    parse_lock_rule,
    parse_log_page,
    parse_topology,
    parse_visitor,
    parse_visitors,
)
from agent.locks.unifi.trust import TrustRecord, find_pin_mismatch

REQUEST_TIMEOUT_S: Final = 10.0  # a console busy with many doors answers within a few seconds
CONNECT_TIMEOUT_S: Final = 5.0  # TCP + TLS on the LAN; longer means the console is away
MAX_CONNECTIONS: Final = 4  # the controller publishes no rate limit; stay polite in parallel
VISITOR_PAGE_SIZE: Final = 100
LOG_PAGE_SIZE: Final = 100
MAX_PAGES: Final = 100  # a runaway pagination (total never reached) stops here
SUCCESS: Final = "SUCCESS"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One API call: method, path below /api/v1/developer, and the scope it needs."""

    method: str
    path: str
    scope: str

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


DOORS = Endpoint("GET", "/doors", "view:space")
DOOR = Endpoint("GET", "/doors/{id}", "view:space")
UNLOCK = Endpoint("PUT", "/doors/{id}/unlock", "edit:space")
LOCK_RULE = Endpoint("GET", "/doors/{id}/lock_rule", "view:space")
SET_LOCK_RULE = Endpoint("PUT", "/doors/{id}/lock_rule", "edit:space")
TOPOLOGY = Endpoint("GET", "/door_groups/topology", "view:space")
DEVICES = Endpoint("GET", "/devices", "view:device")
VISITORS = Endpoint("GET", "/visitors", "view:visitor")
VISITOR = Endpoint("GET", "/visitors/{id}", "view:visitor")
CREATE_VISITOR = Endpoint("POST", "/visitors", "edit:visitor")
UPDATE_VISITOR = Endpoint("PUT", "/visitors/{id}", "edit:visitor")
DELETE_VISITOR = Endpoint("DELETE", "/visitors/{id}", "edit:visitor")
ASSIGN_PIN = Endpoint("PUT", "/visitors/{id}/pin_codes", "edit:visitor")
GENERATE_PIN = Endpoint("POST", "/credentials/pin_codes", "view:credential")
SYSTEM_LOGS = Endpoint("POST", "/system/logs", "view:system_log")
NOTIFICATIONS = Endpoint("GET", "/devices/notifications", "view:device")

_CODE_ERRORS: Final[Mapping[str, type[ApiError]]] = {
    "CODE_RESOURCE_NOT_FOUND": NotFound,
    "CODE_NOT_EXISTS": NotFound,
    "CODE_SYSTEM_ERROR": ControllerFailure,
    "CODE_DEVICE_DEVICE_OFFLINE": DeviceOffline,
    "CODE_CREDS_PIN_CODE_CREDS_ALREADY_EXIST": PinTaken,
    "CODE_CREDS_PIN_CODE_CREDS_LENGTH_INVALID": PinInvalid,
    "CODE_PARAMS_INVALID": ParamsInvalid,
}
_TOKEN_CODES: Final = frozenset({"CODE_AUTH_FAILED", "CODE_ACCESS_TOKEN_INVALID"})
_SCOPE_CODES: Final = frozenset({"CODE_UNAUTHORIZED", "CODE_OPERATION_FORBIDDEN"})


@dataclass(frozen=True, slots=True)
class Answer:
    """A successful response: its `data` and the whole envelope (pagination sits beside data)."""

    data: Any
    envelope: Mapping[str, Any] = field(default_factory=dict)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return max(0.0, float(headers.get("retry-after", "")))
    except ValueError:
        return None


def unwrap(endpoint: Endpoint, status: int, headers: Mapping[str, str], body: bytes) -> Answer:
    """Read a response: HTTP status first, then the envelope's code; raise the fitting ApiError."""
    envelope: dict[str, Any] = {}
    parse_error: str | None = None
    if body.strip():
        try:
            value = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            parse_error = str(exc)
        else:
            envelope = value if isinstance(value, dict) else {"code": SUCCESS, "data": value}
    raw_code = envelope.get("code")
    code = raw_code.strip().upper() if isinstance(raw_code, str) and raw_code.strip() else None
    msg_value = envelope.get("msg")
    msg = msg_value if isinstance(msg_value, str) else None
    label = str(endpoint)
    if status == 401 or code in _TOKEN_CODES:
        raise TokenRejected(label, status, code, msg)
    if status == 403 or code in _SCOPE_CODES:
        raise ScopeMissing(label, status, code, msg, endpoint.scope)
    if status == 429:
        raise Throttled(label, status, code, msg, _retry_after(headers))
    if status >= 500:
        raise ControllerFailure(label, status, code, msg)
    if code is not None and code != SUCCESS:
        error = _CODE_ERRORS.get(code, ApiError)
        if error is NotFound and endpoint in (LOCK_RULE, SET_LOCK_RULE):
            error = RuleUnsupported
        raise error(label, status, code, msg)
    if status == 404:
        error = RuleUnsupported if endpoint in (LOCK_RULE, SET_LOCK_RULE) else NotFound
        raise error(label, status, code, msg)
    if not 200 <= status < 300:
        raise ApiError(label, status, code, msg, parse_error or "")
    if parse_error is not None:
        raise ProtocolError(label, f"not JSON ({parse_error})")
    return Answer(envelope.get("data"), envelope)


@dataclass(frozen=True, slots=True)
class VisitorSpec:
    """What we ask the controller to hold for one of our codes."""

    first_name: str
    last_name: str
    start_time: int
    end_time: int
    remarks: str = ""
    resources: tuple[Resource, ...] = ()
    visit_reason: str = "Others"
    # Recurring access: day name -> [{"start_time": "HH:MM:SS", "end_time": "HH:MM:SS"}];
    # None: any time within start_time..end_time.
    week_schedule: Mapping[str, Sequence[Mapping[str, str]]] | None = None

    def body(self) -> dict[str, Any]:
        """The JSON body of create and update."""
        body: dict[str, Any] = {
            "first_name": self.first_name,
            "last_name": self.last_name,
            "remarks": self.remarks,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "visit_reason": self.visit_reason,
            "resources": [{"id": r.id, "type": r.type} for r in self.resources],
        }
        if self.week_schedule is not None:
            body["week_schedule"] = {
                day: [dict(period) for period in periods]
                for day, periods in self.week_schedule.items()
            }
        return body


class UnifiClient:
    """The developer API of one controller."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        verify: ssl.SSLContext,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = REQUEST_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.url = url
        self.requests = 0  # HTTP requests sent, for the benchmark and the tests
        self._http = httpx.AsyncClient(
            base_url=url.rstrip("/") + "/api/v1/developer",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            verify=verify,
            transport=transport,
            timeout=httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            trust_env=False,  # a LAN console: no proxies from the environment
        )

    @classmethod
    def for_record(cls, record: TrustRecord, token: str, **options: Any) -> UnifiClient:
        """A client for a trusted controller, pinned to its certificate."""
        return cls(record.url, token, verify=record.context(), **options)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def call(
        self,
        endpoint: Endpoint,
        *,
        ident: str | None = None,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
    ) -> Answer:
        """Send one request and unwrap its answer; transport failures become UnifiErrors."""
        path = endpoint.path.format(id=quote(ident or "", safe=""))
        self.requests += 1
        try:
            response = await self._http.request(
                endpoint.method,
                path,
                params=dict(params) if params else None,
                json=body,
            )
        except httpx.TimeoutException as exc:
            raise ControllerTimeout(self.url, f"{endpoint}: no answer ({exc!r})") from exc
        except RuntimeError as exc:  # the pool was closed under us (setup changed, stopping)
            raise ControllerUnreachable(self.url, f"{endpoint}: {exc}") from exc
        except httpx.TransportError as exc:
            mismatch = find_pin_mismatch(exc)
            if mismatch is not None:
                raise CertificateRefused(self.url, mismatch.expected, mismatch.actual) from None
            raise ControllerUnreachable(
                self.url, f"{endpoint}: {exc or type(exc).__name__}"
            ) from exc
        return unwrap(endpoint, response.status_code, response.headers, response.content)

    # --- doors ---------------------------------------------------------------------------

    async def doors(self) -> tuple[Door, ...]:
        """Every door with its relay and position."""
        return parse_doors((await self.call(DOORS)).data)

    async def door(self, door_id: str) -> Door:
        """One door."""
        door = parse_door((await self.call(DOOR, ident=door_id)).data)
        if door is None:
            raise ProtocolError(str(DOOR), f"no door in the answer for {door_id}")
        return door

    async def topology(self) -> tuple[TopologyDoor, ...]:
        """Doors with their floor and building."""
        return parse_topology((await self.call(TOPOLOGY)).data)

    async def devices(self) -> tuple[Device, ...]:
        """Hubs and readers with the door each serves."""
        return parse_devices((await self.call(DEVICES)).data)

    async def unlock(
        self,
        door_id: str,
        *,
        actor_id: str | None = None,
        actor_name: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Unlock a door once (needs a bound hub); actor id and name go together or not at all."""
        if (actor_id is None) != (actor_name is None):
            raise ValueError("actor_id and actor_name go together")
        body: dict[str, Any] = {}
        if actor_id is not None:
            body.update(actor_id=actor_id, actor_name=actor_name)
        if extra:
            body["extra"] = dict(extra)
        await self.call(UNLOCK, ident=door_id, body=body or None)

    async def set_lock_rule(
        self, door_id: str, rule: LockRuleType, interval_min: int | None = None
    ) -> None:
        """Set a temporary lock rule (RuleUnsupported when the hub has none)."""
        body: dict[str, Any] = {"type": rule.value}
        if interval_min is not None:
            body["interval"] = interval_min
        await self.call(SET_LOCK_RULE, ident=door_id, body=body)

    async def lock_rule(self, door_id: str) -> LockRule:
        """The door's current lock rule (RuleUnsupported when the hub has none)."""
        return parse_lock_rule((await self.call(LOCK_RULE, ident=door_id)).data)

    # --- visitors and PINs ---------------------------------------------------------------

    async def visitors(self, page_size: int = VISITOR_PAGE_SIZE) -> tuple[Visitor, ...]:
        """Every visitor, all pages."""
        found: list[Visitor] = []
        for page in range(1, MAX_PAGES + 1):
            answer = await self.call(VISITORS, params={"page_num": page, "page_size": page_size})
            items = answer.data if isinstance(answer.data, list) else []
            found.extend(parse_visitors(items))
            total = _total(answer.envelope)
            if len(items) < page_size or (total is not None and len(found) >= total):
                break
        return tuple(found)

    async def visitor(self, visitor_id: str) -> Visitor:
        """One visitor."""
        visitor = parse_visitor((await self.call(VISITOR, ident=visitor_id)).data)
        if visitor is None:
            raise ProtocolError(str(VISITOR), f"no visitor in the answer for {visitor_id}")
        return visitor

    async def create_visitor(self, spec: VisitorSpec) -> Visitor:
        """Create a visitor; the answer carries its id."""
        visitor = parse_visitor((await self.call(CREATE_VISITOR, body=spec.body())).data)
        if visitor is None:
            raise ProtocolError(str(CREATE_VISITOR), "the answer carries no visitor id")
        return visitor

    async def update_visitor(self, visitor_id: str, spec: VisitorSpec) -> None:
        """Move a visitor's window, rename it or change its doors."""
        await self.call(UPDATE_VISITOR, ident=visitor_id, body=spec.body())

    async def assign_pin(self, visitor_id: str, pin: str) -> None:
        """Give a visitor its PIN (PinTaken when someone on the controller holds it)."""
        await self.call(ASSIGN_PIN, ident=visitor_id, body={"pin_code": pin})

    async def delete_visitor(self, visitor_id: str, *, force: bool = True) -> None:
        """Delete a visitor (without force the controller only cancels it)."""
        params = {"is_force": "true"} if force else None
        await self.call(DELETE_VISITOR, ident=visitor_id, params=params)

    async def generate_pin(self) -> str:
        """A fresh PIN the controller considers free."""
        data = (await self.call(GENERATE_PIN)).data
        if isinstance(data, dict):
            data = data.get("pin_code") or data.get("pin")
        if not isinstance(data, str | int) or not str(data).isdigit():
            raise ProtocolError(str(GENERATE_PIN), "no PIN in the answer")
        return str(data)

    # --- system logs ---------------------------------------------------------------------

    async def system_logs(
        self,
        *,
        topic: str = "door_openings",
        since: int | None = None,
        until: int | None = None,
        page_num: int = 1,
        page_size: int = LOG_PAGE_SIZE,
    ) -> LogPage:
        """One page of system logs."""
        body: dict[str, Any] = {"topic": topic}
        if since is not None:
            body["since"] = since
        if until is not None:
            body["until"] = until
        answer = await self.call(
            SYSTEM_LOGS, params={"page_num": page_num, "page_size": page_size}, body=body
        )
        return parse_log_page(answer.data, answer.envelope)

    async def all_system_logs(
        self,
        *,
        topic: str = "door_openings",
        since: int | None = None,
        until: int | None = None,
        page_size: int = LOG_PAGE_SIZE,
    ) -> list[LogEntry]:
        """Every entry in the range, oldest first, across pages."""
        entries: list[LogEntry] = []
        for page in range(1, MAX_PAGES + 1):
            got = await self.system_logs(
                topic=topic, since=since, until=until, page_num=page, page_size=page_size
            )
            entries.extend(got.entries)
            if not got.entries or len(entries) >= got.total:
                break
        return sorted(entries, key=lambda e: (e.at, e.id))


def _total(envelope: Mapping[str, Any]) -> int | None:
    pagination = envelope.get("pagination")
    if isinstance(pagination, dict):
        value = pagination.get("total")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
    return None


def resources_for(door_ids: Sequence[str]) -> tuple[Resource, ...]:
    """Visitor resources for these doors."""
    return tuple(Resource(door_id, "door") for door_id in sorted(door_ids))
