"""The requests the agent makes, each with its pattern (plain, challenge, challenge + PIN)."""

from __future__ import annotations

from datetime import datetime

from agent.locks.nuki.const import Action, Command
from agent.locks.nuki.keypad_messages import (
    AddKeypadCode,
    KeypadCodeID,
    RemoveKeypadCode,
    RequestKeypadCodes,
    TimeWindow,
    UpdateKeypadCode,
)
from agent.locks.nuki.log_messages import (
    RequestLogEntries,
)
from agent.locks.nuki.messages import (
    BatteryReport,
    Config,
    KeyturnerStates,
    LockAction,
    RequestConfig,
    RequestData,
    UpdateTime,
    VerifySecurityPIN,
)
from agent.locks.nuki.session import Pattern, Request, Until

FLAG_AUTO_UNLOCK = 0x01
FLAG_FORCE = 0x02


def keyturner_states() -> Request:
    """Read the lock's state (as a bridge this also clears the beacon's state-changed flag)."""
    return Request(
        "keyturner_states",
        Pattern.PLAIN,
        lambda _: RequestData(Command.KEYTURNER_STATES),
        Until.ONE,
        KeyturnerStates,
    )


def battery_report() -> Request:
    """Read the battery details."""
    return Request(
        "battery_report",
        Pattern.PLAIN,
        lambda _: RequestData(Command.BATTERY_REPORT),
        Until.ONE,
        BatteryReport,
    )


def config() -> Request:
    """Read the lock's configuration."""
    return Request("config", Pattern.CHALLENGE, RequestConfig, Until.ONE, Config)


def lock_action(
    action: Action, app_id: int, *, flags: int = 0, name_suffix: str | None = None
) -> Request:
    """Unlock, lock, unlatch …: ACCEPTED, state pushes, COMPLETE."""
    return Request(
        f"lock_action_{action.name.lower()}",
        Pattern.CHALLENGE,
        lambda nonce: LockAction(action, app_id, flags, nonce, name_suffix),
        Until.COMPLETE,
        idempotent=False,
    )


def verify_pin(pin: int) -> Request:
    """Check the security PIN."""
    return Request(
        "verify_pin",
        Pattern.CHALLENGE_PIN,
        lambda nonce: VerifySecurityPIN(nonce, pin),
        Until.COMPLETE,
    )


def update_time(time: datetime, pin: int) -> Request:
    """Set the lock's clock."""
    return Request(
        "update_time",
        Pattern.CHALLENGE_PIN,
        lambda nonce: UpdateTime(time, nonce, pin),
        Until.COMPLETE,
    )


def log_entries(start_index: int, count: int, pin: int, *, descending: bool = True) -> Request:
    """Read up to count log entries (newest first by default), with their total count first."""
    return Request(
        "log_entries",
        Pattern.CHALLENGE_PIN,
        lambda nonce: RequestLogEntries(start_index, count, descending, True, nonce, pin),
        Until.COUNTED,
        limit=count,
    )


def keypad_codes(offset: int, count: int, pin: int) -> Request:
    """List keypad codes from offset."""
    return Request(
        "keypad_codes",
        Pattern.CHALLENGE_PIN,
        lambda nonce: RequestKeypadCodes(offset, count, nonce, pin),
        Until.COUNTED,
        limit=count,
        offset=offset,
    )


def add_keypad_code(code: int, name: str, window: TimeWindow, pin: int) -> Request:
    """Add a keypad code; the answer carries its id."""
    return Request(
        "add_keypad_code",
        Pattern.CHALLENGE_PIN,
        lambda nonce: AddKeypadCode(code, name, window, nonce, pin),
        Until.ONE,
        KeypadCodeID,
        idempotent=False,
    )


def update_keypad_code(
    code_id: int, code: int, name: str, window: TimeWindow, pin: int, *, enabled: bool = True
) -> Request:
    """Change a keypad code in place."""
    return Request(
        "update_keypad_code",
        Pattern.CHALLENGE_PIN,
        lambda nonce: UpdateKeypadCode(code_id, code, name, enabled, window, nonce, pin),
        Until.COMPLETE,
    )


def remove_keypad_code(code_id: int, pin: int) -> Request:
    """Delete a keypad code."""
    return Request(
        "remove_keypad_code",
        Pattern.CHALLENGE_PIN,
        lambda nonce: RemoveKeypadCode(code_id, nonce, pin),
        Until.COMPLETE,
    )
