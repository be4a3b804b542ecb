"""Every command of the reference has a typed message that survives encode → decode."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.locks.nuki.const import (
    Action,
    Command,
    Completion,
    DoorSensor,
    ErrorCode,
    IdType,
    KeypadSource,
    LockState,
    LogType,
    NukiState,
    StatusCode,
    Trigger,
)
from agent.locks.nuki.keypad_messages import (
    AddKeypadCode,
    KeypadCode,
    KeypadCodeCount,
    KeypadCodeID,
    RemoveKeypadCode,
    RequestKeypadCodes,
    TimeWindow,
    UpdateKeypadCode,
)
from agent.locks.nuki.log_messages import (
    LogEntry,
    LogEntryCount,
    RequestLogEntries,
)
from agent.locks.nuki.messages import (
    MESSAGE_TYPES,
    AuthorizationAuthenticator,
    AuthorizationData,
    AuthorizationID,
    AuthorizationIDConfirmation,
    BatteryReport,
    Challenge,
    Config,
    ErrorReport,
    KeyturnerStates,
    LockAction,
    Message,
    PublicKey,
    RequestConfig,
    RequestData,
    Status,
    UpdateTime,
    VerifySecurityPIN,
    pack_name,
    parse_message,
)

T = datetime(2026, 5, 17, 14, 30, 5, tzinfo=UTC)
N = bytes(range(32))
WINDOW = TimeWindow(True, T, datetime(2026, 5, 20, 11, 0, tzinfo=UTC), 0b0111110, (8, 0), (20, 30))

EXAMPLES: list[Message] = [
    RequestData(Command.KEYTURNER_STATES),
    PublicKey(N),
    Challenge(N),
    AuthorizationAuthenticator(N),
    AuthorizationData(N, IdType.BRIDGE, 0x11223344, "Kasify Edge", N[::-1]),
    AuthorizationID(N, 9, bytes(range(16)), N[::-1]),
    AuthorizationIDConfirmation(N, 9),
    KeyturnerStates(
        NukiState.DOOR_MODE,
        LockState.UNLATCHING,
        Trigger.MANUAL,
        T,
        -60,
        True,
        False,
        42,
        3,
        0,
        Action.UNLATCH,
        Trigger.SYSTEM,
        Completion.SUCCESS,
        DoorSensor.OPENED,
    ),
    LockAction(Action.UNLATCH, 77, 0, N),
    LockAction(Action.LOCK, 77, 2, N, "front door"),
    Status(StatusCode.ACCEPTED),
    BatteryReport(120, 5600, False, 2, 5700, 5500, 270, 21, 400, 210),
    ErrorReport(ErrorCode.BAD_NONCE, Command.LOCK_ACTION),
    RequestConfig(N),
    Config(
        0x2A3B4C5D, "Nuki_2A3B4C5D", 52.5, 13.25, False, True, True, True, 3, T, 60, b"\x00\x01"
    ),
    VerifySecurityPIN(N, 1234),
    UpdateTime(T, N, 1234),
    RequestLogEntries(0, 20, True, True, N, 1234),
    LogEntry(17, T, 9, "Kasify Edge", LogType.KEYPAD_ACTION, b"\x01\x01\x00\x05\x00"),
    LogEntryCount(True, 17, True, False),
    AddKeypadCode(345678, "Guest Ada", WINDOW, N, 1234),
    KeypadCodeID(5, T),
    RequestKeypadCodes(0, 100, N, 1234),
    KeypadCodeCount(3),
    KeypadCode(5, 345678, "Guest Ada", True, WINDOW, T, None, 4),
    UpdateKeypadCode(5, 345679, "Guest Ada", False, TimeWindow(), N, 1234),
    RemoveKeypadCode(5, N, 1234),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_encode_decode_round_trip(message: Message) -> None:
    assert parse_message(message.COMMAND, message.to_bytes()) == message


def test_every_command_of_the_reference_has_a_message_type() -> None:
    assert set(MESSAGE_TYPES) == set(Command)
    assert {type(m) for m in EXAMPLES} == set(MESSAGE_TYPES.values())


def test_log_entry_helpers_read_keypad_and_lock_actions() -> None:
    keypad = LogEntry(1, T, 0, "Guest", LogType.KEYPAD_ACTION, b"\x01\x01\xe0\x00\x00").keypad()
    assert keypad is not None
    assert (keypad.source, keypad.completion, keypad.code_id) == (
        KeypadSource.CODE, Completion.INVALID_CODE, 0,
    )  # fmt: skip
    action = LogEntry(2, T, 0, "", LogType.LOCK_ACTION, bytes([2, 6, 0, 0])).lock_action()
    assert action == (Action.LOCK, Trigger.AUTO_LOCK, 0, Completion.SUCCESS)
    assert LogEntry(3, T, 0, "", LogType.DOOR_SENSOR, b"\x00").keypad() is None


def test_names_are_cut_at_a_character_boundary() -> None:
    assert pack_name("abcdefghijklmnopqrsä", 20).rstrip(b"\x00").decode() == "abcdefghijklmnopqrs"
    assert pack_name("Ünïcödé-Gäste-Wohnung", 20).decode() == "Ünïcödé-Gäste-W"
    assert len(pack_name("x", 20)) == 20


def test_impossible_dates_become_none_instead_of_raising() -> None:
    raw = bytearray(LogEntry(1, T, 0, "", LogType.LOGGING).to_bytes())
    raw[6] = 13  # month 13
    assert LogEntry.from_bytes(bytes(raw)).timestamp is None
