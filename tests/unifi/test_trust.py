"""Trust on first use and certificate pinning, over real TLS against the emulator."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agent.locks.unifi.client import UnifiClient
from agent.locks.unifi.errors import CertificateRefused, ControllerUnreachable, NotConfigured
from agent.locks.unifi.notifications import open_notifications
from agent.locks.unifi.trust import (
    TrustRecord,
    fetch_certificate,
    normalize_fingerprint,
    normalize_url,
    trusted_controller,
)
from simulator.unifi import UnifiEmulator


@pytest.mark.parametrize(
    ("typed", "url"),
    [
        ("192.168.1.10", "https://192.168.1.10:12445"),
        ("https://192.168.1.10", "https://192.168.1.10:12445"),
        ("https://unifi.local:12445/", "https://unifi.local:12445"),
        ("https://unifi.local:12445/api/v1/developer", "https://unifi.local:12445"),
        ("https://[fd00::1]:8443", "https://[fd00::1]:8443"),
    ],
)
def test_urls_as_people_type_them(typed: str, url: str) -> None:
    assert normalize_url(typed) == url


@pytest.mark.parametrize("bad", ["http://192.168.1.10", "https://", "https://h:12445/other"])
def test_urls_we_refuse(bad: str) -> None:
    with pytest.raises(ValueError, match=r"HTTPS only|no host|address"):
        normalize_url(bad)


def test_fingerprint_forms() -> None:
    plain = "ab" * 32
    canonical = normalize_fingerprint(plain)
    assert canonical == ":".join(["AB"] * 32)
    assert normalize_fingerprint(f"sha256:{canonical.lower()}") == canonical
    with pytest.raises(ValueError, match="not a SHA-256"):
        normalize_fingerprint("ab:cd")


async def test_first_use_shows_the_certificate_and_the_record_is_private(
    emulator: UnifiEmulator, state_dir: Path
) -> None:
    cert = await fetch_certificate(emulator.url)
    assert cert.fingerprint == emulator.fingerprint
    assert "CN=UniFi Access Emulator" in cert.subject
    path = TrustRecord.of(emulator.url, cert).save(state_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    record = trusted_controller(state_dir, None)
    assert (record.url, record.fingerprint) == (emulator.url, emulator.fingerprint)
    assert record.websocket_url.startswith("wss://127.0.0.1:")


def test_untrusted_or_other_url_names_the_command(state_dir: Path) -> None:
    with pytest.raises(NotConfigured, match=r"kasify-agent unifi trust https://10\.0\.0\.2:12445"):
        trusted_controller(state_dir, "10.0.0.2")
    TrustRecord("https://10.0.0.1:12445", "AB:" * 31 + "AB").save(state_dir)
    with pytest.raises(NotConfigured, match=r"trusted controller is https://10\.0\.0\.1:12445"):
        trusted_controller(state_dir, "https://10.0.0.2:12445")


async def test_another_certificate_is_refused_before_the_token_is_sent(
    emulator: UnifiEmulator,
) -> None:
    async with UnifiEmulator(doors=1) as impostor:
        assert impostor.fingerprint != emulator.fingerprint
        pinned_to_first = TrustRecord(impostor.url, emulator.fingerprint)
        client = UnifiClient.for_record(pinned_to_first, impostor.token)
        try:
            with pytest.raises(CertificateRefused) as refused:
                await client.doors()
        finally:
            await client.aclose()
        assert refused.value.actual == impostor.fingerprint
        assert refused.value.expected == emulator.fingerprint
        assert "kasify-agent unifi trust" in str(refused.value)
        with pytest.raises(CertificateRefused):
            await open_notifications(
                pinned_to_first.websocket_url, impostor.token, pinned_to_first.context()
            )
        assert impostor.app.requests == 0  # not one HTTP request reached it
        assert impostor.app.websocket_connects == 0


async def test_the_pinned_certificate_is_accepted(emulator: UnifiEmulator) -> None:
    record = TrustRecord(emulator.url, emulator.fingerprint)
    client = UnifiClient.for_record(record, emulator.token)
    try:
        assert len(await client.doors()) == 3
    finally:
        await client.aclose()
    connection = await open_notifications(record.websocket_url, emulator.token, record.context())
    await connection.close()


async def test_nothing_listening_is_unreachable() -> None:
    with pytest.raises(ControllerUnreachable):
        await fetch_certificate("https://127.0.0.1:9", timeout_s=5)
