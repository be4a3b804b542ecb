"""Nuki advertisements, sans-IO: pairing mode (service data) and door mode (iBeacon + flag).

The Nuki ID travels big-endian: in the pairing advert's service data and as the iBeacon's
major ‖ minor, so `2A3B4C5D` is sent as bytes 2A 3B 4C 5D. Bit 0 of the iBeacon's TX-power byte
is the "state changed" flag, which only a bridge reading Keyturner States clears.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from agent.locks.nuki.const import (
    APPLE_COMPANY_ID,
    HOMEKIT_PREFIX,
    IBEACON_PREFIX,
    KEYTURNER_SERVICE,
    PAIRING_SERVICE,
)

KEYTURNER_UUID_BYTES: Final = uuid.UUID(KEYTURNER_SERVICE).bytes
IBEACON_LEN: Final = 2 + 16 + 2 + 2 + 1
NAME_RE: Final = re.compile(r"^Nuki_([0-9A-Fa-f]{8})$")
STATE_CHANGED_BIT: Final = 0x01


def format_nuki_id(value: int) -> str:
    """A Nuki ID as the 8 upper-case hex digits people see in the app."""
    return f"{value & 0xFFFFFFFF:08X}"


def parse_nuki_id(text: str) -> int:
    """The numeric Nuki ID of 8 hex digits; raise ValueError."""
    if not re.fullmatch(r"[0-9A-Fa-f]{8}", text.strip()):
        raise ValueError(f"a Nuki ID is 8 hex digits (e.g. 2A3B4C5D), not {text!r}")
    return int(text, 16)


@dataclass(frozen=True, slots=True)
class NukiAdvert:
    """What an advert tells about a Nuki lock."""

    nuki_id: str
    pairing_mode: bool
    state_changed: bool = False
    tx_power: int | None = None


def ibeacon_payload(nuki_id: int, tx_power: int, state_changed: bool) -> bytes:
    """The Apple manufacturer data (after the company id) a Nuki in door mode sends."""
    tx = (tx_power & 0xFE) | (STATE_CHANGED_BIT if state_changed else 0)
    return IBEACON_PREFIX + KEYTURNER_UUID_BYTES + nuki_id.to_bytes(4, "big") + bytes([tx])


def parse_advert(
    manufacturer_data: Mapping[int, bytes],
    service_data: Mapping[str, bytes],
    local_name: str | None = None,
) -> NukiAdvert | None:
    """A Nuki advert, or None for anything else (HomeKit adverts included)."""
    pairing = service_data.get(PAIRING_SERVICE)
    if pairing is not None and len(pairing) >= 4:
        return NukiAdvert(format_nuki_id(int.from_bytes(pairing[:4], "big")), pairing_mode=True)
    apple = manufacturer_data.get(APPLE_COMPANY_ID)
    if apple is not None and apple[:1] != bytes([HOMEKIT_PREFIX]):
        beacon = _parse_ibeacon(apple)
        if beacon is not None:
            return beacon
    if local_name and (match := NAME_RE.match(local_name)):
        return NukiAdvert(match.group(1).upper(), pairing_mode=False)
    return None


def _parse_ibeacon(data: bytes) -> NukiAdvert | None:
    if len(data) < IBEACON_LEN or data[:2] != IBEACON_PREFIX:
        return None
    if data[2:18] != KEYTURNER_UUID_BYTES:
        return None
    nuki_id = int.from_bytes(data[18:22], "big")
    tx = data[22]
    signed_tx = tx - 256 if tx > 127 else tx
    return NukiAdvert(
        format_nuki_id(nuki_id),
        pairing_mode=False,
        state_changed=bool(tx & STATE_CHANGED_BIT),
        tx_power=signed_tx,
    )
