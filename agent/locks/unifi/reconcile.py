"""PIN reconciliation: our desired codes become UniFi visitors holding the PIN and the window.

`plan()` is pure: desired codes (each with the doors of this controller it opens) against what we
know exists on the controller → deletions, updates, PIN assignments, creations and PIN conflicts.
`Reconciler` carries a plan out (deletions first, so a PIN freed by a revoked code can be reused
in the same pass), a few requests at a time, and keeps each code's delivery state.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from agent.clock import Clock
from agent.locks.base import CodeState, LockCode
from agent.locks.unifi.client import UnifiClient, VisitorSpec, resources_for
from agent.locks.unifi.errors import (
    NotFound,
    PinInvalid,
    PinTaken,
    UnifiError,
)
from agent.locks.unifi.reconnect import Verdict, classify
from agent.locks.unifi.state import KnownVisitor, UnifiState
from sync_protocol.models import DeliveryState

log = logging.getLogger(__name__)

PARALLEL_REQUESTS: Final = 4  # matches the client's connection pool
PERMANENT_END: Final = 4_102_444_799  # 2099-12-31T23:59:59Z: the end of a code without one
FULL_RESYNC_S: Final = 3600.0  # re-read every visitor hourly: heals edits made in the console
RETRY_FAILED_S: Final = 300.0  # a refused code (PIN taken, …) is tried again this often
MAX_ERROR_CHARS: Final = 200  # CodeDelivery.error is ShortText
MARKER_RE: Final = re.compile(
    r"kasify:code=(?P<code>[A-Za-z0-9][A-Za-z0-9_.:-]*)(?: gw=(?P<gw>\w+))?"
)

PIN_TAKEN: Final = "PIN already taken on the UniFi controller (by another user or visitor)"


@dataclass(frozen=True, slots=True)
class Wanted:
    """A desired code and the doors of this controller it must open."""

    code: LockCode
    doors: tuple[str, ...]


def visitor_spec(wanted: Wanted, instance: str, now: float) -> VisitorSpec:
    """The visitor a code becomes: named for the guest, our code id in the remarks."""
    code = wanted.code
    label = " ".join(code.label.split())
    if label:
        first, _, last = label.partition(" ")
        last = last or f"({code.kind.value})"
    else:
        first, last = "Kasify", f"{code.kind.value} {code.code_id[:8]}"
    remarks = f"Managed by Kasify Edge; edits here are overwritten. kasify:code={code.code_id}"
    remarks += f" gw={instance}"
    if code.booking_id:
        remarks += f" booking={code.booking_id}"
    start = int(code.starts_at) if code.starts_at is not None else int(now // 60 * 60)
    end = math.ceil(code.ends_at) if code.ends_at is not None else PERMANENT_END
    return VisitorSpec(
        first_name=first,
        last_name=last,
        start_time=start,
        end_time=max(end, start + 60),
        remarks=remarks,
        resources=resources_for(wanted.doors),
    )


def window_fingerprint(wanted: Wanted) -> str:
    """What a visitor's fields depend on (times, name, doors), as a short digest."""
    code = wanted.code
    basis: list[object] = [code.starts_at, code.ends_at, code.label, code.kind.value]
    basis += [code.booking_id, *wanted.doors]
    return hashlib.sha256(json.dumps(basis).encode()).hexdigest()[:16]


def expired(code: LockCode, now: float) -> bool:
    """Whether a code's window is over."""
    return code.ends_at is not None and code.ends_at <= now


@dataclass(frozen=True, slots=True)
class Plan:
    """What one pass has to do."""

    deletes: tuple[str, ...] = ()  # code ids whose visitor goes
    updates: tuple[str, ...] = ()  # visitor fields changed
    pins: tuple[str, ...] = ()  # PIN to (re)assign on an existing visitor
    creates: tuple[str, ...] = ()  # new visitor, then its PIN
    conflicts: Mapping[str, str] = field(default_factory=dict)  # code id -> code keeping the PIN

    @property
    def empty(self) -> bool:
        """Nothing to send."""
        return not (self.deletes or self.updates or self.pins or self.creates)


