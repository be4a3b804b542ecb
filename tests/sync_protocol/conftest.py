"""Builders for sync-protocol tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from sync_protocol.models import CodeKind, DesiredCode, DesiredState, LockKind, LockSpec
from sync_protocol.sealing import seal_pin

GATEWAY = "gw-test-1"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def signing_key() -> SigningKey:
    """The cloud's signing key."""
    return SigningKey.generate()


@pytest.fixture
def gateway_key() -> PrivateKey:
    """The gateway's X25519 sealing key."""
    return PrivateKey.generate()


def desired(gateway_key: PrivateKey, version: int = 1, codes: int = 2) -> DesiredState:
    """A plausible desired state with `codes` guest codes on one relay lock."""
    return DesiredState(
        gateway_id=GATEWAY,
        property_id="prop-1",
        version=version,
        issued_at=NOW,
        timezone="Europe/Madrid",
        horizon_until=NOW + timedelta(days=14),
        locks=(LockSpec(id="lock-1", kind=LockKind.RELAY, ref="keypad", name="Front door"),),
        codes=tuple(
            DesiredCode(
                id=f"code-{i}",
                kind=CodeKind.GUEST,
                pin=seal_pin(f"{345678 + i}", f"code-{i}", gateway_key.public_key),
                starts_at=NOW - timedelta(hours=1),
                ends_at=NOW + timedelta(days=2),
                lock_ids=("lock-1",),
                booking_id=f"booking-{i}",
            )
            for i in range(codes)
        ),
    )
