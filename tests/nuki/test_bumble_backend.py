"""The bleak API on the bumble backend over the virtual radio's TCP ports, against a bumble peer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError
from bumble import hci
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.host import Host

from agent.ble import bumble_backend
from agent.ble.bumble_backend import BumbleAdapter
from simulator.radio import VirtualRadio

SERVICE = "0000feed-0000-1000-8000-00805f9b34fb"
ECHO = "0000beef-0000-1000-8000-00805f9b34fb"
ADDRESS = "D1:22:33:44:55:66"
ADVERT = bytes([2, 0x01, 0x06, 7, 0xFF, 0x59, 0x00]) + b"kasy" + bytes([5, 0x09]) + b"echo"


class EchoPeripheral:
    """A GATT server that indicates back, in 20-byte pieces, whatever is written to it."""

    def __init__(self, radio: VirtualRadio) -> None:
        self.device = Device(
            name="echo", address=hci.Address(ADDRESS), host=Host(*radio.attach("echo"))
        )
        self.writes: list[bytes] = []
        self.connections: list[Connection] = []
        self.disconnections: list[int] = []
        self.char = Characteristic(
            ECHO,
            Characteristic.Properties.WRITE | Characteristic.Properties.INDICATE,
            Characteristic.WRITEABLE,
            CharacteristicValue(write=self._on_write),
        )

    async def start(self) -> None:
        self.device.add_service(Service(SERVICE, [self.char]))
        self.device.on(Device.EVENT_CONNECTION, self._on_connection)
        await self.device.power_on()
        self.device.gatt_server.max_mtu = 23
        await self.device.start_advertising(
            auto_restart=True,
            advertising_data=ADVERT,
            advertising_interval_min=20,
            advertising_interval_max=20,
        )

    def _on_connection(self, connection: Connection) -> None:
        self.connections.append(connection)
        connection.on(Connection.EVENT_DISCONNECTION, self.disconnections.append)

    def _on_write(self, connection: Connection, value: bytes) -> None:
        self.writes.append(value)

        async def echo() -> None:
            for start in range(0, len(value), 20):
                piece = value[start : start + 20]
                await self.device.gatt_server.indicate_subscriber(connection, self.char, piece)

        asyncio.get_running_loop().create_task(echo())


@pytest.fixture
async def echo(radio: VirtualRadio) -> EchoPeripheral:
    peripheral = EchoPeripheral(radio)
    await peripheral.start()
    return peripheral


@pytest.fixture
async def over_tcp(radio: VirtualRadio) -> AsyncIterator[str]:
    """The agent's host reaches its controller through a TCP port, as a separate process would."""
    slot = await radio.serve(0)
    bumble_backend.install(slot.hci)
    yield slot.hci
    await bumble_backend.close()
    bumble_backend.uninstall()


async def test_scan_connect_write_long_and_receive_indications(
    echo: EchoPeripheral, over_tcp: str
) -> None:
    device = await BleakScanner.find_device_by_address(ADDRESS, timeout=5)
    assert device is not None
    adv = None
    async with BleakScanner() as scanner:
        async for found, data in scanner.advertisement_data():
            if found.address == ADDRESS:
                adv = data
                break
    assert adv is not None
    assert adv.manufacturer_data == {0x0059: b"kasy"}
    assert adv.local_name == "echo"
    assert adv.rssi == -50

    pieces: list[bytes] = []
    got_all = asyncio.Event()
    async with BleakClient(device) as client:
        assert client.backend_id == "bumble"
        assert client.mtu_size == 23
        assert client.services.get_service(SERVICE) is not None
        echo_char = client.services.get_characteristic(ECHO)
        assert echo_char is not None
        assert set(echo_char.properties) == {"write", "indicate"}

        def on_indication(_: object, data: bytearray) -> None:
            pieces.append(bytes(data))
            if sum(map(len, pieces)) == 50:
                got_all.set()

        await client.start_notify(ECHO, on_indication)
        message = bytes(range(50))
        await client.write_gatt_char(ECHO, message, response=True)  # a long write (> 20 bytes)
        async with asyncio.timeout(5):
            await got_all.wait()
    assert echo.writes == [message]
    assert [len(p) for p in pieces] == [20, 20, 10]
    assert b"".join(pieces) == message


async def test_peer_disconnect_calls_back_and_later_writes_fail(
    echo: EchoPeripheral, over_tcp: str
) -> None:
    dropped = asyncio.Event()
    client = BleakClient(ADDRESS, disconnected_callback=lambda _: dropped.set())
    await client.connect()
    await echo.connections[0].disconnect()
    async with asyncio.timeout(5):
        await dropped.wait()
    assert not client.is_connected
    with pytest.raises(BleakError):
        await client.write_gatt_char(ECHO, b"late", response=True)


async def test_connecting_to_an_absent_device_times_out_and_the_radio_stays_usable(
    echo: EchoPeripheral, over_tcp: str
) -> None:
    absent = BleakClient("D9:99:99:99:99:99", timeout=0.3)
    with pytest.raises(TimeoutError):
        await absent.connect()
    async with BleakClient(ADDRESS) as client:
        assert client.is_connected


async def test_an_agent_host_going_away_drops_its_links(
    radio: VirtualRadio, echo: EchoPeripheral, over_tcp: str
) -> None:
    client = BleakClient(ADDRESS)
    await client.connect()
    await bumble_backend.close(graceful=False)  # like the agent process dying: TCP just closes
    async with asyncio.timeout(5):
        while not echo.disconnections:  # noqa: ASYNC110 - bumble offers no awaitable for this
            await asyncio.sleep(0.01)
    assert echo.disconnections == [hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR]
    async with BleakClient(ADDRESS) as again:  # a new host gets a fresh controller on the port
        assert again.is_connected


async def test_in_process_host_on_the_same_link(radio: VirtualRadio, echo: EchoPeripheral) -> None:
    bumble_backend.install_factory(lambda: BumbleAdapter.with_hci(*radio.attach("agent")))
    try:
        async with BleakClient(ADDRESS) as client:
            assert client.is_connected
    finally:
        await bumble_backend.close()
        bumble_backend.uninstall()
    assert not bumble_backend.installed()
