"""Settings, the data directory's keys, and the kasify-cloud command line."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography import x509

from cloud_api.cli import main
from cloud_api.keys import DataDirError, init_data_dir, load_keys
from cloud_api.pki import CertificateAuthority
from cloud_api.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("KASIFY_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.data_dir == Path("./var/cloud")
    assert settings.db_url == f"sqlite:///{Path('./var/cloud/cloud.db').resolve()}"
    assert settings.advertised_broker == ("127.0.0.1", 8883)
    assert settings.mqtt_enabled is True
    assert settings.sync_horizon_days == 14
    assert settings.enrollment_token_ttl_hours == 24
    assert settings.reload_argv is None


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KASIFY_BROKER_HOST", "broker.internal")
    monkeypatch.setenv("KASIFY_BROKER_PUBLIC_HOST", "mqtt.example.com")
    monkeypatch.setenv("KASIFY_MQTT_ENABLED", "false")
    monkeypatch.setenv("KASIFY_BROKER_RELOAD_COMMAND", "pkill -HUP -x mosquitto")
    monkeypatch.setenv("KASIFY_PUBLIC_URL", "https://cloud.example.com/")
    monkeypatch.setenv("KASIFY_DATABASE_URL", "postgresql+psycopg://kasify@db:5432/kasify")
    settings = load_settings()
    assert settings.advertised_broker == ("mqtt.example.com", 8883)
    assert settings.mqtt_enabled is False
    assert settings.reload_argv == ["pkill", "-HUP", "-x", "mosquitto"]
    assert settings.public_url == "https://cloud.example.com"
    assert settings.db_url == "postgresql+psycopg://kasify@db:5432/kasify"


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("KASIFY_BROKER_PORT", "70000", "KASIFY_BROKER_PORT: Input should be less than or equal"),
        ("KASIFY_BROKER_PORT", "eighty", "KASIFY_BROKER_PORT: Input should be a valid integer"),
        ("KASIFY_DATABASE_URL", "postgresql://x@y/z", "use one of sqlite, postgresql+psycopg"),
        ("KASIFY_DATABASE_URL", "not a url", "is not a database URL"),
        ("KASIFY_DATABASE_URL", "sqlite://", "needs a file path"),
        ("KASIFY_BROKER_RELOAD_COMMAND", "pkill 'unclosed", "check the quoting"),
        ("KASIFY_PUBLIC_URL", "cloud.example.com", "KASIFY_PUBLIC_URL: must be the API's base URL"),
        ("KASIFY_SYNC_HORIZON_DAYS", "0", "KASIFY_SYNC_HORIZON_DAYS: Input should be greater"),
        ("KASIFY_MQTT_ENABLED", "perhaps", "KASIFY_MQTT_ENABLED: Input should be a valid boolean"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, words: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert words in str(error.value)
    assert name in str(error.value)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_data_dir_creates_keys_once(tmp_path: Path, ca: CertificateAuthority) -> None:
    paths = init_data_dir(tmp_path / "data", ca)
    secrets = [paths.ca_dir / "ca.key", paths.signing_key, paths.mqtt_key]
    before = {p: p.read_bytes() for p in [*secrets, paths.ca_cert, paths.mqtt_cert, paths.crl]}
    assert all(_mode(p) == 0o600 for p in secrets)
    assert _mode(paths.ca_dir) == 0o700
    cert = x509.load_pem_x509_certificate(paths.mqtt_cert.read_bytes())
    assert cert.subject.rfc4514_string().startswith("CN=cloud")
    cert.verify_directly_issued_by(ca.cert)

    again = init_data_dir(tmp_path / "data", ca)
    assert {p: p.read_bytes() for p in before} == before
    keys = load_keys(again.root)
    assert bytes(keys.signing_key) == before[paths.signing_key]

    with pytest.raises(DataDirError, match="already holds a different CA"):
        init_data_dir(tmp_path / "data", CertificateAuthority.create("Other CA"))


def test_missing_keys_say_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match="run `kasify-cloud init`"):
        load_keys(tmp_path / "empty")


def test_cli_init_broker_config_and_create_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("KASIFY_DATA_DIR", str(data))
    monkeypatch.setenv("KASIFY_BROKER_PUBLIC_HOST", "mqtt.example.com")
    assert main(["init"]) == 0
    assert (data / "cloud.db").exists()
    assert (data / "signing.key").exists()
    assert main(["migrate"]) == 0

    out = tmp_path / "broker"
    assert main(["broker-config", "--out", str(out), "--port", "18883"]) == 0
    conf = (out / "mosquitto.conf").read_text()
    assert f"crlfile {(data / 'crl.pem').resolve()}" in conf
    assert "listener 18883 0.0.0.0" in conf
    server = x509.load_pem_x509_certificate((out / "server.crt").read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "mqtt.example.com" in names.get_values_for_type(x509.DNSName)
    printed = capsys.readouterr().out
    assert f"mosquitto -c {out.resolve() / 'mosquitto.conf'}" in printed

    monkeypatch.setattr("sys.stdin", _Lines("a-long-password\n"))
    assert main(["create-user", "--email", "Owner@Example.com", "--password-stdin"]) == 0
    assert "created user owner@example.com" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", _Lines("a-long-password\n"))
    assert main(["create-user", "--email", "owner@example.com", "--password-stdin"]) == 1
    assert "already exists" in capsys.readouterr().err


def test_cli_reports_bad_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KASIFY_BROKER_PORT", "0")
    assert main(["migrate"]) == 2
    assert "KASIFY_BROKER_PORT" in capsys.readouterr().err


def test_cli_serve_needs_an_initialised_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KASIFY_DATA_DIR", str(tmp_path / "nothing"))
    assert main(["serve", "--port", "1"]) == 2
    assert "run `kasify-cloud init`" in capsys.readouterr().err


class _Lines:
    def __init__(self, text: str) -> None:
        self._lines = text.splitlines(keepends=True)

    def readline(self) -> str:
        return self._lines.pop(0) if self._lines else ""
