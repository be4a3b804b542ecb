"""The agent store (atomic apply, outbox order) and configuration errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.config import ConfigError, load_config
from agent.outbox_queue import QueuedEvent
from agent.store import Store, StoredCode, StoredLock, StoreError

LOCK = StoredLock("front", "relay", "keypad", "Front", {"x": 1})


def _code(i: int) -> StoredCode:
    return StoredCode(f"c{i}", "guest", bytes([i]) * 32, 1.0, 2.0, ("front",), f"b{i}", None, "")


def test_apply_replaces_everything_at_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "agent.db")
    store.apply_desired(
        version=1,
        digest="d1",
        property_id="p",
        timezone="Europe/Madrid",
        locks=[LOCK],
        codes=[_code(1), _code(2)],
    )
    store.apply_desired(
        version=2,
        digest="d2",
        property_id="p",
        timezone="Europe/Madrid",
        locks=[LOCK],
        codes=[_code(3)],
    )
    assert [c.id for c in store.codes()] == ["c3"]
    assert store.locks() == [LOCK]
    assert store.applied().version == 2
    assert store.integrity_check() == "ok"


def test_a_failed_apply_leaves_the_old_state(tmp_path: Path) -> None:
    store = Store(tmp_path / "agent.db")
    store.apply_desired(
        version=1, digest="d1", property_id="p", timezone="UTC", locks=[LOCK], codes=[_code(1)]
    )
    with pytest.raises(sqlite3.IntegrityError):  # duplicate code ids violate the primary key
        store.apply_desired(
            version=2,
            digest="d2",
            property_id="p",
            timezone="UTC",
            locks=[LOCK],
            codes=[_code(5), _code(5)],
        )
    assert [c.id for c in store.codes()] == ["c1"]
    assert store.applied().version == 1
    with pytest.raises(StoreError, match="not newer"):
        store.apply_desired(
            version=1, digest="x", property_id="p", timezone="UTC", locks=[], codes=[]
        )


def test_pins_are_not_stored_in_clear(tmp_path: Path) -> None:
    from agent.access import pin_mac

    store = Store(tmp_path / "agent.db")
    code = StoredCode(
        "c", "guest", pin_mac(b"k" * 32, "345678"), None, None, ("front",), None, None, ""
    )
    store.apply_desired(
        version=1, digest="d", property_id="p", timezone="UTC", locks=[LOCK], codes=[code]
    )
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("agent.db"))
    assert b"345678" not in raw


def _ev(event_id: str, security: bool = True, body: str = "{}") -> QueuedEvent:
    return QueuedEvent(event_id, "access_granted" if security else "door_opened", security, body)


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    store = Store(tmp_path / "agent.db")
    store.apply_desired(
        version=7, digest="d", property_id="p", timezone="UTC", locks=[LOCK], codes=[_code(1)]
    )
    store.outbox.enqueue([_ev("e")])
    store.put("clock_last_good", "123.5")
    store.close()
    again = Store(tmp_path / "agent.db")
    assert again.applied().version == 7
    assert again.outbox.depth == 1
    assert again.get("clock_last_good") == "123.5"


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Store(tmp_path / "agent.db").close()
    db = sqlite3.connect(tmp_path / "agent.db")
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema 99"):
        Store(tmp_path / "agent.db")


def test_a_garbage_database_is_set_aside_and_a_clean_one_started(tmp_path: Path) -> None:
    (tmp_path / "agent.db").write_bytes(b"this is not sqlite" * 100)
    store = Store(tmp_path / "agent.db")
    assert store.recovery is not None
    assert not store.recovery.restored_backup
    assert store.recovery.set_aside.read_bytes().startswith(b"this is not sqlite")
    assert store.applied().version == 0
    assert store.integrity_check() == "ok"


def test_a_damaged_database_is_restored_from_its_backup(tmp_path: Path) -> None:
    store = Store(tmp_path / "agent.db")
    store.apply_desired(
        version=3, digest="d", property_id="p", timezone="UTC", locks=[LOCK], codes=[_code(1)]
    )
    store.backup()
    store.outbox.enqueue([_ev("after-backup")])
    store.close()
    data = bytearray((tmp_path / "agent.db").read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # clobber the schema page
    (tmp_path / "agent.db").write_bytes(bytes(data))
    for side in ("agent.db-wal", "agent.db-shm"):
        (tmp_path / side).unlink(missing_ok=True)
    restored = Store(tmp_path / "agent.db")
    assert restored.recovery is not None
    assert restored.recovery.restored_backup
    assert restored.applied().version == 3
    assert [c.id for c in restored.codes()] == ["c1"]


def test_a_version_one_database_is_migrated(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "agent.db")
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('schema_version', '1');"
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL"
        " UNIQUE, body TEXT NOT NULL);"
        "INSERT INTO outbox (event_id, body) VALUES ('old', '{}');"
        "CREATE TABLE codes (id TEXT PRIMARY KEY, kind TEXT NOT NULL, pin_mac BLOB NOT NULL,"
        " starts_at REAL, ends_at REAL, lock_ids TEXT NOT NULL, booking_id TEXT, task_id TEXT,"
        " label TEXT NOT NULL);"
    )
    db.commit()
    db.close()
    store = Store(tmp_path / "agent.db")
    assert [r.event_id for r in store.outbox.rows(10)] == ["old"]
    assert store.remember_command("c", 10.0, 1.0)
    assert store.integrity_check() == "ok"


def test_commands_are_remembered_until_they_expire(tmp_path: Path) -> None:
    store = Store(tmp_path / "agent.db")
    assert store.remember_command("a", expires_at=100.0, now=50.0)
    assert not store.remember_command("a", expires_at=100.0, now=60.0)
    assert store.command_seen("a")
    assert store.remember_command("b", expires_at=300.0, now=200.0)  # purges "a"
    assert not store.command_seen("a")


def test_config_defaults_file_and_env(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('state_dir = "/tmp/x"\n[keypad]\nport = "/dev/ttyACM0"\npulse_ms = 1500\n')
    config = load_config(path, environ={"KASIFY_AGENT_KEYPAD__RELAY": "2"})
    assert config.state_dir == Path("/tmp/x")
    assert config.keypad.port == "/dev/ttyACM0"
    assert config.keypad.pulse_ms == 1500
    assert config.keypad.relay == 2


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[keypad\n", {}, "not valid TOML"),
        ("[keypad]\npulse_ms = 99999\n", {}, "keypad.pulse_ms"),
        ("[keypad]\nrelay = 'one'\n", {}, "keypad.relay"),
        ("[keypad]\nporrt = '/dev/x'\n", {}, "keypad.porrt: Extra inputs are not permitted"),
        ("", {"KASIFY_AGENT_MQTT__KEEPALIVE_S": "1"}, "mqtt.keepalive_s"),
        ("", {"KASIFY_AGENT_LOG_LEVEL": "loud"}, "log_level"),
    ],
)
def test_bad_config_names_the_key(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(path, environ=env)
    assert str(path) in str(err.value)


def test_missing_named_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml", environ={})


def test_the_shipped_example_config_is_valid() -> None:
    example = Path(__file__).parents[2] / "config" / "agent.toml"
    config = load_config(example, environ={})
    assert config.keypad.port == "/dev/ttyACM0"
    assert config.state_dir == Path("/var/lib/kasify-agent")
