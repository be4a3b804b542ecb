"""Nuki over BLE: protocol core, bumble backend, emulator, driver."""
