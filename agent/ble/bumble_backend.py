"""A bleak backend over any bumble HCI transport (a TCP-attached virtual controller, a USB dongle).

`install("tcp-client:127.0.0.1:9001")` makes every BleakClient and BleakScanner created afterwards
in this process use one bumble host stack on that controller, so any bleak-based code (ours,
bleak-retry-connector) runs unchanged without BlueZ. The host is opened lazily on first use in the
running event loop and shared by every client and scanner of that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final

import bleak
from bleak.args import SizedBuffer
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bumble import att, core, hci
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt import Characteristic
from bumble.gatt_client import CharacteristicProxy, DescriptorProxy
from bumble.host import Host
from bumble.transport import open_transport
from bumble.transport.common import Transport, TransportSink, TransportSource

from agent.ble.advertising import parse_advertising_data

log = logging.getLogger(__name__)

BACKEND_ID: Final = "bumble"
SCAN_INTERVAL_MS: Final = 60.0  # continuous scanning: window == interval
DISCONNECT_TIMEOUT_S: Final = 5.0  # a local disconnect completes at once on any sane controller
_PROPERTY_NAMES: Final = (
    (Characteristic.Properties.BROADCAST, "broadcast"),
    (Characteristic.Properties.READ, "read"),
    (Characteristic.Properties.WRITE_WITHOUT_RESPONSE, "write-without-response"),
    (Characteristic.Properties.WRITE, "write"),
    (Characteristic.Properties.NOTIFY, "notify"),
    (Characteristic.Properties.INDICATE, "indicate"),
    (Characteristic.Properties.AUTHENTICATED_SIGNED_WRITES, "authenticated-signed-writes"),
    (Characteristic.Properties.EXTENDED_PROPERTIES, "extended-properties"),
)

AdapterFactory = Callable[[], Awaitable["BumbleAdapter"]]


def _random_static_address() -> hci.Address:
    raw = bytearray(os.urandom(6))
    raw[5] |= 0xC0  # a static random address has its two top bits set (stored little-endian)
    return hci.Address(bytes(raw), hci.Address.RANDOM_DEVICE_ADDRESS)


def bleak_uuid(value: core.UUID) -> str:
    """A bumble UUID as bleak's normalised lower-case 128-bit string."""
    return str(uuid.UUID(bytes=bytes(reversed(value.to_bytes(force_128=True)))))


class BumbleAdapter:
    """One bumble host stack on one controller, shared by the clients and scanners of a loop."""

    def __init__(self, device: Device, transport: Transport | None) -> None:
        self.device = device
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        self.connect_lock = asyncio.Lock()  # the host allows one pending LE connection
        self.scanners: set[BumbleScanner] = set()
        self.addresses: dict[str, hci.Address] = {}
        self._scan_lock = asyncio.Lock()
        device.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)

    @classmethod
    async def open(cls, hci_transport: str) -> BumbleAdapter:
        """Open a bumble transport spec (tcp-client:…, usb:0, serial:…) and power the host on."""
        transport = await open_transport(hci_transport)
        return await cls.with_hci(transport.source, transport.sink, transport)

    @classmethod
    async def with_hci(
        cls, source: TransportSource, sink: TransportSink, transport: Transport | None = None
    ) -> BumbleAdapter:
        """A host on an already open HCI source/sink (an in-process controller)."""
        host = Host(controller_source=source, controller_sink=sink)
        device = Device(name="kasify-agent", address=_random_static_address(), host=host)
        await device.power_on()
        return cls(device, transport)

    async def close(self, *, graceful: bool = True) -> None:
        """Close the transport; graceful: disconnect and stop scanning first."""
        if graceful:
            for connection in list(self.device.connections.values()):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.disconnect(), DISCONNECT_TIMEOUT_S)
            if self.device.scanning:
                with contextlib.suppress(Exception):
                    await self.device.stop_scanning()
        if self.transport is not None:
            await self.transport.close()

    async def add_scanner(self, scanner: BumbleScanner) -> None:
        """Start delivering adverts to a scanner (scanning while any scanner is active)."""
        async with self._scan_lock:
            self.scanners.add(scanner)
            if not self.device.scanning:
                await self.device.start_scanning(
                    active=True,
                    filter_duplicates=False,
                    scan_interval=SCAN_INTERVAL_MS,
                    scan_window=SCAN_INTERVAL_MS,
                )

    async def remove_scanner(self, scanner: BumbleScanner) -> None:
        """Stop delivering adverts to a scanner; stop scanning when none is left."""
        async with self._scan_lock:
            self.scanners.discard(scanner)
            if not self.scanners and self.device.scanning:
                await self.device.stop_scanning()

    def resolve(self, address: str) -> hci.Address:
        """The typed address of a device seen in an advert (random unless told otherwise)."""
        known = self.addresses.get(address.upper())
        if known is not None:
            return known
        public = address.upper().endswith("/P")
        kind = hci.Address.PUBLIC_DEVICE_ADDRESS if public else hci.Address.RANDOM_DEVICE_ADDRESS
        return hci.Address(address.upper().removesuffix("/P"), kind)

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        address = advertisement.address.to_string(with_type_qualifier=False)
        self.addresses[address] = advertisement.address
        for scanner in list(self.scanners):
            scanner.on_advertisement(address, advertisement)


