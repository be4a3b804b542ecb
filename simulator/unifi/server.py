"""Run the emulated controller: HTTPS + WSS with a fresh self-signed certificate, and its control.

`UnifiEmulator` is what tests start in-process (`async with UnifiEmulator() as emu:`) and what
`kasify-sim unifi serve` runs. Its certificate is generated at every start (SAN 127.0.0.1 and
localhost), like a console's self-generated one, so its fingerprint differs each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from cloud_api.pki import cert_pem, key_pem, new_key, write_secret
from simulator.unifi.app import HELLO_INTERVAL_S, UnifiApp
from simulator.unifi.controller import Controller

CERT_VALIDITY = dt.timedelta(days=3650)  # consoles generate long-lived certificates
START_TIMEOUT_S = 10.0


def self_signed(common_name: str = "UniFi Access Emulator") -> tuple[bytes, bytes, str]:
    """A new self-signed certificate: (cert PEM, key PEM, SHA-256 fingerprint)."""
    key = new_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ubiquiti Inc. (emulated)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()  # over the DER form, as clients do
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
    return cert_pem(cert), key_pem(key), fingerprint


class _Server(uvicorn.Server):
    """uvicorn without its process-wide signal handlers (we run inside someone's loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class UnifiEmulator:
    """A controller served over HTTPS/WSS on 127.0.0.1."""

    def __init__(
        self,
        *,
        doors: int = 2,
        port: int = 0,
        host: str = "127.0.0.1",
        token: str | None = None,
        unlock_s: float = 5.0,
        hello_interval_s: float = HELLO_INTERVAL_S,
        controller: Controller | None = None,
        state_dir: Path | None = None,
    ) -> None:
        self.controller = controller or Controller(doors, unlock_s=unlock_s, token=token)
        self.state_dir = state_dir
        if state_dir is not None and (state_dir / "controller.json").exists():
            self.controller.restore(json.loads((state_dir / "controller.json").read_text()))
        self.app = UnifiApp(self.controller, hello_interval_s=hello_interval_s)
        self.host = host
        self.port = port
        self.fingerprint = ""
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    def _certificate(self) -> tuple[Path, Path]:
        """A fresh certificate in a temporary directory, or the one kept in the state dir."""
        if self.state_dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="kasify-unifi-")
            where = Path(self._dir.name)
        else:
            where = self.state_dir
            where.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = where / "cert.pem", where / "key.pem"
        if self.state_dir is not None and cert_path.exists() and key_path.exists():
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            digest = cert.fingerprint(hashes.SHA256()).hex().upper()
            self.fingerprint = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
        else:
            cert_bytes, key, self.fingerprint = self_signed()
            cert_path.write_bytes(cert_bytes)
            write_secret(key_path, key)
        if self.state_dir is not None:
            identity = json.dumps(self.controller.identity(), indent=2).encode()
            write_secret(self.state_dir / "controller.json", identity)
        return cert_path, key_path

    @property
    def url(self) -> str:
        """Base URL (what `kasify-agent unifi trust` takes)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def token(self) -> str:
        """The full-scope API token."""
        return self.controller.token

    async def start(self) -> None:
        """Generate (or, with a state directory, reuse) a certificate, bind and serve."""
        cert_path, key_path = self._certificate()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and
        # without it every answer waits ~40 ms for Nagle and the peer's delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            ssl_certfile=str(cert_path),
            ssl_keyfile=str(key_path),
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",
            timeout_graceful_shutdown=1,
            access_log=False,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="unifi-emulator")
        async with asyncio.timeout(START_TIMEOUT_S):
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Drop every connection and stop serving."""
        self.app.drop_websockets()
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._task
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    async def __aenter__(self) -> UnifiEmulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def info(self) -> dict[str, Any]:
        """URL, token and fingerprint, as `serve` prints them."""
        return {
            "url": self.url,
            "token": self.token,
            "fingerprint": self.fingerprint,
            "doors": [
                {"number": i, "id": d.id, "name": d.name, "hub_id": d.hub_id}
                for i, d in enumerate(self.controller.doors.values(), start=1)
            ],
        }
