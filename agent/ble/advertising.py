"""Advertising data (the AD structures of an advert or scan response), parsed into bleak's terms."""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from bleak.backends.scanner import AdvertisementData

BASE_UUID_SUFFIX: Final = "-0000-1000-8000-00805f9b34fb"

AD_UUIDS_16: Final = (0x02, 0x03)
AD_UUIDS_32: Final = (0x04, 0x05)
AD_UUIDS_128: Final = (0x06, 0x07)
AD_SHORT_NAME: Final = 0x08
AD_COMPLETE_NAME: Final = 0x09
AD_TX_POWER: Final = 0x0A
AD_SERVICE_DATA_16: Final = 0x16
AD_SERVICE_DATA_32: Final = 0x20
AD_SERVICE_DATA_128: Final = 0x21
AD_MANUFACTURER: Final = 0xFF


def uuid_from_le(raw: bytes) -> str:
    """A little-endian 16/32/128-bit UUID as a lower-case 128-bit string."""
    if len(raw) == 16:
        return str(uuid.UUID(bytes=raw[::-1]))
    return f"{int.from_bytes(raw, 'little'):08x}{BASE_UUID_SUFFIX}"


@dataclass(slots=True)
class ParsedAdvertising:
    """The fields bleak reports from one advert."""

    local_name: str | None = None
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    service_data: dict[str, bytes] = field(default_factory=dict)
    service_uuids: list[str] = field(default_factory=list)
    tx_power: int | None = None

    def merged_over(self, previous: AdvertisementData) -> ParsedAdvertising:
        """A scan response completes the advert it answers."""
        return ParsedAdvertising(
            self.local_name or previous.local_name,
            {**previous.manufacturer_data, **self.manufacturer_data},
            {**previous.service_data, **self.service_data},
            list(dict.fromkeys([*previous.service_uuids, *self.service_uuids])),
            self.tx_power if self.tx_power is not None else previous.tx_power,
        )


def parse_advertising_data(data: bytes) -> ParsedAdvertising:
    """Parse AD structures; malformed trailing bytes are ignored, never fatal."""
    out = ParsedAdvertising()
    offset = 0
    while offset < len(data):
        length = data[offset]
        if length == 0 or offset + 1 + length > len(data):
            break
        kind, value = data[offset + 1], data[offset + 2 : offset + 1 + length]
        offset += 1 + length
        _apply(out, kind, value)
    return out


def _apply(out: ParsedAdvertising, kind: int, value: bytes) -> None:
    if kind in (AD_SHORT_NAME, AD_COMPLETE_NAME):
        if kind == AD_COMPLETE_NAME or out.local_name is None:
            out.local_name = value.decode(errors="replace")
    elif kind == AD_MANUFACTURER and len(value) >= 2:
        out.manufacturer_data[struct.unpack_from("<H", value)[0]] = value[2:]
    elif kind == AD_TX_POWER and value:
        out.tx_power = struct.unpack("<b", value[:1])[0]
    else:
        for kinds, size in ((AD_UUIDS_16, 2), (AD_UUIDS_32, 4), (AD_UUIDS_128, 16)):
            if kind in kinds:
                out.service_uuids += [
                    uuid_from_le(value[i : i + size]) for i in range(0, len(value) - size + 1, size)
                ]
                return
        for data_kind, size in (
            (AD_SERVICE_DATA_16, 2),
            (AD_SERVICE_DATA_32, 4),
            (AD_SERVICE_DATA_128, 16),
        ):
            if kind == data_kind and len(value) >= size:
                out.service_data[uuid_from_le(value[:size])] = value[size:]
                return