def plan(
    wanted: Mapping[str, Wanted],
    known: Mapping[str, KnownVisitor],
    *,
    now: float,
    pin_fp: Callable[[LockCode], str],
) -> Plan:
    """Compare desired with known; pure."""
    active = {cid: w for cid, w in wanted.items() if not expired(w.code, now)}
    by_pin: dict[str, list[str]] = {}
    for cid, w in active.items():
        by_pin.setdefault(w.code.pin, []).append(cid)
    conflicts: dict[str, str] = {}
    for holders in by_pin.values():
        if len(holders) < 2:
            continue

        def rank(cid: str) -> tuple[bool, float, str]:
            holds = cid in known and known[cid].pin == pin_fp(active[cid].code)
            start = active[cid].code.starts_at
            return (not holds, start if start is not None else -math.inf, cid)

        keeper, *others = sorted(holders, key=rank)
        conflicts.update(dict.fromkeys(others, keeper))
    deletes = tuple(sorted(cid for cid in known if cid not in active))
    updates, pins, creates = [], [], []
    for cid in sorted(active):
        if cid in conflicts:
            continue
        w = active[cid]
        k = known.get(cid)
        if k is None:
            creates.append(cid)
            continue
        if k.window != window_fingerprint(w):
            updates.append(cid)
        if k.pin != pin_fp(w.code):
            pins.append(cid)
    return Plan(deletes, tuple(updates), tuple(pins), tuple(creates), conflicts)


@dataclass(frozen=True, slots=True)
class PassResult:
    """How a pass ended: whether to come back soon, and a problem that needs a person."""

    retry_in_s: float | None = None
    needs_user: str | None = None
    requests: int = 0


class _Abort(Exception):
    """A pass stops: the error needs a person (token, scope, certificate)."""

    def __init__(self, error: UnifiError) -> None:
        super().__init__(str(error))
        self.error = error