# --- process-wide installation ------------------------------------------------------------------

_factory: AdapterFactory | None = None
_adapters: dict[asyncio.AbstractEventLoop, BumbleAdapter] = {}
_opening: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
_saved: dict[str, Any] = {}


def install(hci_transport: str) -> None:
    """Make every BleakClient/BleakScanner created from now on use bumble on this transport."""
    install_factory(lambda: BumbleAdapter.open(hci_transport))


def install_factory(factory: AdapterFactory) -> None:
    """Like install(), with a factory for the adapter (an in-process controller in tests)."""
    global _factory
    _factory = factory
    if not _saved:
        _saved["client"] = vars(bleak)["get_platform_client_backend_type"]
        _saved["scanner"] = vars(bleak)["get_platform_scanner_backend_type"]
    # Replace bleak's platform lookup (a module global of `bleak`) so no caller needs to change.
    setattr(bleak, "get_platform_client_backend_type", lambda: (BumbleClient, BACKEND_ID))  # noqa: B010
    setattr(bleak, "get_platform_scanner_backend_type", lambda: (BumbleScanner, BACKEND_ID))  # noqa: B010


def installed() -> bool:
    """Whether bleak currently uses this backend."""
    return _factory is not None


def uninstall() -> None:
    """Give bleak its platform backend back (adapters must be closed with `close()`)."""
    global _factory
    _factory = None
    if _saved:
        setattr(bleak, "get_platform_client_backend_type", _saved.pop("client"))  # noqa: B010
        setattr(bleak, "get_platform_scanner_backend_type", _saved.pop("scanner"))  # noqa: B010


async def get_adapter() -> BumbleAdapter:
    """The running loop's adapter, opened on first use."""
    loop = asyncio.get_running_loop()
    adapter = _adapters.get(loop)
    if adapter is not None:
        return adapter
    lock = _opening.setdefault(loop, asyncio.Lock())
    async with lock:
        adapter = _adapters.get(loop)
        if adapter is None:
            if _factory is None:
                raise BleakError("the bumble backend is not installed")
            adapter = _adapters[loop] = await _factory()
    return adapter


async def close(*, graceful: bool = True) -> None:
    """Close the running loop's adapter; not graceful: just drop the transport, like a crash."""
    loop = asyncio.get_running_loop()
    _opening.pop(loop, None)
    adapter = _adapters.pop(loop, None)
    if adapter is not None:
        await adapter.close(graceful=graceful)


# --- scanner ------------------------------------------------------------------------------------


class BumbleScanner(BaseBleakScanner):
    """bleak's scanner interface over the shared bumble host."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._adapter: BumbleAdapter | None = None

    async def start(self) -> None:
        """Start scanning."""
        self.seen_devices = {}
        self._adapter = await get_adapter()
        await self._adapter.add_scanner(self)

    async def stop(self) -> None:
        """Stop scanning."""
        if self._adapter is not None:
            await self._adapter.remove_scanner(self)
            self._adapter = None

    def on_advertisement(self, address: str, advertisement: Advertisement) -> None:
        """Turn one bumble advert into bleak's device + advertisement data and report it."""
        parsed = parse_advertising_data(advertisement.data_bytes)
        previous = self.seen_devices.get(address)
        if advertisement.is_scan_response and previous is not None:
            parsed = parsed.merged_over(previous[1])
        tx_power = parsed.tx_power
        if tx_power is None and advertisement.tx_power != Advertisement.TX_POWER_NOT_AVAILABLE:
            tx_power = advertisement.tx_power
        data = AdvertisementData(
            local_name=parsed.local_name,
            manufacturer_data=parsed.manufacturer_data,
            service_data=parsed.service_data,
            service_uuids=parsed.service_uuids,
            tx_power=tx_power,
            rssi=advertisement.rssi,
            platform_data=(advertisement,),
        )
        if not self.is_allowed_uuid(data.service_uuids):
            return
        details = {"source": BACKEND_ID, "address_type": int(advertisement.address.address_type)}
        name = parsed.local_name or (previous[0].name if previous else None)
        device = self.create_or_update_device(address, address, name, details, data)
        self.call_detection_callbacks(device, data)


# --- client -------------------------------------------------------------------------------------


