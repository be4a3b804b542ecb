"""Helpers for the cloud tests: an authenticated client and a simulated enrolling gateway."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from nacl.public import PrivateKey
from nacl.signing import VerifyKey

from cloud_api.pki import key_pem, write_public, write_secret
from sync_protocol.models import ClockStatus, CodeDelivery, ReportedState
from sync_protocol.mqtt import TlsFiles


@dataclass
class Host:
    """A logged-in API user."""

    client: httpx.AsyncClient
    token: str
    email: str

    @property
    def auth(self) -> dict[str, str]:
        """The Authorization header."""
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET as this user."""
        return await self.client.get(path, headers=self.auth, **kwargs)

    async def post(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        """POST as this user."""
        return await self.client.post(path, json=json, headers=self.auth, **kwargs)

    async def put(self, path: str, json: Any = None) -> httpx.Response:
        """PUT as this user."""
        return await self.client.put(path, json=json, headers=self.auth)

    async def patch(self, path: str, json: Any = None) -> httpx.Response:
        """PATCH as this user."""
        return await self.client.patch(path, json=json, headers=self.auth)

    async def delete(self, path: str) -> httpx.Response:
        """DELETE as this user."""
        return await self.client.delete(path, headers=self.auth)

    async def new_property(self, **fields: Any) -> dict[str, Any]:
        """Create a property (Europe/Madrid unless told otherwise)."""
        body = {"name": "Casa Azul", "timezone": "Europe/Madrid", **fields}
        response = await self.post("/properties", body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def new_booking(self, property_id: str, **fields: Any) -> dict[str, Any]:
        """Create a booking (2030-07-01 to 2030-07-05 unless told otherwise)."""
        body = {"guestName": "Marta Ruiz", "from": "2030-07-01", "to": "2030-07-05", **fields}
        response = await self.post(f"/properties/{property_id}/bookings", body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def new_gateway(self, property_id: str, name: str = "Hall Pi") -> dict[str, Any]:
        """Create a gateway; the result carries its enrollment token."""
        response = await self.post(f"/properties/{property_id}/gateways", {"name": name})
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def user_id(self) -> str:
        """This user's id."""
        account: dict[str, Any] = (await self.get("/account")).json()
        return str(account["id"])

    async def invite(self, property_id: str, member: Host, role: str) -> dict[str, Any]:
        """Invite `member` with a role and have them accept; returns the invitation."""
        response = await self.post(
            f"/properties/{property_id}/invitations", {"email": member.email, "role": role}
        )
        assert response.status_code == 201, response.text
        invitation: dict[str, Any] = response.json()
        accepted = await member.post(f"/invitations/{invitation['token']}/accept")
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["role"] == role
        return invitation

    async def new_task(self, property_id: str, **fields: Any) -> dict[str, Any]:
        """Create a task (a cleaning on 2030-07-05 11:00-14:00 local unless told otherwise)."""
        body = {
            "propertyId": property_id,
            "title": "Turnover clean",
            "startsAt": "2030-07-05T11:00",
            "endsAt": "2030-07-05T14:00",
            **fields,
        }
        response = await self.post("/tasks", body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def new_lock(
        self, property_id: str, gateway_id: str, kind: str = "relay", ref: str = "1"
    ) -> dict[str, Any]:
        """Add a smart lock on a gateway."""
        body = {"kind": kind, "deviceRef": ref, "name": f"{kind} {ref}", "gatewayId": gateway_id}
        response = await self.post(f"/properties/{property_id}/smartlocks", body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result


def make_csr(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, str]:
    """An EC P-256 key and a PEM CSR for it with the given CN."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA256())
    )
    return key, csr.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class FakeAgent:
    """The agent side of enrollment: a TLS key, a seal key, and what enrollment returned."""

    gateway_id: str
    tls_key: ec.EllipticCurvePrivateKey
    csr: str
    seal_key: PrivateKey = field(default_factory=PrivateKey.generate)
    enrolled: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_gateway(cls, gateway_id: str) -> FakeAgent:
        """A fresh agent whose CSR carries the gateway id."""
        key, csr = make_csr(gateway_id)
        return cls(gateway_id, key, csr)

    def enroll_body(self, token: str) -> dict[str, str]:
        """The JSON an agent posts to /gateways/enroll."""
        return {
            "token": token,
            "csr": self.csr,
            "sealPublicKey": base64.b64encode(bytes(self.seal_key.public_key)).decode(),
            "agentVersion": "0.1.0-test",
        }

    @property
    def verify_keys(self) -> list[VerifyKey]:
        """The cloud keys pinned at enrollment."""
        return [VerifyKey(base64.b64decode(k)) for k in self.enrolled["verifyKeys"]]

    def tls_files(self, directory: Path) -> TlsFiles:
        """Write the enrolled certificate, key and CA for an MQTT session."""
        directory.mkdir(parents=True, exist_ok=True)
        write_secret(directory / "gw.key", key_pem(self.tls_key))
        write_public(directory / "gw.crt", self.enrolled["certificate"].encode())
        write_public(directory / "ca.crt", self.enrolled["caCertificate"].encode())
        return TlsFiles(
            ca=directory / "ca.crt", cert=directory / "gw.crt", key=directory / "gw.key"
        )


@dataclass
class Site:
    """A property with an enrolled gateway and one lock."""

    property: dict[str, Any]
    gateway_id: str
    lock: dict[str, Any]
    agent: FakeAgent

    @property
    def id(self) -> str:
        """The property id."""
        return str(self.property["id"])


async def new_site(host: Host, kind: str = "relay", **fields: Any) -> Site:
    """A property (with `fields`), an enrolled gateway and a lock of `kind`."""
    prop = await host.new_property(**fields)
    agent = await enroll(host.client, await host.new_gateway(prop["id"]))
    lock = await host.new_lock(
        prop["id"], agent.gateway_id, kind, "5A1B2C" if kind == "nuki" else "1"
    )
    return Site(prop, agent.gateway_id, lock, agent)


def reported(gateway_id: str, **fields: Any) -> bytes:
    """A ReportedState body from a gateway."""
    body = ReportedState(
        gateway_id=gateway_id,
        applied_version=fields.pop("applied_version", 1),
        agent_version="0.1.0-test",
        uptime_s=1.0,
        reported_at=fields.pop("reported_at", datetime.now(UTC)),
        clock=ClockStatus(synchronized=True, trusted=True),
        outbox_depth=0,
        **fields,
    )
    return body.model_dump_json().encode()


def delivery(code_id: str, lock_id: str, state: str, error: str | None = None) -> CodeDelivery:
    """A per-code per-lock delivery report."""
    return CodeDelivery(code_id=code_id, lock_id=lock_id, state=state, error=error)


async def enroll(client: httpx.AsyncClient, gateway: dict[str, Any]) -> FakeAgent:
    """Enroll a fake agent for a gateway just created."""
    agent = FakeAgent.for_gateway(gateway["id"])
    response = await client.post(
        "/gateways/enroll", json=agent.enroll_body(gateway["enrollmentToken"])
    )
    assert response.status_code == 201, response.text
    agent.enrolled = response.json()
    return agent
