"""A virtual BLE radio: bumble controllers on one link, each offered as an HCI transport.

Every port is a loopback TCP server speaking H4 (bumble's `tcp-client:HOST:PORT` transport, so
any bumble host, the agent's bleak backend included, can use it). Each accepted host gets a fresh
controller; when the host goes away its links drop (the peer sees a disconnection) and its
adverts stop, as when a dongle is unplugged. `attach()` gives an in-process host the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Final

from bumble import core, hci, ll
from bumble.controller import Controller
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink, StreamPacketSource

log = logging.getLogger(__name__)

HOST_GONE_REASON: Final = hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR  # what peers see


class RadioController(Controller):
    """A bumble controller that also honours LE Create Connection Cancel."""

    def on_hci_le_create_connection_cancel_command(
        self, command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        """Cancel a pending connection and report it as the spec says (Vol 4 Part E 7.8.13)."""
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        event = hci.HCI_LE_Connection_Complete_Event(
            status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
            connection_handle=0,
            role=hci.Role.CENTRAL,
            peer_address_type=pending.peer_address.address_type,
            peer_address=pending.peer_address,
            connection_interval=0,
            peripheral_latency=0,
            supervision_timeout=0,
            central_clock_accuracy=0,
        )
        asyncio.get_running_loop().call_soon(self.send_hci_packet, event)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def power_off(self, reason: int = HOST_GONE_REASON) -> None:
        """Drop every link (peers see a disconnection) and stop advertising and scanning."""
        for connection in list(self.le_connections.values()):
            with contextlib.suppress(core.InvalidArgumentError):  # the peer may be gone too
                connection.send_ll_control_pdu(ll.TerminateInd(reason))
            self.le_connections.pop(connection.peer_address, None)
        self.le_legacy_advertiser.stop()
        for advertising_set in self.advertising_sets.values():
            advertising_set.stop()
        self.le_scan_enable = False
        self.pending_le_connection = None
        with contextlib.suppress(KeyError):
            self.link.remove_controller(self)


class _TcpHostSink:
    """Controller → host packets, written to the TCP stream (dropped when no host)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def on_packet(self, packet: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(packet)


@dataclass
class RadioPort:
    """One controller slot offered on a TCP port."""

    name: str
    host: str
    port: int
    server: asyncio.Server | None = None
    controller: RadioController | None = None
    clients: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def hci(self) -> str:
        """The bumble transport spec a host uses to reach this controller."""
        return f"tcp-client:{self.host}:{self.port}"


class _PortProtocol(asyncio.Protocol):
    def __init__(self, radio: VirtualRadio, slot: RadioPort) -> None:
        self.radio = radio
        self.slot = slot
        self.source = StreamPacketSource()
        self.controller: RadioController | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if self.slot.controller is not None:
            log.warning("radio %s: a host is already attached; refusing another", self.slot.name)
            transport.close()
            return
        self.transport = transport
        self.controller = self.radio.new_controller(self.slot.name, self.source)
        self.controller.host = _TcpHostSink(transport)
        self.slot.controller = self.controller
        self.slot.clients += 1
        log.info("radio %s: host attached", self.slot.name)

    def data_received(self, data: bytes) -> None:
        if self.controller is not None:
            self.source.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.controller is None:
            return
        self.controller.power_off()
        if self.slot.controller is self.controller:
            self.slot.controller = None
        self.controller = None
        log.info("radio %s: host detached", self.slot.name)


class VirtualRadio:
    """Controllers sharing one LocalLink; adverts and connections pass between them."""

    def __init__(self) -> None:
        self.link = LocalLink()  # type: ignore[no-untyped-call]
        self.ports: list[RadioPort] = []
        self._count = 0

    def new_controller(self, name: str, source: Any = None) -> RadioController:
        """A fresh controller on the link with a unique public address."""
        self._count += 1
        address = hci.Address(
            f"C0:FF:EE:00:{self._count >> 8:02X}:{self._count & 0xFF:02X}",
            hci.Address.PUBLIC_DEVICE_ADDRESS,
        )
        return RadioController(name, host_source=source, link=self.link, public_address=address)

    def attach(self, name: str) -> tuple[RadioController, AsyncPipeSink]:
        """An in-process host's (source, sink) pair: `Host(*radio.attach("lock"))`."""
        controller = self.new_controller(name)
        return controller, AsyncPipeSink(controller)

    async def serve(self, port: int = 0, *, host: str = "127.0.0.1", name: str = "") -> RadioPort:
        """Offer a controller slot on a TCP port (0 picks a free one)."""
        slot = RadioPort(name or f"hci{len(self.ports)}", host, port)
        loop = asyncio.get_running_loop()
        slot.server = await loop.create_server(lambda: _PortProtocol(self, slot), host, port)
        slot.port = slot.server.sockets[0].getsockname()[1]
        self.ports.append(slot)
        return slot

    async def close(self) -> None:
        """Stop every port and drop every link."""
        for slot in self.ports:
            if slot.controller is not None:
                slot.controller.power_off()
                slot.controller = None
            if slot.server is not None:
                slot.server.close()
                await slot.server.wait_closed()
        for controller in list(self.link.controllers):
            if isinstance(controller, RadioController):
                controller.power_off()
        self.ports.clear()


async def run_radio(ports: list[int], host: str, stop: asyncio.Event) -> None:
    """Serve a radio with one slot per port until stop is set (`kasify-sim radio`)."""
    radio = VirtualRadio()
    try:
        for index, port in enumerate(ports):
            slot = await radio.serve(port, host=host, name=f"hci{index}")
            print(f"kasify-sim radio: {slot.name} at {slot.hci}", flush=True)
        await stop.wait()
    finally:
        await radio.close()