class BumbleClient(BaseBleakClient):
    """bleak's client interface over the shared bumble host."""

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._name = (
            address_or_ble_device.name
            if isinstance(address_or_ble_device, BLEDevice) and address_or_ble_device.name
            else self.address
        )
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._closing = False
        self._subscriptions: dict[int, Callable[[bytes], None]] = {}

    @property
    def name(self) -> str:
        """The advertised name, or the address."""
        return self._name

    @property
    def mtu_size(self) -> int:
        """The ATT MTU of the link."""
        return self._connection.att_mtu if self._connection is not None else att.ATT_DEFAULT_MTU

    @property
    def is_connected(self) -> bool:
        """Whether the link is up."""
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect and discover services, characteristics and descriptors."""
        timeout = float(kwargs.get("timeout", self._timeout))
        adapter = await get_adapter()
        target = adapter.resolve(self.address)
        async with adapter.connect_lock:
            try:
                connection = await adapter.device.connect(target, timeout=timeout)
            except asyncio.CancelledError:
                # leave no pending LE connection behind in the controller
                with contextlib.suppress(Exception):
                    await asyncio.shield(adapter.device.cancel_connection())  # type: ignore[no-untyped-call]
                raise
            except core.TimeoutError:
                raise TimeoutError(f"no connection to {self.address} within {timeout} s") from None
            except core.ConnectionError as exc:
                raise BleakDeviceNotFoundError(self.address, f"connect failed: {exc}") from None
        self._connection = connection
        self._closing = False
        connection.on(Connection.EVENT_DISCONNECTION, self._on_disconnection)
        try:
            self._peer = Peer(connection)
            self.services = await self._discover(self._peer)
        except BaseException:
            await self.disconnect()
            raise

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        mtu = self.mtu_size
        for service in await self._call(peer.discover_services()):
            bleak_service = BleakGATTService(service, service.handle, bleak_uuid(service.uuid))
            collection.add_service(bleak_service)
            for proxy in await self._call(peer.discover_characteristics(service=service)):
                props = [name for flag, name in _PROPERTY_NAMES if proxy.properties & flag]
                char = BleakGATTCharacteristic(
                    proxy, proxy.handle, bleak_uuid(proxy.uuid), props,  # type: ignore[arg-type]
                    lambda: mtu - 3, bleak_service,
                )  # fmt: skip
                collection.add_characteristic(char)
                for descriptor in await self._call(peer.discover_descriptors(proxy)):
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            descriptor, descriptor.handle, bleak_uuid(descriptor.type), char
                        )
                    )
        return collection

    def _on_disconnection(self, reason: int) -> None:
        self._connection = None
        self._peer = None
        self._subscriptions.clear()
        callback = self._disconnected_callback
        if callback is not None and not self._closing:
            callback()

    async def disconnect(self) -> None:
        """Disconnect (a no-op when not connected)."""
        connection = self._connection
        if connection is None:
            return
        self._closing = True
        with contextlib.suppress(core.BaseBumbleError, TimeoutError, hci.HCI_Error):
            await asyncio.wait_for(connection.disconnect(), DISCONNECT_TIMEOUT_S)
        self._connection = None
        self._peer = None

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """BLE bonding is not used by the locks we drive."""
        raise NotImplementedError("pairing (bonding) is not supported by the bumble backend")

    async def unpair(self) -> None:
        """BLE bonding is not used by the locks we drive."""
        raise NotImplementedError("unpairing is not supported by the bumble backend")

    def _peer_or_raise(self) -> Peer:
        if self._peer is None:
            raise BleakError("Not connected")
        return self._peer

    async def _call(self, awaitable: Awaitable[Any]) -> Any:
        """Await a GATT procedure, translating bumble's errors into bleak's."""
        try:
            return await awaitable
        except att.ATT_Error as exc:
            raise BleakGATTProtocolError(exc.error_code) from None
        except core.TimeoutError as exc:
            raise TimeoutError(str(exc)) from None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            # bumble cancels a pending GATT request when the link drops
            raise BleakError("Disconnected while waiting for a GATT response") from None

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Read a characteristic value."""
        peer = self._peer_or_raise()
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        return bytearray(await self._call(peer.read_value(proxy)))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Read a descriptor value."""
        peer = self._peer_or_raise()
        proxy: DescriptorProxy = descriptor.obj
        return bytearray(await self._call(peer.read_value(proxy)))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        """Write a characteristic (long writes with response are split by ATT)."""
        peer = self._peer_or_raise()
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        await self._call(peer.write_value(proxy, bytes(data), with_response=response))

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        """Write a descriptor."""
        peer = self._peer_or_raise()
        proxy: DescriptorProxy = descriptor.obj
        await self._call(peer.write_value(proxy, bytes(data), with_response=True))

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        """Subscribe (notifications preferred, indications when that is all there is)."""
        peer = self._peer_or_raise()
        proxy: CharacteristicProxy[bytes] = characteristic.obj

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        self._subscriptions[characteristic.handle] = deliver
        await self._call(peer.subscribe(proxy, deliver, prefer_notify=True))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Unsubscribe."""
        peer = self._peer_or_raise()
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        deliver = self._subscriptions.pop(characteristic.handle, None)
        await self._call(peer.unsubscribe(proxy, deliver))
