"""The end-to-end tests' stack of real processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.broker import free_port
from simulator.stack import Stack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """Every part its own process, under one directory; stopped after the test."""
    site = Stack(tmp_path / "site", api_port=free_port(), broker_port=free_port())
    yield site
    site.stop()
