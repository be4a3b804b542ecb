"""Bluetooth LE plumbing: a bleak backend over any bumble HCI transport."""
