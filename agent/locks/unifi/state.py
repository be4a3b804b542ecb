"""What the UniFi integration remembers across restarts, in `state_dir/unifi/state.json` (0600).

Never a PIN: per code the visitor id, a fingerprint of the window, the doors, and an HMAC of the
PIN under a key of its own (so a changed PIN is noticed without storing it); per controller the
system-log position and the ids of entries already turned into events. The file is bound to the
controller's certificate fingerprint: another controller starts from nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from agent.identity import write_file

log = logging.getLogger(__name__)

STATE_SUBDIR: Final = "unifi"
STATE_FILE: Final = "state.json"
KEY_FILE: Final = "pin_fingerprint.key"
SEEN_RETENTION_S: Final = 86_400.0  # log ids older than a day before the cursor are forgotten
MAX_SEEN: Final = 5_000  # bound on remembered log ids (a busy door has a few hundred a day)
RETIRED_RETENTION_S: Final = 7 * 86_400.0  # late entries of a deleted visitor still map back


@dataclass(slots=True)
class KnownVisitor:
    """One of our codes as it exists on the controller."""

    visitor_id: str
    window: str  # fingerprint of what the visitor carries (times, name, doors)
    doors: tuple[str, ...]
    pin: str | None  # HMAC of the PIN assigned, None while none is
    booking_id: str | None = None
    task_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        data = asdict(self)
        data["doors"] = list(self.doors)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KnownVisitor:
        """From JSON; raise KeyError/TypeError when malformed."""
        return cls(
            visitor_id=str(data["visitor_id"]),
            window=str(data.get("window", "")),
            doors=tuple(str(d) for d in data.get("doors", ())),
            pin=data.get("pin"),
            booking_id=data.get("booking_id"),
            task_id=data.get("task_id"),
        )


@dataclass(frozen=True, slots=True)
class Retired:
    """A visitor we deleted, kept a while so late log entries still name the code."""

    code_id: str
    booking_id: str | None
    task_id: str | None
    at: float


class UnifiState:
    """The integration's memory; saved by one writer thread, atomically."""

    def __init__(self, directory: Path, controller: str) -> None:
        self.directory = directory
        self.controller = controller
        self.visitors: dict[str, KnownVisitor] = {}
        self.retired: dict[str, Retired] = {}  # by visitor id
        self.log_cursor: float | None = None  # controller time of the newest entry handled
        self.seen: dict[str, float] = {}  # log entry id -> its time
        self._key: bytes | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="unifi-state")
        self._saving: asyncio.Task[None] | None = None
        self._dirty = False

    # --- loading and saving --------------------------------------------------------------

    @classmethod
    def load(cls, state_dir: Path, controller: str) -> UnifiState:
        """Read the state for this controller (blocking; call from the executor or at start)."""
        state = cls(state_dir / STATE_SUBDIR, controller)
        state._key = _load_or_create_key(state.directory / KEY_FILE)
        path = state.directory / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return state
        except (OSError, ValueError) as exc:
            log.warning("UniFi state %s unreadable (%s): starting afresh", path, exc)
            return state
        if not isinstance(data, dict) or data.get("controller") != controller:
            log.info("UniFi state belongs to another controller: starting afresh")
            return state
        try:
            state.visitors = {
                str(code_id): KnownVisitor.from_json(item)
                for code_id, item in dict(data.get("visitors", {})).items()
            }
            state.retired = {
                str(vid): Retired(
                    str(r["code_id"]), r.get("booking_id"), r.get("task_id"), float(r["at"])
                )
                for vid, r in dict(data.get("retired", {})).items()
            }
            cursor = data.get("log_cursor")
            state.log_cursor = float(cursor) if cursor is not None else None
            state.seen = {str(k): float(v) for k, v in dict(data.get("seen", {})).items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("UniFi state %s malformed (%s): starting afresh", path, exc)
            fresh = cls(state_dir / STATE_SUBDIR, controller)
            fresh._key = state._key
            return fresh
        return state

    def snapshot(self) -> bytes:
        """The JSON to write."""
        return json.dumps(
            {
                "v": 1,
                "controller": self.controller,
                "visitors": {k: v.to_json() for k, v in sorted(self.visitors.items())},
                "retired": {k: asdict(v) for k, v in self.retired.items()},
                "log_cursor": self.log_cursor,
                "seen": self.seen,
            },
            separators=(",", ":"),
        ).encode()

    def write_now(self) -> None:
        """Write synchronously (blocking)."""
        write_file(self.directory / STATE_FILE, self.snapshot(), secret=True)

    def changed(self) -> None:
        """Schedule a save; saves coalesce, and one runs at a time on the writer thread."""
        self._dirty = True
        if self._saving is None or self._saving.done():
            self._saving = asyncio.get_running_loop().create_task(self._save_loop())

    async def flush(self) -> None:
        """Wait until everything changed so far is on disk."""
        while self._saving is not None and not self._saving.done():
            await asyncio.shield(self._saving)
        if self._dirty:
            self.changed()
            await self.flush()

    async def _save_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while self._dirty:
            self._dirty = False
            data = self.snapshot()
            path = self.directory / STATE_FILE
            try:
                await loop.run_in_executor(self._executor, _write, path, data)
            except OSError as exc:
                log.error("cannot save UniFi state to %s: %s", path, exc)

    def close(self) -> None:
        """Stop the writer thread (after a flush)."""
        self._executor.shutdown(wait=True)

    # --- PIN fingerprints ----------------------------------------------------------------

    def pin_fingerprint(self, code_id: str, pin: str) -> str:
        """HMAC of a code's PIN under our own key (created 0600 on first use)."""
        if self._key is None:
            self._key = _load_or_create_key(self.directory / KEY_FILE)
        mac = hmac.new(self._key, f"{code_id}\x00{pin}".encode(), hashlib.sha256)
        return mac.hexdigest()[:32]

    # --- log positions -------------------------------------------------------------------

    def is_seen(self, entry_id: str) -> bool:
        """Whether this log entry was handled already."""
        return entry_id in self.seen

    def mark_seen(self, entry_id: str, at: float) -> bool:
        """Record an entry as handled; False if it already was."""
        if entry_id in self.seen:
            return False
        self.seen[entry_id] = at
        if self.log_cursor is None or at > self.log_cursor:
            self.log_cursor = at
        self._prune()
        return True

    def unmark(self, entry_id: str) -> None:
        """Forget an entry again (its event could not be recorded)."""
        self.seen.pop(entry_id, None)

    def _prune(self) -> None:
        if self.log_cursor is None:
            return
        oldest = self.log_cursor - SEEN_RETENTION_S
        if len(self.seen) > MAX_SEEN or min(self.seen.values(), default=oldest) < oldest:
            newest = sorted(self.seen.items(), key=lambda kv: kv[1], reverse=True)[:MAX_SEEN]
            self.seen = {k: v for k, v in newest if v >= oldest}

    # --- visitors ------------------------------------------------------------------------

    def retire(self, code_id: str, known: KnownVisitor, now: float) -> None:
        """Remember a deleted visitor's code for late log entries."""
        self.retired[known.visitor_id] = Retired(code_id, known.booking_id, known.task_id, now)
        cutoff = now - RETIRED_RETENTION_S
        self.retired = {k: v for k, v in self.retired.items() if v.at >= cutoff}

    def code_of_visitor(self, visitor_id: str) -> tuple[str, str | None, str | None] | None:
        """(code id, booking id, task id) of one of our visitors, current or recently deleted."""
        for code_id, known in self.visitors.items():
            if known.visitor_id == visitor_id:
                return code_id, known.booking_id, known.task_id
        retired = self.retired.get(visitor_id)
        if retired is not None:
            return retired.code_id, retired.booking_id, retired.task_id
        return None


def _write(path: Path, data: bytes) -> None:
    write_file(path, data, secret=True)


def _load_or_create_key(path: Path) -> bytes:
    try:
        key = path.read_bytes()
        if len(key) == 32:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_file(path, key, secret=True)
    os.chmod(path, 0o600)
    return key
