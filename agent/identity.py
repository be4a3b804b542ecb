"""The gateway's enrolled identity under the state directory: certificates, keys, cloud verify keys.

Layout (secret files are 0600, the directory 0700):
    gateway.json        gateway id, property id, broker address, cloud URL
    tls/ca.crt          the cloud CA (trust anchor for the broker)
    tls/client.crt      our client certificate (CN = gateway id)
    tls/client.key      secret: our TLS key
    seal.key            secret: X25519 key the cloud seals PINs to
    pin.key             secret: HMAC key for the PIN MACs in the code cache
    verify_keys.json    the cloud's Ed25519 verify keys, pinned at enrollment
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from nacl.public import PrivateKey
from nacl.signing import VerifyKey

from sync_protocol.mqtt import TlsFiles

PIN_KEY_BYTES = 32


class NotEnrolled(Exception):
    """The state directory holds no complete enrollment."""


def write_file(path: Path, data: bytes, *, secret: bool) -> None:
    """Write atomically; secret files are created 0600 and never exist with wider permissions."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class Identity:
    """Everything the agent needs to talk to its broker and trust its cloud."""

    state_dir: Path
    gateway_id: str
    property_id: str
    broker_host: str
    broker_port: int
    cloud_url: str
    verify_keys: tuple[VerifyKey, ...]
    seal_key: PrivateKey
    pin_key: bytes

    @property
    def tls(self) -> TlsFiles:
        """Mutual-TLS files for the broker."""
        tls = self.state_dir / "tls"
        return TlsFiles(ca=tls / "ca.crt", cert=tls / "client.crt", key=tls / "client.key")

    @classmethod
    def load(cls, state_dir: Path) -> Identity:
        """Read the enrollment; raise NotEnrolled saying what is missing and how to fix it."""
        fix = "run `kasify-agent enroll --cloud URL --token TOKEN` first"
        needed = [
            "gateway.json",
            "tls/ca.crt",
            "tls/client.crt",
            "tls/client.key",
            "seal.key",
            "pin.key",
            "verify_keys.json",
        ]
        missing = [name for name in needed if not (state_dir / name).is_file()]
        if missing:
            raise NotEnrolled(f"{state_dir} has no {', '.join(missing)}: {fix}")
        try:
            info = json.loads((state_dir / "gateway.json").read_text())
            keys = json.loads((state_dir / "verify_keys.json").read_text())
            return cls(
                state_dir=state_dir,
                gateway_id=str(info["gateway_id"]),
                property_id=str(info["property_id"]),
                broker_host=str(info["broker"]["host"]),
                broker_port=int(info["broker"]["port"]),
                cloud_url=str(info["cloud_url"]),
                verify_keys=tuple(VerifyKey(base64.b64decode(k)) for k in keys),
                seal_key=PrivateKey((state_dir / "seal.key").read_bytes()),
                pin_key=(state_dir / "pin.key").read_bytes(),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise NotEnrolled(f"{state_dir} holds a damaged enrollment ({exc}): {fix}") from exc


def ensure_pin_key(state_dir: Path) -> bytes:
    """The HMAC key for PIN MACs, created once per gateway."""
    path = state_dir / "pin.key"
    if not path.exists():
        write_file(path, secrets.token_bytes(PIN_KEY_BYTES), secret=True)
    return path.read_bytes()
