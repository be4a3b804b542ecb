"""Nuki BLE constants: GATT UUIDs, command ids, status and error codes, lock states."""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Final

UUID_SUFFIX: Final = "-5501-11e4-916c-0800200c9a66"


def _uuid(prefix: str) -> str:
    return prefix + UUID_SUFFIX


UNINITIALISED_SERVICE: Final = _uuid("a92ee000")
PAIRING_SERVICE: Final = _uuid("a92ee100")
PAIRING_GDIO: Final = _uuid("a92ee101")
KEYTURNER_SERVICE: Final = _uuid("a92ee200")
KEYTURNER_GDIO: Final = _uuid("a92ee201")
KEYTURNER_USDIO: Final = _uuid("a92ee202")

APPLE_COMPANY_ID: Final = 0x004C
IBEACON_PREFIX: Final = b"\x02\x15"
HOMEKIT_PREFIX: Final = 0x06  # interleaved HomeKit adverts start with this byte

NONCE_LEN: Final = 24  # XSalsa20 nonce of an encrypted frame
CHALLENGE_LEN: Final = 32  # nK / nA
KEY_LEN: Final = 32
MAC_LEN: Final = 16  # Poly1305 tag inside the box
NAME_LEN: Final = 32  # AuthorizationData / Config name field
KEYPAD_NAME_LEN: Final = 20


class OpenIntEnum(IntEnum):
    """An IntEnum that turns unknown values into pseudo-members instead of raising."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, int):
            return None
        member = int.__new__(cls, value)
        member._name_ = f"UNKNOWN_{value:#x}"
        member._value_ = value
        return member

    @property
    def known(self) -> bool:
        """Whether the value is one this code was written for."""
        return int(self) in type(self)._value2member_map_


class Command(OpenIntEnum):
    """Command ids (u16, little-endian on the wire)."""

    REQUEST_DATA = 0x0001
    PUBLIC_KEY = 0x0003
    CHALLENGE = 0x0004
    AUTHORIZATION_AUTHENTICATOR = 0x0005
    AUTHORIZATION_DATA = 0x0006
    AUTHORIZATION_ID = 0x0007
    KEYTURNER_STATES = 0x000C
    LOCK_ACTION = 0x000D
    STATUS = 0x000E
    BATTERY_REPORT = 0x0011
    ERROR_REPORT = 0x0012
    REQUEST_CONFIG = 0x0014
    CONFIG = 0x0015
    AUTHORIZATION_ID_CONFIRMATION = 0x001E
    VERIFY_SECURITY_PIN = 0x0020
    UPDATE_TIME = 0x0021
    REQUEST_LOG_ENTRIES = 0x0031
    LOG_ENTRY = 0x0032
    LOG_ENTRY_COUNT = 0x0033
    ADD_KEYPAD_CODE = 0x0041
    KEYPAD_CODE_ID = 0x0042
    REQUEST_KEYPAD_CODES = 0x0043
    KEYPAD_CODE_COUNT = 0x0044
    KEYPAD_CODE = 0x0045
    UPDATE_KEYPAD_CODE = 0x0046
    REMOVE_KEYPAD_CODE = 0x0047


class StatusCode(OpenIntEnum):
    """Status (0x000E) payload."""

    COMPLETE = 0x00
    ACCEPTED = 0x01


class ErrorCode(OpenIntEnum):
    """ErrorReport (0x0012) codes."""

    NOT_PAIRING = 0x10
    BAD_AUTHENTICATOR = 0x11
    BAD_PARAMETER = 0x12
    MAX_USER = 0x13
    NOT_AUTHORIZED = 0x20
    BAD_PIN = 0x21
    BAD_NONCE = 0x22
    KEYTURNER_BAD_PARAMETER = 0x23
    INVALID_AUTH_ID = 0x24
    DISABLED = 0x25
    REMOTE_NOT_ALLOWED = 0x26
    TIME_NOT_ALLOWED = 0x27
    TOO_MANY_PIN_ATTEMPTS = 0x28
    TOO_MANY_ENTRIES = 0x29
    CODE_ALREADY_EXISTS = 0x2A
    CODE_INVALID = 0x2B
    AUTO_UNLOCK_TOO_RECENT = 0x40
    POSITION_UNKNOWN = 0x41
    MOTOR_BLOCKED = 0x42
    BUSY = 0x45
    CANCELED = 0x46
    NOT_CALIBRATED = 0x47
    LOW_VOLTAGE = 0x49
    FIRMWARE_UPDATE_NEEDED = 0x4D
    BAD_CRC = 0xFD
    BAD_LENGTH = 0xFE
    UNKNOWN = 0xFF


class IdType(OpenIntEnum):
    """Who an authorization belongs to; the gateway pairs as a bridge."""

    APP = 0
    BRIDGE = 1
    FOB = 2
    KEYPAD = 3


class NukiState(OpenIntEnum):
    """Keyturner States byte 0."""

    UNINITIALISED = 0
    PAIRING_MODE = 1
    DOOR_MODE = 2
    MAINTENANCE = 4


class LockState(OpenIntEnum):
    """Keyturner States byte 1: the bolt."""

    UNCALIBRATED = 0x00
    LOCKED = 0x01
    UNLOCKING = 0x02
    UNLOCKED = 0x03
    LOCKING = 0x04
    UNLATCHED = 0x05
    UNLOCKED_LOCK_N_GO = 0x06
    UNLATCHING = 0x07
    CALIBRATION = 0xFC
    BOOT_RUN = 0xFD
    MOTOR_BLOCKED = 0xFE
    UNDEFINED = 0xFF


class Trigger(OpenIntEnum):
    """What caused a state change."""

    SYSTEM = 0  # includes Bluetooth commands
    MANUAL = 1
    BUTTON = 2
    AUTOMATIC = 3
    AUTO_LOCK = 6


class Action(OpenIntEnum):
    """LockAction codes."""

    UNLOCK = 1
    LOCK = 2
    UNLATCH = 3
    LOCK_N_GO = 4
    LOCK_N_GO_UNLATCH = 5
    FULL_LOCK = 6


class Completion(OpenIntEnum):
    """Last action completion status (and a log entry's)."""

    SUCCESS = 0x00
    MOTOR_BLOCKED = 0x01
    CANCELED = 0x02
    TOO_RECENT = 0x03
    BUSY = 0x04
    LOW_MOTOR_VOLTAGE = 0x05
    CLUTCH_FAILURE = 0x06
    MOTOR_POWER_FAILURE = 0x07
    INCOMPLETE = 0x08
    INVALID_CODE = 0xE0
    OTHER = 0xFE
    UNKNOWN = 0xFF


class DoorSensor(OpenIntEnum):
    """Keyturner States byte 18."""

    UNAVAILABLE = 0x00
    DEACTIVATED = 0x01
    CLOSED = 0x02
    OPENED = 0x03
    UNKNOWN = 0x04
    CALIBRATING = 0x05
    UNCALIBRATED = 0x10
    TAMPERED = 0xF0


class LogType(OpenIntEnum):
    """LogEntry type byte."""

    LOGGING = 0x01
    LOCK_ACTION = 0x02
    CALIBRATION = 0x03
    INITIALIZATION = 0x04
    KEYPAD_ACTION = 0x05
    DOOR_SENSOR = 0x06
    DOOR_SENSOR_LOGGING = 0x07


class KeypadSource(OpenIntEnum):
    """How an entry was made on the Nuki Keypad."""

    ARROW_KEY = 0x00
    CODE = 0x01
    FINGERPRINT = 0x02