class Reconciler:
    """Carries plans out against one controller and keeps each code's delivery state."""

    def __init__(
        self,
        state: UnifiState,
        clock: Clock,
        instance: str,
        *,
        parallel: int = PARALLEL_REQUESTS,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.state = state
        self.clock = clock
        self.instance = instance
        self.codes: dict[str, CodeState] = {}  # per code id, the same for each of its doors
        self.last_full_sync: float | None = None
        self._parallel = parallel
        self._on_change = on_change
        self._retry_soon = False
        self._failed: dict[str, tuple[float, str]] = {}  # code id -> (when, what we wanted)

    def need_full_sync(self) -> None:
        """Read every visitor again on the next pass (after a restart or a new controller)."""
        self.last_full_sync = None

    def fail_all(self, wanted: Mapping[str, Wanted], message: str) -> None:
        """Report every code not on the controller as failed for a reason that needs a person."""
        for cid in wanted:
            if self.codes.get(cid, CodeState(DeliveryState.UNSET)).state is not DeliveryState.SET:
                self.codes[cid] = CodeState(DeliveryState.FAILED, message[:MAX_ERROR_CHARS])
        self._on_change()

    def forget_gone(self, wanted: Mapping[str, Wanted]) -> None:
        """Drop states of codes no longer desired and no longer on the controller."""
        for cid in list(self.codes):
            if cid not in wanted and cid not in self.state.visitors:
                del self.codes[cid]

    async def run(self, client: UnifiClient, wanted: Mapping[str, Wanted]) -> PassResult:
        """One pass; never raises a UnifiError (the result says what happened)."""
        before = client.requests
        self._retry_soon = False
        now = self.clock.now()
        try:
            if self.last_full_sync is None or now - self.last_full_sync >= FULL_RESYNC_S:
                await self._full_sync(client, wanted)
                self.last_full_sync = now
            work = self._plan(wanted, now)
            await self._gather([self._delete(client, cid, now) for cid in work.deletes])
            changed = sorted(set(work.updates) | set(work.pins))
            await self._gather(
                [self._refresh(client, cid, wanted[cid], cid in work.pins, now) for cid in changed]
            )
            await self._gather(
                [self._create(client, cid, wanted[cid], now) for cid in work.creates]
            )
        except _Abort as abort:
            return self._needs_user(abort.error, wanted, client.requests - before)
        except UnifiError as exc:  # the visitor list could not be read
            if classify(exc) is Verdict.NEEDS_USER:
                return self._needs_user(exc, wanted, client.requests - before)
            log.warning("UniFi reconcile: %s", exc)
            self._retry_soon = True
        for cid, w in wanted.items():  # expired and deleted, but still in the desired set
            if expired(w.code, now) and cid not in self.state.visitors:
                self.codes[cid] = CodeState(DeliveryState.UNSET)
        self.forget_gone(wanted)
        self.state.changed()
        self._on_change()
        retry = 0.0 if self._retry_soon else self._next_failed_retry(now)
        return PassResult(retry_in_s=retry, requests=client.requests - before)

    def _needs_user(
        self, error: UnifiError, wanted: Mapping[str, Wanted], requests: int
    ) -> PassResult:
        self.fail_all(wanted, str(error))
        self.state.changed()
        return PassResult(needs_user=str(error), requests=requests)

    def _plan(self, wanted: Mapping[str, Wanted], now: float) -> Plan:
        work = plan(wanted, self.state.visitors, now=now, pin_fp=self._pin_fp)
        for cid, keeper in work.conflicts.items():
            self.codes[cid] = CodeState(
                DeliveryState.FAILED,
                f"PIN also used by code {keeper} on this UniFi controller; UniFi PINs must "
                "be unique"[:MAX_ERROR_CHARS],
            )
        for cid, w in wanted.items():
            if expired(w.code, now) and cid not in self.state.visitors:
                self.codes[cid] = CodeState(DeliveryState.UNSET)
        # A code refused a moment ago waits for RETRY_FAILED_S unless what we want changed.
        resting = {
            cid
            for cid, (at, signature) in self._failed.items()
            if cid in wanted
            and now - at < RETRY_FAILED_S
            and signature == self._signature(wanted[cid])
        }
        work = Plan(
            work.deletes,
            tuple(c for c in work.updates if c not in resting),
            tuple(c for c in work.pins if c not in resting),
            tuple(c for c in work.creates if c not in resting),
            work.conflicts,
        )
        pending = set(work.updates) | set(work.pins) | set(work.creates)
        for cid in pending:
            current = self.codes.get(cid)
            if current is None or current.state is not DeliveryState.FAILED:
                self.codes[cid] = CodeState(DeliveryState.SETTING)
        for cid in wanted:
            if (
                cid not in pending
                and cid not in resting
                and cid not in work.conflicts
                and cid in self.state.visitors
            ):
                self.codes[cid] = CodeState(DeliveryState.SET)
                self._failed.pop(cid, None)
        self._on_change()
        return work

    def _signature(self, wanted: Wanted) -> str:
        return window_fingerprint(wanted) + self._pin_fp(wanted.code)

    def _pin_fp(self, code: LockCode) -> str:
        return self.state.pin_fingerprint(code.code_id, code.pin)

    async def _gather(self, jobs: list[Coroutine[Any, Any, None]]) -> None:
        if not jobs:
            return
        gate = asyncio.Semaphore(self._parallel)
        abort: list[_Abort] = []

        async def gated(job: Coroutine[Any, Any, None]) -> None:
            async with gate:
                if abort:
                    job.close()  # never started: a problem that needs a person stopped the pass
                    return
                try:
                    await job
                except _Abort as exc:
                    abort.append(exc)

        await asyncio.gather(*(gated(job) for job in jobs))
        if abort:
            raise abort[0]

    def _handle(self, cid: str, wanted: Wanted, exc: UnifiError, now: float) -> None:
        """Sort a per-code failure: abort, retry soon, or report failed until RETRY_FAILED_S."""
        if classify(exc) is Verdict.NEEDS_USER:
            raise _Abort(exc)
        if exc.retryable:
            self._retry_soon = True
            log.info("UniFi code %s: %s (will retry)", cid, exc)
            return
        if isinstance(exc, PinTaken):
            reason = PIN_TAKEN
        elif isinstance(exc, PinInvalid):
            reason = f"PIN length not accepted by the UniFi controller ({exc.msg or exc.code})"
        else:
            reason = str(exc)
        self.codes[cid] = CodeState(DeliveryState.FAILED, reason[:MAX_ERROR_CHARS])
        self._failed[cid] = (now, self._signature(wanted))
        log.warning("UniFi code %s failed: %s", cid, reason)

    def _next_failed_retry(self, now: float) -> float | None:
        if not self._failed:
            return None
        return max(0.0, min(at for at, _ in self._failed.values()) + RETRY_FAILED_S - now)

    # --- operations ---------------------------------------------------------------------

    async def _delete(self, client: UnifiClient, cid: str, now: float) -> None:
        known = self.state.visitors[cid]
        try:
            await client.delete_visitor(known.visitor_id, force=True)
        except NotFound:
            pass  # already gone (deleted in the console)
        except UnifiError as exc:
            if classify(exc) is Verdict.NEEDS_USER:
                raise _Abort(exc) from None
            self._retry_soon = True
            return
        self.state.retire(cid, known, now)
        del self.state.visitors[cid]
        self.codes.pop(cid, None)
        self._failed.pop(cid, None)

    async def _refresh(
        self, client: UnifiClient, cid: str, wanted: Wanted, pin: bool, now: float
    ) -> None:
        known = self.state.visitors[cid]
        fingerprint = window_fingerprint(wanted)
        try:
            if known.window != fingerprint:
                spec = visitor_spec(wanted, self.instance, now)
                await client.update_visitor(known.visitor_id, spec)
                known.window, known.doors = fingerprint, wanted.doors
                known.booking_id, known.task_id = wanted.code.booking_id, None
            if pin:
                await client.assign_pin(known.visitor_id, wanted.code.pin)
                known.pin = self._pin_fp(wanted.code)
        except NotFound:
            del self.state.visitors[cid]  # deleted in the console: create it again next pass
            self._retry_soon = True
            return
        except UnifiError as exc:
            self._handle(cid, wanted, exc, now)
            return
        self._done(cid)

    async def _create(self, client: UnifiClient, cid: str, wanted: Wanted, now: float) -> None:
        try:
            visitor = await client.create_visitor(visitor_spec(wanted, self.instance, now))
        except UnifiError as exc:
            self._handle(cid, wanted, exc, now)
            return
        known = KnownVisitor(
            visitor.id, window_fingerprint(wanted), wanted.doors, None, wanted.code.booking_id
        )
        self.state.visitors[cid] = known
        try:
            await client.assign_pin(visitor.id, wanted.code.pin)
        except UnifiError as exc:
            self._handle(cid, wanted, exc, now)
            return
        known.pin = self._pin_fp(wanted.code)
        self._done(cid)

    def _done(self, cid: str) -> None:
        self.codes[cid] = CodeState(DeliveryState.SET)
        self._failed.pop(cid, None)

    async def _full_sync(self, client: UnifiClient, wanted: Mapping[str, Wanted]) -> None:
        """Adopt our visitors the state does not know, delete our orphans, forget vanished ones."""
        visitors = await client.visitors()
        on_controller = {v.id for v in visitors}
        for cid, known in list(self.state.visitors.items()):
            if known.visitor_id not in on_controller:
                log.info("UniFi visitor of code %s vanished from the controller", cid)
                del self.state.visitors[cid]
        ours = {k.visitor_id for k in self.state.visitors.values()}
        orphans: list[str] = []
        for visitor in visitors:
            match = MARKER_RE.search(visitor.remarks)
            if match is None or visitor.id in ours:
                continue
            cid = match["code"]
            if cid in wanted and cid not in self.state.visitors:
                self.state.visitors[cid] = KnownVisitor(visitor.id, "", (), None)
                ours.add(visitor.id)
            elif match["gw"] == self.instance:
                orphans.append(visitor.id)
        for visitor_id in orphans:
            try:
                await client.delete_visitor(visitor_id, force=True)
            except NotFound:
                continue
            except UnifiError as exc:
                if classify(exc) is Verdict.NEEDS_USER:
                    raise _Abort(exc) from None
                self._retry_soon = True
