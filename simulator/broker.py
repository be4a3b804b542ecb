"""Run a private Mosquitto with a generated configuration, for tests, benchmarks and the demo."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cloud_api.broker_config import BrokerFiles, write_broker_config
from cloud_api.pki import (
    CertificateAuthority,
    Revoked,
    cert_pem,
    key_pem,
    write_public,
    write_secret,
)
from sync_protocol.mqtt import TlsFiles

START_TIMEOUT_S = 10.0  # mosquitto listens within milliseconds; seconds only on a loaded machine
STOP_TIMEOUT_S = 5.0
PORT_ATTEMPTS = 5  # a free port can be taken by someone else before mosquitto binds it

MOSQUITTO_MISSING = (
    "mosquitto is not installed. Run `make test` or `make demo` (they install it), "
    "or install it yourself: `sudo apt-get install mosquitto`."
)


class BrokerError(RuntimeError):
    """The broker could not be started."""


def find_mosquitto() -> str:
    """The mosquitto binary (Debian keeps it in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise BrokerError(MOSQUITTO_MISSING)
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def listening(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


@dataclass
class RunningBroker:
    """A Mosquitto process and what a client needs to reach it."""

    host: str
    port: int
    ca: CertificateAuthority
    files: BrokerFiles
    process: subprocess.Popen[bytes]
    log_path: Path

    def client_tls(self, cn: str, directory: Path) -> TlsFiles:
        """Issue a client certificate with this CN into `directory`."""
        key, cert = self.ca.issue_client(cn)
        directory.mkdir(parents=True, exist_ok=True)
        write_secret(directory / f"{cn}.key", key_pem(key))
        write_public(directory / f"{cn}.crt", cert_pem(cert))
        return TlsFiles(
            ca=self.files.directory / "ca.crt",
            cert=directory / f"{cn}.crt",
            key=directory / f"{cn}.key",
        )

    def revoke(self, revoked: tuple[Revoked, ...]) -> None:
        """Publish a new CRL and make the broker reload it."""
        write_public(self.files.crl, self.ca.crl(revoked))
        self.process.send_signal(signal.SIGHUP)

    def log(self) -> str:
        """What the broker wrote to stderr so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Stop the broker and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_broker(
    directory: Path,
    ca: CertificateAuthority,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    persistence: bool = False,
) -> RunningBroker:
    """Write a configuration under `directory` and start Mosquitto on it."""
    binary = find_mosquitto()
    attempts = 1 if port is not None else PORT_ATTEMPTS
    last_error = ""
    for _ in range(attempts):
        chosen = port if port is not None else free_port(host)
        files = write_broker_config(
            directory,
            ca,
            host=host,
            port=chosen,
            server_names=(host, "localhost"),
            persistence=persistence,
        )
        log_path = directory / "mosquitto.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [binary, "-c", str(files.conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if listening(host, chosen):
                return RunningBroker(host, chosen, ca, files, process, log_path)
            time.sleep(0.02)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        last_error = log_path.read_text(errors="replace").strip()[-2000:]
    raise BrokerError(f"mosquitto did not start on {host}: {last_error or 'no output'}")
