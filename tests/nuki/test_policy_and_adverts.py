"""Retry policy, advert parsing and advertising data, sans-IO."""

from __future__ import annotations

import random

import pytest

from agent.ble.advertising import parse_advertising_data
from agent.locks.nuki.adverts import ibeacon_payload, parse_advert
from agent.locks.nuki.const import APPLE_COMPANY_ID, PAIRING_SERVICE, Command, ErrorCode
from agent.locks.nuki.errors import (
    BadCrc,
    NukiDisconnected,
    NukiLockError,
    NukiTimeout,
    ReplayedFrame,
)
from agent.locks.nuki.retry import Backoff, Decision, RetryPolicy, classify
from simulator.nuki.peripheral import advertising_data


@pytest.mark.parametrize(
    ("error", "decision"),
    [
        (NukiLockError(ErrorCode.BAD_NONCE, Command.LOCK_ACTION), Decision.NEW_CHALLENGE),
        (NukiLockError(ErrorCode.BUSY, Command.LOCK_ACTION), Decision.BACK_OFF),
        (NukiLockError(ErrorCode.BAD_PIN, Command.UPDATE_TIME), Decision.GIVE_UP),
        (NukiLockError(ErrorCode.TOO_MANY_PIN_ATTEMPTS), Decision.GIVE_UP),
        (NukiLockError(ErrorCode.MOTOR_BLOCKED), Decision.GIVE_UP),
        (BadCrc("x"), Decision.RETRY_NOW),
        (ReplayedFrame("x"), Decision.IGNORE),
        (NukiDisconnected("x"), Decision.RECONNECT),
        (NukiTimeout("x"), Decision.RECONNECT),
        (ValueError("x"), Decision.GIVE_UP),
    ],
)
def test_errors_sort_into_decisions(error: BaseException, decision: Decision) -> None:
    assert classify(error) is decision


def test_busy_backoff_grows_is_capped_and_jittered() -> None:
    policy = RetryPolicy(busy_base_s=0.5, cap_s=4.0, rng=random.Random(3))
    delays = [policy.busy_delay(attempt) for attempt in range(8)]
    assert all(0.5 * 0.8 <= d <= 4.0 * 1.2 for d in delays)
    assert delays[0] < delays[2] < 4.0 * 1.2
    assert max(delays[4:]) <= 4.0 * 1.2


def test_reconnect_backoff_resets_on_success() -> None:
    backoff = Backoff(base_s=1.0, cap_s=60.0, rng=random.Random(5))
    first = [backoff.next_delay() for _ in range(10)]
    assert first[0] <= 1.2
    assert 60 * 0.8 <= first[-1] <= 60 * 1.2
    backoff.reset()
    assert backoff.next_delay() <= 1.2


def test_pairing_and_door_mode_adverts_round_trip() -> None:
    pairing = parse_advertising_data(advertising_data(0x2A3B4C5D, True, False))
    advert = parse_advert(pairing.manufacturer_data, pairing.service_data)
    assert advert is not None
    assert (advert.nuki_id, advert.pairing_mode) == ("2A3B4C5D", True)
    assert PAIRING_SERVICE in pairing.service_data
    for flag in (False, True):
        door = parse_advertising_data(advertising_data(0x2A3B4C5D, False, flag))
        advert = parse_advert(door.manufacturer_data, door.service_data)
        assert advert is not None
        assert (advert.nuki_id, advert.pairing_mode, advert.state_changed) == (
            "2A3B4C5D",
            False,
            flag,
        )
        assert advert.tx_power in (-60, -59)


def test_homekit_and_foreign_beacons_are_ignored() -> None:
    homekit = {APPLE_COMPANY_ID: bytes([0x06, 0x31, 0x00]) + bytes(16)}
    assert parse_advert(homekit, {}) is None
    other_beacon = {
        APPLE_COMPANY_ID: b"\x02\x15" + bytes(16) + bytes([0x2A, 0x3B, 0x4C, 0x5D, 0xC5])
    }
    assert parse_advert(other_beacon, {}) is None
    assert parse_advert({}, {}, "Nuki_2a3b4c5d") is not None  # a scan response alone names it


def test_ibeacon_flag_is_bit_zero_of_the_tx_byte() -> None:
    assert ibeacon_payload(1, -60, True)[-1] & 1 == 1
    assert ibeacon_payload(1, -60, False)[-1] & 1 == 0


def test_advertising_data_parser_is_lenient() -> None:
    data = bytes([2, 0x01, 0x06, 3, 0x03, 0x0F, 0x18, 5, 0x09]) + b"Nuki" + bytes([9, 0xFF, 0x01])
    parsed = parse_advertising_data(data)
    assert parsed.service_uuids == ["0000180f-0000-1000-8000-00805f9b34fb"]
    assert parsed.local_name == "Nuki"
    assert parsed.manufacturer_data == {}
