"""An emulated UniFi Access controller: HTTPS + WSS developer API, doors, visitors, faults."""

from simulator.unifi.controller import Controller
from simulator.unifi.server import UnifiEmulator

__all__ = ["Controller", "UnifiEmulator"]
