"""`kasify-agent enroll` against a real `kasify-cloud serve` process (MQTT off: not needed here)."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from agent.cli import main as agent_main
from agent.enroll import EnrollError, enroll, gateway_id_from_token
from agent.identity import Identity
from simulator.broker import free_port
from simulator.stack import Api, command

START_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data = tmp_path_factory.mktemp("cloud")
    port = free_port()
    env = dict(
        os.environ,
        KASIFY_DATA_DIR=str(data),
        KASIFY_MQTT_ENABLED="false",
        KASIFY_PUBLIC_URL=f"http://127.0.0.1:{port}",
        KASIFY_BROKER_PORT="18883",
    )
    subprocess.run(command("kasify-cloud", "init"), env=env, check=True, capture_output=True)
    log = (data / "serve.log").open("wb")
    process = subprocess.Popen(
        command("kasify-cloud", "serve", "--port", str(port)),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = Api(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if httpx.get(f"{api.base_url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise AssertionError((data / "serve.log").read_text())
        time.sleep(0.1)
    api.register_or_login("enroll@example.com", "a long enough password", "Host")
    yield api
    api.close()
    process.terminate()
    process.wait(10)
    log.close()


def _token(api: Api) -> str:
    prop = api.call("POST", "/properties", {"name": "Flat", "timezone": "Europe/Madrid"}, 201)
    gateway = api.call("POST", f"/properties/{prop['id']}/gateways", {"name": "Pi"}, 201)
    assert gateway["enrollCommand"].endswith(gateway["enrollmentToken"])
    return str(gateway["enrollmentToken"])


def test_enroll_stores_a_working_identity_with_private_files(cloud: Api, tmp_path: Path) -> None:
    token = _token(cloud)
    identity = enroll(cloud.base_url, token, tmp_path / "state")
    assert identity.gateway_id == gateway_id_from_token(token)
    assert (identity.broker_host, identity.broker_port) == ("127.0.0.1", 18883)
    cert = x509.load_pem_x509_certificate(identity.tls.cert.read_bytes())
    cn = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    assert cn == identity.gateway_id
    for secret in ("tls/client.key", "seal.key", "pin.key"):
        mode = stat.S_IMODE((tmp_path / "state" / secret).stat().st_mode)
        assert mode == 0o600, secret
    assert Identity.load(tmp_path / "state") == identity

    gateway = cloud.call("GET", f"/gateways/{identity.gateway_id}")
    assert gateway["status"] == "enrolled"


def test_a_token_works_once(cloud: Api, tmp_path: Path) -> None:
    token = _token(cloud)
    enroll(cloud.base_url, token, tmp_path / "a")
    with pytest.raises(EnrollError, match="refused the token"):
        enroll(cloud.base_url, token, tmp_path / "b")
    assert not (tmp_path / "b" / "gateway.json").exists()


def test_an_enrolled_gateway_is_not_replaced_by_accident(cloud: Api, tmp_path: Path) -> None:
    enroll(cloud.base_url, _token(cloud), tmp_path / "state")
    with pytest.raises(EnrollError, match="--force"):
        enroll(cloud.base_url, _token(cloud), tmp_path / "state")
    replaced = enroll(cloud.base_url, _token(cloud), tmp_path / "state", force=True)
    assert Identity.load(tmp_path / "state").gateway_id == replaced.gateway_id


@pytest.mark.parametrize("token", ["", "no-dot-here", ".secret", "gw/../x.secret", "a b.c"])
def test_garbage_tokens_are_refused_before_any_request(token: str) -> None:
    with pytest.raises(EnrollError):
        gateway_id_from_token(token)


def test_unreachable_cloud_says_where_it_looked(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(EnrollError, match=f"cannot reach the cloud at {url}/gateways/enroll"):
        enroll(url, "gw-1.secret", tmp_path / "state")


def test_cli_reports_errors_without_a_traceback(
    cloud: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = str(tmp_path / "state")
    code = agent_main(["--state-dir", state, "enroll", "--cloud", cloud.base_url, "--token", "x.y"])
    assert code == 2
    assert "kasify-agent: the cloud refused the token" in capsys.readouterr().err
    assert agent_main(["--state-dir", state, "status"]) == 2
    assert "run `kasify-agent enroll" in capsys.readouterr().err
