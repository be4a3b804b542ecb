"""Lock secrets and per-lock bookkeeping under `state_dir/nuki/`, written atomically, 0600.

`<NUKIID>.json` holds the authorization (auth id, shared key, security PIN); `.codes.json` maps our
code ids to keypad code ids with a keyed fingerprint of what was set (never a PIN in clear);
`.state.json` holds the last log index read and the last time sync.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from agent.identity import write_file

NUKI_ID_RE = re.compile(r"^[0-9A-F]{8}$")


@dataclass(frozen=True, slots=True)
class Credentials:
    """What pairing produced, plus the security PIN the person gave us."""

    nuki_id: str
    auth_id: int
    shared_key: bytes = field(repr=False)
    lock_public_key: bytes
    uuid: bytes
    app_id: int
    name: str = ""
    address: str | None = None
    security_pin: int | None = field(default=None, repr=False)
    pin_rejected: bool = False  # the lock refused it once: never try it again
    paired_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (bytes as hex)."""
        data = asdict(self)
        for key in ("shared_key", "lock_public_key", "uuid"):
            data[key] = data[key].hex()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Credentials:
        """Parse what to_json wrote."""
        values = dict(data)
        for key in ("shared_key", "lock_public_key", "uuid"):
            values[key] = bytes.fromhex(values[key])
        return cls(**values)

    def with_pin(self, pin: int | None) -> Credentials:
        """A copy with a new security PIN (not yet rejected)."""
        return replace(self, security_pin=pin, pin_rejected=False)


@dataclass(slots=True)
class MappedCode:
    """One of our codes on the lock: its keypad code id and a fingerprint of what we set."""

    keypad_id: int
    fingerprint: str


class NukiStore:
    """Files of every Nuki lock under one state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "nuki"

    def _path(self, nuki_id: str, suffix: str) -> Path:
        if not NUKI_ID_RE.match(nuki_id):
            raise ValueError(f"not a Nuki ID: {nuki_id!r}")
        return self.dir / f"{nuki_id}{suffix}"

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        return data if isinstance(data, dict) else None

    def _write(self, path: Path, data: dict[str, Any]) -> None:
        write_file(path, json.dumps(data, indent=1, sort_keys=True).encode(), secret=True)

    # --- credentials ---------------------------------------------------------------------------

    def credentials(self, nuki_id: str) -> Credentials | None:
        """The lock's credentials, or None when not paired."""
        data = self._read(self._path(nuki_id, ".json"))
        return Credentials.from_json(data) if data is not None else None

    def credentials_mtime(self, nuki_id: str) -> float | None:
        """When the credentials file last changed (another process may pair)."""
        try:
            return self._path(nuki_id, ".json").stat().st_mtime
        except FileNotFoundError:
            return None

    def save_credentials(self, credentials: Credentials) -> None:
        """Store credentials (0600, atomically)."""
        self._write(self._path(credentials.nuki_id, ".json"), credentials.to_json())

    def paired(self) -> list[str]:
        """Nuki IDs with credentials."""
        if not self.dir.exists():
            return []
        names = (p.name.removesuffix(".json") for p in self.dir.glob("*.json"))
        return sorted(n for n in names if NUKI_ID_RE.match(n))

    def forget(self, nuki_id: str) -> None:
        """Delete every file of a lock."""
        for suffix in (".json", ".codes.json", ".state.json"):
            self._path(nuki_id, suffix).unlink(missing_ok=True)

    # --- code mapping and bookkeeping ----------------------------------------------------------

    def code_map(self, nuki_id: str) -> dict[str, MappedCode]:
        """Our code id -> keypad code on the lock."""
        data = self._read(self._path(nuki_id, ".codes.json")) or {}
        codes = data.get("codes", {})
        return {
            code_id: MappedCode(int(item["keypad_id"]), str(item["fingerprint"]))
            for code_id, item in codes.items()
        }

    def save_code_map(self, nuki_id: str, mapping: dict[str, MappedCode]) -> None:
        """Persist the mapping (0600, atomically)."""
        codes = {code_id: asdict(item) for code_id, item in sorted(mapping.items())}
        self._write(self._path(nuki_id, ".codes.json"), {"codes": codes})

    def lock_state(self, nuki_id: str) -> dict[str, Any]:
        """Bookkeeping: last_log_index, last_time_sync."""
        return self._read(self._path(nuki_id, ".state.json")) or {}

    def update_lock_state(self, nuki_id: str, **values: Any) -> None:
        """Merge values into the bookkeeping file."""
        data = self.lock_state(nuki_id)
        data.update(values)
        self._write(self._path(nuki_id, ".state.json"), data)
