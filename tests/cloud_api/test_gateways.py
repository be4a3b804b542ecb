"""Gateways: one-time enrollment, deletion onto the CRL, and smart locks."""

from __future__ import annotations

import base64
from datetime import timedelta

import httpx
from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy import update

from cloud_api.db import utcnow
from cloud_api.models import Gateway
from tests.cloud_api.conftest import PUBLIC_URL, Cloud
from tests.cloud_api.helpers import FakeAgent, Host, enroll, make_csr


async def test_create_gateway_returns_token_and_enroll_command(alice: Host) -> None:
    prop = await alice.new_property()
    gateway = await alice.new_gateway(prop["id"])
    token = gateway["enrollmentToken"]
    assert token.startswith(gateway["id"] + ".")
    assert gateway["enrollCommand"] == f"kasify-agent enroll --cloud {PUBLIC_URL} --token {token}"
    assert gateway["status"] == "awaiting_enrollment"
    assert gateway["desiredVersion"] == 0
    fetched = (await alice.get(f"/gateways/{gateway['id']}")).json()
    assert "enrollmentToken" not in fetched
    listed = (await alice.get(f"/properties/{prop['id']}/gateways")).json()["gateways"]
    assert [g["id"] for g in listed] == [gateway["id"]]


async def test_enrollment_signs_the_csr_and_pins_the_cloud_keys(
    alice: Host, client: httpx.AsyncClient, cloud: Cloud
) -> None:
    prop = await alice.new_property()
    gateway = await alice.new_gateway(prop["id"])
    agent = await enroll(client, gateway)
    body = agent.enrolled
    assert body["gatewayId"] == gateway["id"]
    assert body["propertyId"] == prop["id"]
    cert = x509.load_pem_x509_certificate(body["certificate"].encode())
    ca = x509.load_pem_x509_certificate(body["caCertificate"].encode())
    cert.verify_directly_issued_by(ca)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == gateway["id"]
    assert body["broker"] == {"host": "127.0.0.1", "port": 8883}
    assert [base64.b64decode(k) for k in body["verifyKeys"]] == [
        bytes(cloud.ctx.keys.signing_key.verify_key)
    ]
    after = (await alice.get(f"/gateways/{gateway['id']}")).json()
    assert after["status"] == "enrolled"
    assert after["agentVersion"] == "0.1.0-test"
    with cloud.ctx.db.session() as session:
        row = session.get(Gateway, gateway["id"])
        assert row is not None
        assert row.cert_serial == format(cert.serial_number, "x")
        assert row.seal_public_key == agent.enroll_body("")["sealPublicKey"]
        assert row.desired_dirty  # the first desired state is due


async def test_enrollment_token_is_one_time(alice: Host, client: httpx.AsyncClient) -> None:
    gateway = await alice.new_gateway((await alice.new_property())["id"])
    await enroll(client, gateway)
    again = FakeAgent.for_gateway(gateway["id"]).enroll_body(gateway["enrollmentToken"])
    response = await client.post("/gateways/enroll", json=again)
    assert response.status_code == 401
    assert "already used" in response.json()["detail"]


async def test_expired_and_unknown_tokens_are_401(
    alice: Host, client: httpx.AsyncClient, cloud: Cloud
) -> None:
    gateway = await alice.new_gateway((await alice.new_property())["id"])
    with cloud.ctx.db.session() as session:
        session.execute(
            update(Gateway)
            .where(Gateway.id == gateway["id"])
            .values(enrollment_expires_at=utcnow() - timedelta(minutes=1))
        )
        session.commit()
    agent = FakeAgent.for_gateway(gateway["id"])
    expired = await client.post(
        "/gateways/enroll", json=agent.enroll_body(gateway["enrollmentToken"])
    )
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]
    assert (await alice.get(f"/gateways/{gateway['id']}")).json()["status"] == "enrollment_expired"

    wrong_secret = gateway["enrollmentToken"][:-4] + "AAAA"
    unknown = await client.post("/gateways/enroll", json=agent.enroll_body(wrong_secret))
    assert unknown.status_code == 401
    assert "unknown enrollment token" in unknown.json()["detail"]
    malformed = await client.post("/gateways/enroll", json=agent.enroll_body("no-dot-here"))
    assert malformed.status_code == 401
    assert "malformed" in malformed.json()["detail"]


