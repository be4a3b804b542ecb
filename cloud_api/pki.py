"""The cloud's small certificate authority: broker server cert, client certs from CSRs, the CRL."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = dt.timedelta(days=3650)
SERVER_VALIDITY = dt.timedelta(days=825)
CLIENT_VALIDITY = dt.timedelta(days=825)
CRL_VALIDITY = dt.timedelta(days=30)  # the CRL is re-issued on every revocation and at start-up
CLOCK_SKEW = dt.timedelta(minutes=5)  # certificates start a little in the past for slow clocks


class CsrRejected(ValueError):
    """A certificate signing request we will not sign; the message says why."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Kasify Edge"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def new_key() -> ec.EllipticCurvePrivateKey:
    """A P-256 key, understood by every MQTT broker's TLS stack."""
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM of a private key."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    """PEM of a certificate."""
    return cert.public_bytes(serialization.Encoding.PEM)


def write_secret(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_public(path: Path, data: bytes) -> None:
    """Write a non-secret file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def common_name(cert_or_csr: x509.Certificate | x509.CertificateSigningRequest) -> str:
    """The subject CN, or an empty string."""
    attrs = cert_or_csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = attrs[0].value if attrs else ""
    return value if isinstance(value, str) else value.decode()


@dataclass(frozen=True, slots=True)
class Revoked:
    """A revoked certificate serial and when it was revoked."""

    serial: int
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """A CA key and its self-signed certificate."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, name: str = "Kasify Edge CA") -> CertificateAuthority:
        """A new CA."""
        key = new_key()
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        """Load `ca.key` and `ca.crt` from a directory."""
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{directory / 'ca.key'} is not an EC key")
        cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
        return cls(key, cert)

    def save(self, directory: Path) -> None:
        """Store the key (0600) and certificate."""
        write_secret(directory / "ca.key", key_pem(self.key))
        write_public(directory / "ca.crt", cert_pem(self.cert))

    def _leaf(
        self,
        subject: x509.Name,
        public_key: ec.EllipticCurvePublicKey,
        usage: x509.ObjectIdentifier,
        validity: dt.timedelta,
        san: x509.SubjectAlternativeName | None = None,
    ) -> x509.Certificate:
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + validity)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def issue_server(
        self, hosts: Iterable[str]
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """A broker certificate valid for the given host names and IP addresses."""
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        key = new_key()
        first = next(iter(hosts), "broker")
        cert = self._leaf(
            _name(first),
            key.public_key(),
            ExtendedKeyUsageOID.SERVER_AUTH,
            SERVER_VALIDITY,
            x509.SubjectAlternativeName(names),
        )
        return key, cert

    def issue_client(self, cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """A client certificate for a key generated here (the cloud's own MQTT identity)."""
        key = new_key()
        return key, self._leaf(
            _name(cn), key.public_key(), ExtendedKeyUsageOID.CLIENT_AUTH, CLIENT_VALIDITY
        )

    def sign_csr(self, csr_pem: bytes, expected_cn: str) -> x509.Certificate:
        """Sign a gateway's CSR after checking its proof of possession, key type and CN."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError as exc:
            raise CsrRejected(f"not a PEM certificate signing request: {exc}") from None
        if not csr.is_signature_valid:
            raise CsrRejected("the CSR's signature does not match its public key")
        public_key = csr.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
            public_key.curve, ec.SECP256R1
        ):
            raise CsrRejected("the CSR must carry an EC P-256 public key")
        cn = common_name(csr)
        if cn != expected_cn:
            raise CsrRejected(f"the CSR's CN is {cn!r}; it must be the gateway id {expected_cn!r}")
        return self._leaf(_name(cn), public_key, ExtendedKeyUsageOID.CLIENT_AUTH, CLIENT_VALIDITY)

    def crl(self, revoked: Iterable[Revoked]) -> bytes:
        """A freshly signed CRL (PEM) listing the revoked serials."""
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(now - CLOCK_SKEW)
            .next_update(now + CRL_VALIDITY)
            .add_extension(x509.CRLNumber(int(now.timestamp() * 1000)), critical=False)
        )
        for item in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(item.serial)
                .revocation_date(item.at)
                .build()
            )
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
