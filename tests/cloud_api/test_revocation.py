"""Deleting a gateway rewrites the CRL and runs the broker reload command."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from cloud_api.app import create_app
from cloud_api.keys import init_data_dir
from cloud_api.pki import CertificateAuthority
from tests.cloud_api.conftest import api_settings
from tests.cloud_api.helpers import Host, enroll


async def _delete_enrolled_gateway(
    tmp_path: Path, ca: CertificateAuthority, reload_command: str
) -> int:
    data_dir = tmp_path / "cloud"
    init_data_dir(data_dir, ca)
    settings = api_settings(
        data_dir,
        f"sqlite:///{data_dir / 'cloud.db'}",
        broker_reload_command=reload_command,
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cloud.test") as client:
        token = (
            await client.post(
                "/auth/register", json={"email": "o@example.com", "password": "p" * 9}
            )
        ).json()["token"]
        host = Host(client, token, "owner")
        prop = await host.new_property()
        agent = await enroll(client, await host.new_gateway(prop["id"]))
        assert (await host.delete(f"/gateways/{agent.gateway_id}")).status_code == 204
    app.state.ctx.db.dispose()
    return x509.load_pem_x509_certificate(agent.enrolled["certificate"].encode()).serial_number


async def test_reload_command_runs_after_the_crl_is_written(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    marker = tmp_path / "reloaded"
    serial = await _delete_enrolled_gateway(tmp_path, ca, f"cp {tmp_path}/cloud/crl.pem {marker}")
    copied = x509.load_pem_x509_crl(marker.read_bytes())
    assert copied.get_revoked_certificate_by_serial_number(serial) is not None


async def test_failing_reload_command_is_logged_not_fatal(
    tmp_path: Path, ca: CertificateAuthority, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="cloud_api.services.revocation"):
        await _delete_enrolled_gateway(tmp_path, ca, "false")
    [line] = [r.getMessage() for r in caplog.records]
    assert "broker reload command 'false' exited 1" in line
    assert "KASIFY_BROKER_RELOAD_COMMAND" in line
