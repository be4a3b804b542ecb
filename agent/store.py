"""The agent's SQLite store: code cache, event outbox, seen commands, small persistent values.

PINs are kept only as keyed MACs (for the door decision) and in the form the cloud sealed them to
this gateway's key (for programming locks that check codes themselves); never in clear.

One connection, used from one thread at a time (`AsyncStore` pins it to a single-thread executor).
WAL mode with `synchronous=FULL`; every public write is one transaction, so a crash leaves either
the old or the new state. A damaged database is set aside at start-up and the last backup restored
(or a clean one started), and the caller is told which.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from agent.outbox_queue import OutboxQueue

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
BUSY_TIMEOUT_MS = 5000  # another process (kasify-agent status) may hold a read lock briefly
DEFAULT_OUTBOX_CAP = 200_000  # ~100 MB of events: months of a busy door, a small part of an SD card

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS locks (
    id       TEXT PRIMARY KEY,
    kind     TEXT NOT NULL,
    ref      TEXT NOT NULL,
    name     TEXT NOT NULL,
    settings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS codes (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    pin_mac    BLOB NOT NULL,
    starts_at  REAL,
    ends_at    REAL,
    lock_ids   TEXT NOT NULL,
    booking_id TEXT,
    task_id    TEXT,
    label      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS codes_by_mac ON codes (pin_mac);
CREATE TABLE IF NOT EXISTS outbox (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    body     TEXT NOT NULL
)
"""

# Each entry upgrades the schema from the version before it to its own number.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (
        "ALTER TABLE codes ADD COLUMN pin_sealed TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE outbox ADD COLUMN type TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE outbox ADD COLUMN security INTEGER NOT NULL DEFAULT 1",
        "CREATE INDEX IF NOT EXISTS outbox_by_class ON outbox (security, seq)",
        "CREATE TABLE IF NOT EXISTS commands_seen (id TEXT PRIMARY KEY, expires_at REAL NOT NULL)",
    ),
    # Gentler on the SD card: an event insert or delete now touches one b-tree (the rowid
    # table), not three (no unique index on event_id, no class index, no AUTOINCREMENT counter).
    3: (
        "CREATE TABLE outbox_v3 (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL,"
        " type TEXT NOT NULL, security INTEGER NOT NULL, body TEXT NOT NULL)",
        "INSERT INTO outbox_v3 (seq, event_id, type, security, body)"
        " SELECT seq, event_id, type, security, body FROM outbox",
        "DROP TABLE outbox",
        "ALTER TABLE outbox_v3 RENAME TO outbox",
    ),
}


class StoreError(Exception):
    """The store cannot be opened or is not ours."""


@dataclass(frozen=True, slots=True)
class StoredLock:
    """A lock from the applied desired state."""

    id: str
    kind: str
    ref: str
    name: str
    settings: dict[str, str | int | float | bool | None]


@dataclass(frozen=True, slots=True)
class StoredCode:
    """A cached access code: the PIN only as its keyed MAC and sealed to this gateway's key."""

    id: str
    kind: str
    pin_mac: bytes
    starts_at: float | None
    ends_at: float | None
    lock_ids: tuple[str, ...]
    booking_id: str | None
    task_id: str | None
    label: str
    pin_sealed: str = ""


@dataclass(frozen=True, slots=True)
class Applied:
    """What desired document the store holds."""

    version: int
    digest: str | None
    property_id: str | None
    timezone: str | None


@dataclass(frozen=True, slots=True)
class Recovery:
    """What opening the store had to do about a damaged database."""

    problem: str
    restored_backup: bool
    set_aside: Path


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
    )
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


