"""Pairing a lock end to end: pair as a bridge, store the keys, verify the PIN, set the clock."""

from __future__ import annotations

import time
from typing import Any

from bleak.backends.device import BLEDevice

from agent.clock import Clock
from agent.locks.nuki.client import NukiClient, Timeouts
from agent.locks.nuki.const import ErrorCode
from agent.locks.nuki.errors import NukiLockError
from agent.locks.nuki.events import wire_state
from agent.locks.nuki.store import Credentials, NukiStore


async def pair_lock(
    device: BLEDevice,
    nuki_id: str,
    store: NukiStore,
    *,
    app_id: int,
    name: str,
    pin: int | None,
    sync_time: bool,
    timeouts: Timeouts | None = None,
) -> dict[str, Any]:
    """Pair with a lock in pairing mode; return a report (raise PairingError or NukiError)."""
    client = await NukiClient.connect(device, nuki_id, None, timeouts=timeouts)
    try:
        result = await client.pair(app_id=app_id, name=name)
        creds = Credentials(
            nuki_id, result.auth_id, result.shared_key, result.lock_public_key, result.uuid,
            app_id, name, device.address, None, paired_at=time.time(),
        )  # fmt: skip
        store.save_credentials(creds)  # the lock holds the authorization from now on
        await client.authorize(creds)
        return await _after_pairing(store, client, creds, pin, sync_time)
    finally:
        await client.close()


async def _after_pairing(
    store: NukiStore, client: NukiClient, creds: Credentials, pin: int | None, sync_time: bool
) -> dict[str, Any]:
    report: dict[str, Any] = {"nuki_id": creds.nuki_id, "paired": True, "auth_id": creds.auth_id}
    report.update(pin_verified=False, time_synced=False)
    if pin is not None:
        with_pin = creds.with_pin(pin)
        client.credentials = with_pin
        try:
            await client.verify_pin()
        except NukiLockError as exc:
            if exc.code not in (ErrorCode.BAD_PIN, ErrorCode.TOO_MANY_PIN_ATTEMPTS):
                raise
            report["error"] = f"the lock rejected the security PIN ({exc.code.name})"
        else:
            store.save_credentials(with_pin)
            report["pin_verified"] = True
            newest = await client.log_entries(1)  # events start from here: none are lost later
            last = newest[0].index if newest else 0
            store.update_lock_state(creds.nuki_id, last_log_index=last)
            if sync_time:
                now = time.time()
                await client.update_time(Clock.utc(now))
                store.update_lock_state(creds.nuki_id, last_time_sync=now)
                report["time_synced"] = True
    states = await client.keyturner_states()
    report.update(lock_state=wire_state(states.lock_state).value, battery=states.battery_percent)
    return report
