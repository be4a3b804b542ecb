"""Nuki Smart Lock over Bluetooth LE: sans-IO protocol core, driver, pairing."""