def _healthy(path: Path) -> str | None:
    """None when the file is a sound SQLite database, else what is wrong with it."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = str(db.execute("PRAGMA quick_check").fetchone()[0])
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None if result == "ok" else result


class Store:
    """Synchronous access to the agent database; see AsyncStore for use from the event loop."""

    def __init__(self, path: Path, *, outbox_cap: int = DEFAULT_OUTBOX_CAP) -> None:
        self.path = path
        self.outbox_cap = outbox_cap
        self.recovery: Recovery | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            problem = _healthy(path)
            if problem is not None:
                self.recovery = self._recover(problem)
        try:
            self._db = _connect(path)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the agent database {path}: {exc}") from exc
        self.outbox = OutboxQueue(self._db, self._tx, outbox_cap)

    @property
    def backup_path(self) -> Path:
        """Where the last good copy is kept."""
        return self.path.with_name(self.path.name + ".bak")

    def _recover(self, problem: str) -> Recovery:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(str(self.path) + suffix)
            if source.exists():
                os.replace(source, Path(str(aside) + suffix))
        restored = self.backup_path.exists() and _healthy(self.backup_path) is None
        if restored:
            shutil.copyfile(self.backup_path, self.path)
        log.error(
            "the agent database %s was damaged (%s); set aside as %s; %s",
            self.path,
            problem,
            aside,
            "restored the last backup" if restored else "no usable backup, starting clean",
        )
        return Recovery(problem, restored, aside)

    def _migrate(self) -> None:
        with self._tx():
            for statement in _TABLES.split(";"):
                self._db.execute(statement)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            current = 1 if row is None else int(row[0])
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema {current}, newer than this agent's {SCHEMA_VERSION}"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version]:
                    self._db.execute(statement)
            self._set_meta("schema_version", str(SCHEMA_VERSION))

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)

    def _count(self, table: str) -> int:
        return int(self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        """Delete confirmed events and close the connection."""
        self.outbox.flush()
        self._db.close()

    def backup(self) -> None:
        """Write a consistent copy next to the database (used to recover from damage)."""
        tmp = self.backup_path.with_name(self.backup_path.name + ".tmp")
        target = sqlite3.connect(tmp)
        try:
            self._db.backup(target)
        finally:
            target.close()
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.backup_path)

    # --- desired state -----------------------------------------------------------------------

    def applied(self) -> Applied:
        """The version, digest, property and time zone of the applied desired document."""
        version = self._meta("applied_version")
        return Applied(
            version=int(version) if version else 0,
            digest=self._meta("applied_digest"),
            property_id=self._meta("property_id"),
            timezone=self._meta("timezone"),
        )

    def apply_desired(
        self,
        *,
        version: int,
        digest: str,
        property_id: str,
        timezone: str,
        locks: Iterable[StoredLock],
        codes: Iterable[StoredCode],
    ) -> None:
        """Replace locks and codes with a new desired document, all or nothing."""
        with self._tx():
            current = self._meta("applied_version")
            if current is not None and int(current) >= version:
                raise StoreError(f"version {version} is not newer than the applied {current}")
            self._db.execute("DELETE FROM locks")
            self._db.execute("DELETE FROM codes")
            self._db.executemany(
                "INSERT INTO locks (id, kind, ref, name, settings) VALUES (?, ?, ?, ?, ?)",
                [(x.id, x.kind, x.ref, x.name, json.dumps(x.settings)) for x in locks],
            )
            self._db.executemany(
                "INSERT INTO codes (id, kind, pin_mac, pin_sealed, starts_at, ends_at, lock_ids,"
                " booking_id, task_id, label) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        c.id,
                        c.kind,
                        c.pin_mac,
                        c.pin_sealed,
                        c.starts_at,
                        c.ends_at,
                        json.dumps(list(c.lock_ids)),
                        c.booking_id,
                        c.task_id,
                        c.label,
                    )
                    for c in codes
                ],
            )
            self._set_meta("applied_version", str(version))
            self._set_meta("applied_digest", digest)
            self._set_meta("property_id", property_id)
            self._set_meta("timezone", timezone)

    def reset(self) -> None:
        """Forget applied state and queued events (after enrolling as another gateway)."""
        with self._tx():
            for table in ("locks", "codes", "outbox", "commands_seen"):
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            for key in ("applied_version", "applied_digest", "property_id", "timezone"):
                self._db.execute("DELETE FROM meta WHERE key = ?", (key,))
        self.outbox = OutboxQueue(self._db, self._tx, self.outbox_cap)

    def locks(self) -> list[StoredLock]:
        """The applied locks."""
        rows = self._db.execute("SELECT id, kind, ref, name, settings FROM locks ORDER BY id")
        return [StoredLock(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def codes(self) -> list[StoredCode]:
        """The applied codes."""
        rows = self._db.execute(
            "SELECT id, kind, pin_mac, starts_at, ends_at, lock_ids, booking_id, task_id, label,"
            " pin_sealed FROM codes ORDER BY id"
        )
        return [
            StoredCode(
                r[0],
                r[1],
                bytes(r[2]),
                r[3],
                r[4],
                tuple(json.loads(r[5])),
                r[6],
                r[7],
                r[8],
                r[9],
            )
            for r in rows
        ]

    # --- commands ----------------------------------------------------------------------------

    def remember_command(self, command_id: str, expires_at: float, now: float) -> bool:
        """Record a command id until it expires; False if it was seen before (a replay)."""
        with self._tx():
            self._db.execute("DELETE FROM commands_seen WHERE expires_at < ?", (now,))
            cursor = self._db.execute(
                "INSERT INTO commands_seen (id, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (command_id, expires_at),
            )
            return cursor.rowcount == 1

    def command_seen(self, command_id: str) -> bool:
        """Whether a command id was recorded (and has not expired from memory)."""
        row = self._db.execute("SELECT 1 FROM commands_seen WHERE id = ?", (command_id,))
        return row.fetchone() is not None

    # --- small persistent values ---------------------------------------------------------------

    def get(self, key: str) -> str | None:
        """A persisted value, e.g. the last known good time."""
        return self._meta(f"x:{key}")

    def put(self, key: str, value: str) -> None:
        """Persist a small value."""
        with self._tx():
            self._set_meta(f"x:{key}", value)

    def integrity_check(self) -> str:
        """SQLite's own consistency check; "ok" when healthy."""
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


T = TypeVar("T")


class AsyncStore:
    """The store used from the event loop: every call runs on one dedicated thread."""

    def __init__(self, store: Store, executor: ThreadPoolExecutor) -> None:
        self.sync = store
        self._executor = executor

    @classmethod
    async def open(cls, path: Path, *, outbox_cap: int = DEFAULT_OUTBOX_CAP) -> AsyncStore:
        """Open (and create, migrate or recover) the database at `path` on a new store thread."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        loop = asyncio.get_running_loop()
        store = await loop.run_in_executor(executor, lambda: Store(path, outbox_cap=outbox_cap))
        return cls(store, executor)

    async def call(self, fn: Callable[..., T], *args: object) -> T:
        """Run a Store method (or any function of it) on the store thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def close(self) -> None:
        """Close the database and its thread."""
        await self.call(self.sync.close)
        self._executor.shutdown(wait=True)
