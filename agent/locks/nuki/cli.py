"""The handlers of `kasify-agent nuki …` (the parser is in commands.py, which loads none of this).

Every command prints JSON. With `[ble] hci` set, bleak runs on that bumble transport (e.g. the
virtual radio); otherwise on the system's BlueZ adapter.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from agent.ble import bumble_backend
from agent.clock import Clock, system_clock_synchronized
from agent.commands import CommandError
from agent.config import AgentConfig
from agent.locks.base import DriverContext, LockAction, LockError
from agent.locks.nuki.adverts import NukiAdvert, parse_advert
from agent.locks.nuki.client import NukiClient
from agent.locks.nuki.driver import NukiLockDriver
from agent.locks.nuki.errors import NukiError, NukiLockError
from agent.locks.nuki.events import wire_door, wire_state
from agent.locks.nuki.integration import NukiIntegration, normalise_ref
from agent.locks.nuki.setup import pair_lock
from agent.locks.nuki.store import Credentials, NukiStore
from sync_protocol.models import Event

Found = tuple[BLEDevice, NukiAdvert, int]


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str), flush=True)


def _run(config: AgentConfig, work: Callable[[], Awaitable[int]]) -> int:
    async def main() -> int:
        installed = False
        if config.ble.hci and not bumble_backend.installed():
            bumble_backend.install(config.ble.hci)
            installed = True
        try:
            return await work()
        except NukiError as exc:
            raise CommandError(str(exc)) from None
        finally:
            if installed:
                await bumble_backend.close()
                bumble_backend.uninstall()

    return asyncio.run(main())


def _paired_id(store: NukiStore, given: str | None) -> str:
    if given:
        try:
            return normalise_ref(given)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    paired = store.paired()
    if len(paired) != 1:
        known = ", ".join(paired) or "none"
        raise CommandError(f"name the lock: paired locks are {known}")
    return paired[0]


@asynccontextmanager
async def _scanning(
    on_advert: Callable[[BLEDevice, NukiAdvert, int], None],
) -> AsyncIterator[None]:
    def callback(device: BLEDevice, data: AdvertisementData) -> None:
        advert = parse_advert(data.manufacturer_data, data.service_data, data.local_name)
        if advert is not None:
            on_advert(device, advert, data.rssi)

    async with BleakScanner(detection_callback=callback):
        yield


async def _find(nuki_id: str | None, timeout_s: float, *, pairing: bool = False) -> Found:
    found: asyncio.Future[Found] = asyncio.get_running_loop().create_future()

    def seen(device: BLEDevice, advert: NukiAdvert, rssi: int) -> None:
        wanted = nuki_id is None or advert.nuki_id == nuki_id
        if wanted and (advert.pairing_mode or not pairing) and not found.done():
            found.set_result((device, advert, rssi))

    async with _scanning(seen):
        try:
            async with asyncio.timeout(timeout_s):
                return await found
        except TimeoutError:
            what = f"Nuki {nuki_id}" if nuki_id else "a Nuki"
            mode = " in pairing mode (hold its button for 5 s)" if pairing else ""
            raise CommandError(f"{what}{mode} not found within {timeout_s:.0f} s") from None


# --- scan ----------------------------------------------------------------------------------------


def _scan(config: AgentConfig, args: argparse.Namespace) -> int:
    store = NukiStore(config.state_dir)

    async def work() -> int:
        seen: dict[str, dict[str, Any]] = {}

        def on_advert(device: BLEDevice, advert: NukiAdvert, rssi: int) -> None:
            seen[advert.nuki_id] = {
                "nuki_id": advert.nuki_id,
                "address": device.address,
                "name": device.name or f"Nuki_{advert.nuki_id}",
                "rssi": rssi,
                "mode": "pairing" if advert.pairing_mode else "door",
                "state_changed": advert.state_changed,
                "paired": store.credentials_mtime(advert.nuki_id) is not None,
            }

        async with _scanning(on_advert):
            await asyncio.sleep(args.seconds)
        _print(sorted(seen.values(), key=lambda item: str(item["nuki_id"])))
        return 0

    return _run(config, work)


# --- pair ----------------------------------------------------------------------------------------


def _pair(config: AgentConfig, args: argparse.Namespace) -> int:
    store = NukiStore(config.state_dir)
    wanted = normalise_ref(args.nuki_id) if args.nuki_id else None
    existing = store.credentials(wanted) if wanted else None
    if existing is not None and not args.force:
        if args.pin is None:
            raise CommandError(
                f"Nuki {wanted} is already paired; --pin sets its PIN, --force re-pairs"
            )
        return _run(config, lambda: _set_pin(store, existing, args.pin, args.timeout))

    async def work() -> int:
        device, advert, _ = await _find(wanted, args.timeout, pairing=True)
        report = await pair_lock(
            device,
            advert.nuki_id,
            store,
            app_id=config.nuki.app_id,
            name=config.nuki.name,
            pin=args.pin,
            sync_time=system_clock_synchronized() is not False,
        )
        _print(report)
        return 0 if report["pin_verified"] or args.pin is None else 2

    return _run(config, work)


async def _set_pin(store: NukiStore, creds: Credentials, pin: int, timeout_s: float) -> int:
    device, _, _ = await _find(creds.nuki_id, timeout_s)
    client = await NukiClient.connect(device, creds.nuki_id, creds.with_pin(pin))
    try:
        await client.verify_pin()
    except NukiLockError as exc:
        raise CommandError(f"the lock rejected the security PIN ({exc.code.name})") from None
    finally:
        await client.close()
    store.save_credentials(creds.with_pin(pin))
    _print({"nuki_id": creds.nuki_id, "pin_verified": True})
    return 0


# --- state, action, codes ------------------------------------------------------------------------


async def _connected(store: NukiStore, nuki_id: str, timeout_s: float) -> NukiClient:
    creds = store.credentials(nuki_id)
    if creds is None:
        raise CommandError(f"Nuki {nuki_id} is not paired: run `kasify-agent nuki pair {nuki_id}`")
    device, _, _ = await _find(nuki_id, timeout_s)
    return await NukiClient.connect(device, nuki_id, creds)


def _state(config: AgentConfig, args: argparse.Namespace) -> int:
    store = NukiStore(config.state_dir)
    nuki_id = _paired_id(store, args.nuki_id)

    async def work() -> int:
        client = await _connected(store, nuki_id, args.timeout)
        try:
            states = await client.keyturner_states()
            battery = await client.battery_report()
        finally:
            await client.close()
        _print(
            {
                "nuki_id": nuki_id,
                "lock_state": wire_state(states.lock_state).value,
                "nuki_lock_state": states.lock_state.name.lower(),
                "door": wire_door(states.door_sensor).value,
                "battery_percent": states.battery_percent,
                "battery_critical": states.battery_critical,
                "battery_voltage_mv": battery.battery_voltage_mv,
                "lock_time": states.current_time.isoformat() if states.current_time else None,
                "last_action": states.last_lock_action.name.lower(),
                "last_action_completion": states.last_action_completion.name.lower(),
            }
        )
        return 0

    return _run(config, work)


def _action(config: AgentConfig, args: argparse.Namespace) -> int:
    store = NukiStore(config.state_dir)
    nuki_id = _paired_id(store, args.nuki_id)
    events: list[Event] = []

    async def emit(event: Event) -> None:
        events.append(event)

    async def work() -> int:
        ctx = DriverContext(config.state_dir, Clock(), emit)
        integration = NukiIntegration(config.nuki, config.ble, ctx)
        driver = integration.driver(f"nuki-{nuki_id}", nuki_id, {})
        assert isinstance(driver, NukiLockDriver)
        await integration.start()
        try:
            async with asyncio.timeout(args.timeout):
                await integration.seen(nuki_id)
            outcome = await driver.perform(LockAction(args.action))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(args.timeout):
                    await driver.wait_idle()  # the state read that clears the beacon flag
        except TimeoutError:
            raise CommandError(f"Nuki {nuki_id} not found within {args.timeout:.0f} s") from None
        except LockError as exc:
            raise CommandError(str(exc)) from None
        finally:
            await integration.stop()
        _print({"nuki_id": nuki_id, "action": args.action, "state": outcome.state.value,
                "detail": outcome.detail})  # fmt: skip
        return 0

    return _run(config, work)


def _codes(config: AgentConfig, args: argparse.Namespace) -> int:
    store = NukiStore(config.state_dir)
    nuki_id = _paired_id(store, args.nuki_id)

    async def work() -> int:
        client = await _connected(store, nuki_id, args.timeout)
        try:
            codes = await client.keypad_codes()
        finally:
            await client.close()
        ours = {m.keypad_id: code_id for code_id, m in store.code_map(nuki_id).items()}
        _print(
            [
                {
                    "keypad_id": c.code_id,
                    "name": c.name,
                    "enabled": c.enabled,
                    "time_limited": c.window.time_limited,
                    "allowed_from": c.window.allowed_from,
                    "allowed_until": c.window.allowed_until,
                    "lock_count": c.lock_count,
                    "code_id": ours.get(c.code_id),
                }
                for c in codes
            ]
        )
        return 0

    return _run(config, work)