async def test_bad_csr_or_key_is_422_and_keeps_the_token(
    alice: Host, client: httpx.AsyncClient
) -> None:
    gateway = await alice.new_gateway((await alice.new_property())["id"])
    token = gateway["enrollmentToken"]
    agent = FakeAgent.for_gateway(gateway["id"])

    _, other_cn = make_csr("someone-else")
    mismatch = await client.post(
        "/gateways/enroll", json={**agent.enroll_body(token), "csr": other_cn}
    )
    assert mismatch.status_code == 422
    assert mismatch.json()["errors"] == [
        {
            "field": "csr",
            "message": "the CSR's CN is 'someone-else'; it must be the gateway id "
            f"'{gateway['id']}'",
        }
    ]
    garbage = await client.post(
        "/gateways/enroll", json={**agent.enroll_body(token), "csr": "-----BEGIN nonsense"}
    )
    assert garbage.status_code == 422
    assert "not a PEM certificate signing request" in garbage.json()["detail"]
    short_key = base64.b64encode(b"\x01" * 31).decode()
    bad_key = await client.post(
        "/gateways/enroll", json={**agent.enroll_body(token), "sealPublicKey": short_key}
    )
    assert bad_key.status_code == 422
    assert bad_key.json()["errors"][0]["field"] == "sealPublicKey"
    assert "32-byte" in bad_key.json()["detail"]

    good = await client.post("/gateways/enroll", json=agent.enroll_body(token))
    assert good.status_code == 201


async def test_delete_revokes_the_certificate_in_the_crl(
    alice: Host, client: httpx.AsyncClient, cloud: Cloud
) -> None:
    prop = await alice.new_property()
    gateway = await alice.new_gateway(prop["id"])
    agent = await enroll(client, gateway)
    serial = x509.load_pem_x509_certificate(agent.enrolled["certificate"].encode()).serial_number
    lock = await alice.post(
        f"/properties/{prop['id']}/smartlocks",
        {"kind": "nuki", "deviceRef": "1A2B3C", "name": "Front", "gatewayId": gateway["id"]},
    )
    assert lock.status_code == 201

    assert (await alice.delete(f"/gateways/{gateway['id']}")).status_code == 204
    crl = x509.load_pem_x509_crl(cloud.ctx.keys.paths.crl.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert crl.is_signature_valid(cloud.ctx.keys.ca.key.public_key())
    assert (await alice.get(f"/gateways/{gateway['id']}")).status_code == 404
    assert (await alice.get(f"/properties/{prop['id']}/gateways")).json()["gateways"] == []
    # Its locks went with it.
    assert (await alice.get(f"/properties/{prop['id']}/smartlocks")).json()["smartlocks"] == []
    # Its token cannot enroll anything any more.
    late = FakeAgent.for_gateway(gateway["id"]).enroll_body(gateway["enrollmentToken"])
    assert (await client.post("/gateways/enroll", json=late)).status_code == 401


async def test_smartlocks_need_a_gateway_of_the_same_property(alice: Host) -> None:
    prop = await alice.new_property()
    other = await alice.new_property(name="Other")
    gateway = await alice.new_gateway(prop["id"])
    foreign = await alice.new_gateway(other["id"])
    body = {"kind": "unifi", "deviceRef": "door-7", "name": "Gate", "gatewayId": gateway["id"]}

    created = await alice.post(f"/properties/{prop['id']}/smartlocks", body)
    assert created.status_code == 201
    lock = created.json()
    assert {k: lock[k] for k in ("kind", "deviceRef", "name", "gatewayId", "propertyId")} == {
        **{k: body[k] for k in ("kind", "deviceRef", "name", "gatewayId")},
        "propertyId": prop["id"],
    }
    duplicate = await alice.post(f"/properties/{prop['id']}/smartlocks", body)
    assert duplicate.status_code == 409

    wrong = await alice.post(
        f"/properties/{prop['id']}/smartlocks", {**body, "gatewayId": foreign["id"]}
    )
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "gatewayId"
    bad_kind = await alice.post(f"/properties/{prop['id']}/smartlocks", {**body, "kind": "lever"})
    assert bad_kind.status_code == 422
    assert bad_kind.json()["errors"][0]["field"] == "kind"
    listed = (await alice.get(f"/properties/{prop['id']}/smartlocks")).json()["smartlocks"]
    assert listed == [lock]
