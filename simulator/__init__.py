"""Emulators of the site hardware, for tests, the demo and kasify-sim."""
