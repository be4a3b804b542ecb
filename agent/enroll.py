"""`kasify-agent enroll`: create keys, get a client certificate, pin the cloud's verify keys."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from nacl.public import PrivateKey

from agent import __version__
from agent.identity import Identity, ensure_pin_key, write_file
from sync_protocol.errors import ProtocolError
from sync_protocol.topics import check_gateway_id

ENROLL_TIMEOUT_S = 30.0  # the cloud signs a certificate; generous for a slow uplink


class EnrollError(Exception):
    """Enrollment failed; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class EnrollRequest:
    """What the agent sends to `POST /gateways/enroll`."""

    token: str
    csr_pem: str
    seal_public_key: str

    def json(self) -> dict[str, str]:
        """The request body."""
        return {
            "token": self.token,
            "csr": self.csr_pem,
            "sealPublicKey": self.seal_public_key,
            "agentVersion": __version__,
        }


def gateway_id_from_token(token: str) -> str:
    """Enrollment tokens are `<gateway id>.<secret>`; the id becomes our certificate's CN."""
    gateway_id, dot, secret = token.strip().partition(".")
    if not dot or not secret:
        raise EnrollError(
            "this is not a Kasify enrollment token (expected <gateway id>.<secret>); copy it "
            "again from the dashboard or the API response"
        )
    try:
        return check_gateway_id(gateway_id)
    except ProtocolError as exc:
        raise EnrollError(f"this is not a Kasify enrollment token: {exc.detail}") from None


def _csr(key: ec.EllipticCurvePrivateKey, gateway_id: str) -> str:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, gateway_id)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, str) else json.dumps(detail)[:300]


def enroll(
    cloud_url: str,
    token: str,
    state_dir: Path,
    *,
    force: bool = False,
    transport: httpx.BaseTransport | None = None,
) -> Identity:
    """Enroll this gateway with the cloud and store the result under `state_dir`."""
    if (state_dir / "gateway.json").exists() and not force:
        raise EnrollError(
            f"{state_dir} is already enrolled; pass --force to replace that enrollment"
        )
    gateway_id = gateway_id_from_token(token)
    tls_key = ec.generate_private_key(ec.SECP256R1())
    seal_key = PrivateKey.generate()
    request = EnrollRequest(
        token=token.strip(),
        csr_pem=_csr(tls_key, gateway_id),
        seal_public_key=base64.b64encode(bytes(seal_key.public_key)).decode(),
    )
    url = cloud_url.rstrip("/") + "/gateways/enroll"
    try:
        with httpx.Client(timeout=ENROLL_TIMEOUT_S, transport=transport) as client:
            response = client.post(url, json=request.json())
    except httpx.HTTPError as exc:
        raise EnrollError(f"cannot reach the cloud at {url}: {exc}") from exc
    if response.status_code == 401:
        raise EnrollError(f"the cloud refused the token: {_detail(response)}")
    if response.status_code != 201:
        raise EnrollError(f"enrollment failed ({response.status_code}): {_detail(response)}")
    try:
        body: dict[str, Any] = response.json()
        certificate = x509.load_pem_x509_certificate(body["certificate"].encode())
        x509.load_pem_x509_certificate(body["caCertificate"].encode())
        verify_keys = [str(k) for k in body["verifyKeys"]]
        if not verify_keys or any(len(base64.b64decode(k)) != 32 for k in verify_keys):
            raise ValueError("verifyKeys must be base64 Ed25519 keys")
        if certificate.public_key() != tls_key.public_key():
            raise ValueError("the certificate is not for the key we sent")
        info = {
            "gateway_id": str(body["gatewayId"]),
            "property_id": str(body["propertyId"]),
            "broker": {"host": str(body["broker"]["host"]), "port": int(body["broker"]["port"])},
            "cloud_url": cloud_url.rstrip("/"),
            "enrolled_at": datetime.now(UTC).isoformat(),
        }
        if info["gateway_id"] != gateway_id:
            raise ValueError(f"the cloud answered for gateway {info['gateway_id']}")
    except (KeyError, TypeError, ValueError) as exc:
        raise EnrollError(f"the cloud's enrollment answer is unusable: {exc}") from exc

    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tls_pem = tls_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_file(state_dir / "tls" / "client.key", tls_pem, secret=True)
    write_file(state_dir / "tls" / "client.crt", body["certificate"].encode(), secret=False)
    write_file(state_dir / "tls" / "ca.crt", body["caCertificate"].encode(), secret=False)
    write_file(state_dir / "seal.key", bytes(seal_key), secret=True)
    write_file(state_dir / "verify_keys.json", json.dumps(verify_keys).encode(), secret=False)
    ensure_pin_key(state_dir)
    # gateway.json last: its presence means the enrollment is complete.
    write_file(state_dir / "gateway.json", json.dumps(info, indent=2).encode(), secret=False)
    return Identity.load(state_dir)
