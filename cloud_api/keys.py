"""The cloud's key material in its data directory: CA, signing key, MQTT identity, CRL."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from nacl.signing import SigningKey

from cloud_api.pki import (
    CertificateAuthority,
    Revoked,
    cert_pem,
    key_pem,
    write_public,
    write_secret,
)
from sync_protocol.mqtt import TlsFiles
from sync_protocol.topics import CLOUD_USERNAME

SIGNING_SEED_BYTES = 32


class DataDirError(RuntimeError):
    """The data directory is missing keys or holds keys that do not belong together."""


@dataclass(frozen=True, slots=True)
class DataDir:
    """Where each file of the cloud's key material lives."""

    root: Path

    @property
    def ca_dir(self) -> Path:
        """Directory of `ca.key` (0600) and `ca.crt`."""
        return self.root / "ca"

    @property
    def ca_cert(self) -> Path:
        """The CA certificate, handed to agents and brokers."""
        return self.ca_dir / "ca.crt"

    @property
    def signing_key(self) -> Path:
        """The Ed25519 seed that signs desired states and commands (0600)."""
        return self.root / "signing.key"

    @property
    def mqtt_key(self) -> Path:
        """The cloud's MQTT client key (0600)."""
        return self.root / "mqtt" / "cloud.key"

    @property
    def mqtt_cert(self) -> Path:
        """The cloud's MQTT client certificate (CN "cloud")."""
        return self.root / "mqtt" / "cloud.crt"

    @property
    def crl(self) -> Path:
        """The certificate revocation list the broker reads."""
        return self.root / "crl.pem"

    def mqtt_tls(self) -> TlsFiles:
        """The files the cloud presents to the broker."""
        return TlsFiles(ca=self.ca_cert, cert=self.mqtt_cert, key=self.mqtt_key)


def _same_ca(a: CertificateAuthority, b: CertificateAuthority) -> bool:
    return a.cert.public_bytes(serialization.Encoding.DER) == b.cert.public_bytes(
        serialization.Encoding.DER
    )


def init_data_dir(data_dir: Path, ca: CertificateAuthority | None = None) -> DataDir:
    """Create whatever key material is missing; never overwrite an existing key."""
    paths = DataDir(data_dir.resolve())
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.ca_dir.mkdir(exist_ok=True)
    os.chmod(paths.ca_dir, 0o700)
    if (paths.ca_dir / "ca.key").exists():
        stored = load_ca(paths)
        if ca is not None and not _same_ca(stored, ca):
            raise DataDirError(
                f"{paths.ca_dir} already holds a different CA; use another data directory "
                "or remove it deliberately (every enrolled gateway would have to re-enroll)"
            )
        ca = stored
    else:
        ca = ca or CertificateAuthority.create()
        ca.save(paths.ca_dir)
    if not paths.signing_key.exists():
        write_secret(paths.signing_key, bytes(SigningKey.generate()))
    if not (paths.mqtt_key.exists() and paths.mqtt_cert.exists()):
        key, cert = ca.issue_client(CLOUD_USERNAME)
        write_secret(paths.mqtt_key, key_pem(key))
        write_public(paths.mqtt_cert, cert_pem(cert))
    if not paths.crl.exists():
        write_public(paths.crl, ca.crl(()))
    return paths


def _require(path: Path) -> None:
    if not path.exists():
        raise DataDirError(f"{path} is missing: run `kasify-cloud init` with this KASIFY_DATA_DIR")


def load_ca(paths: DataDir) -> CertificateAuthority:
    """The CA stored in the data directory."""
    _require(paths.ca_dir / "ca.key")
    _require(paths.ca_cert)
    return CertificateAuthority.load(paths.ca_dir)


def load_signing_key(paths: DataDir) -> SigningKey:
    """The Ed25519 signing key stored in the data directory."""
    _require(paths.signing_key)
    seed = paths.signing_key.read_bytes()
    if len(seed) != SIGNING_SEED_BYTES:
        raise DataDirError(
            f"{paths.signing_key} holds {len(seed)} bytes; an Ed25519 seed is {SIGNING_SEED_BYTES}"
        )
    return SigningKey(seed)


def verify_key_b64(key: SigningKey) -> str:
    """The base64 of the raw 32-byte verify key, as agents pin it."""
    return base64.b64encode(bytes(key.verify_key)).decode()


@dataclass(frozen=True, slots=True)
class CloudKeys:
    """The loaded key material."""

    paths: DataDir
    ca: CertificateAuthority
    signing_key: SigningKey

    @property
    def ca_pem(self) -> str:
        """The CA certificate in PEM."""
        return cert_pem(self.ca.cert).decode()


def load_keys(data_dir: Path) -> CloudKeys:
    """Load everything the running cloud needs; raise DataDirError saying what is missing."""
    paths = DataDir(data_dir.resolve())
    ca = load_ca(paths)
    signing_key = load_signing_key(paths)
    _require(paths.mqtt_key)
    _require(paths.mqtt_cert)
    issuer = x509.load_pem_x509_certificate(paths.mqtt_cert.read_bytes()).issuer
    if issuer != ca.cert.subject:
        raise DataDirError(f"{paths.mqtt_cert} was not issued by the CA in {paths.ca_dir}")
    return CloudKeys(paths, ca, signing_key)


def write_crl(keys: CloudKeys, revoked: Iterable[Revoked]) -> None:
    """Sign a fresh CRL listing `revoked` and store it where the broker reads it."""
    write_public(keys.paths.crl, keys.ca.crl(revoked))
