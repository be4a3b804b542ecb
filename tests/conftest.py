"""Shared fixtures: a private Mosquitto per test session, started on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_api.pki import CertificateAuthority
from simulator.broker import RunningBroker, start_broker


@pytest.fixture(scope="session")
def ca() -> CertificateAuthority:
    """The cloud's certificate authority for this test session."""
    return CertificateAuthority.create("Kasify Test CA")


@pytest.fixture(scope="session")
def broker(
    tmp_path_factory: pytest.TempPathFactory, ca: CertificateAuthority
) -> Iterator[RunningBroker]:
    """A private Mosquitto: TLS with client certificates, CN as username, ACL and CRL."""
    running = start_broker(tmp_path_factory.mktemp("broker"), ca)
    yield running
    running.stop()


@pytest.fixture
def certs_dir(tmp_path: Path) -> Path:
    """A directory for client certificates of one test."""
    return tmp_path / "certs"
