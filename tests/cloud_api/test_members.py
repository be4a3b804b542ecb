"""Invitations and members: who may invite whom, accepting, roles, leaving, the last owner."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from cloud_api.db import utcnow
from cloud_api.models import Invitation
from tests.cloud_api.conftest import Cloud
from tests.cloud_api.helpers import Host


async def test_invitation_lifecycle(alice: Host, carol: Host, bob: Host) -> None:
    prop = await alice.new_property()
    pid = prop["id"]
    created = await alice.post(
        f"/properties/{pid}/invitations", {"email": carol.email.upper(), "role": "crew"}
    )
    assert created.status_code == 201
    invitation = created.json()
    assert invitation["email"] == carol.email  # normalised
    assert invitation["status"] == "pending"
    assert invitation["acceptPath"] == f"/invitations/{invitation['token']}/accept"
    listed = (await alice.get(f"/properties/{pid}/invitations")).json()["invitations"]
    assert [i["id"] for i in listed] == [invitation["id"]]
    assert "token" not in listed[0]  # shown only once

    # Only the invited address may accept it.
    wrong = await bob.post(f"/invitations/{invitation['token']}/accept")
    assert wrong.status_code == 403
    assert carol.email in wrong.json()["detail"]
    unknown = await carol.post("/invitations/inv_nope/accept")
    assert unknown.status_code == 404

    joined = await carol.post(f"/invitations/{invitation['token']}/accept")
    assert joined.status_code == 200
    assert (joined.json()["id"], joined.json()["role"]) == (pid, "crew")
    again = await carol.post(f"/invitations/{invitation['token']}/accept")
    assert again.status_code == 409
    assert "accepted" in again.json()["detail"]
    members = (await alice.get(f"/properties/{pid}/members")).json()["members"]
    assert [(m["email"], m["role"]) for m in members] == [
        (alice.email, "owner"),
        (carol.email, "crew"),
    ]
    # Inviting a member again is refused with what to do instead.
    dup = await alice.post(f"/properties/{pid}/invitations", {"email": carol.email})
    assert dup.status_code == 409
    assert "PATCH" in dup.json()["detail"]


async def test_revoked_and_expired_invitations_cannot_be_accepted(
    alice: Host, carol: Host, cloud: Cloud
) -> None:
    prop = await alice.new_property()
    pid = prop["id"]
    first = (await alice.post(f"/properties/{pid}/invitations", {"email": carol.email})).json()
    revoked = await alice.delete(f"/properties/{pid}/invitations/{first['id']}")
    assert revoked.status_code == 204
    refused = await carol.post(f"/invitations/{first['token']}/accept")
    assert refused.status_code == 409
    assert "revoked" in refused.json()["detail"]

    second = (await alice.post(f"/properties/{pid}/invitations", {"email": carol.email})).json()
    with cloud.ctx.db.session() as session:
        session.execute(
            update(Invitation)
            .where(Invitation.id == second["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    expired = await carol.post(f"/invitations/{second['token']}/accept")
    assert expired.status_code == 409
    assert "expired" in expired.json()["detail"]
    statuses = {
        i["id"]: i["status"]
        for i in (await alice.get(f"/properties/{pid}/invitations")).json()["invitations"]
    }
    assert statuses == {first["id"]: "revoked", second["id"]: "expired"}


async def test_managers_manage_crew_and_contractors_only(
    alice: Host, erin: Host, carol: Host, dave: Host
) -> None:
    prop = await alice.new_property()
    pid = prop["id"]
    await alice.invite(pid, erin, "manager")
    # A manager invites crew and contractors, not managers or owners.
    senior = {"email": dave.email, "role": "manager"}
    assert (await erin.post(f"/properties/{pid}/invitations", senior)).status_code == 403
    await erin.invite(pid, carol, "crew")
    await erin.invite(pid, dave, "contractor")
    carol_id, alice_id = await carol.user_id(), await alice.user_id()
    changed = await erin.patch(f"/properties/{pid}/members/{carol_id}", {"role": "contractor"})
    assert changed.status_code == 200
    assert changed.json()["role"] == "contractor"
    promote = await erin.patch(f"/properties/{pid}/members/{carol_id}", {"role": "owner"})
    assert promote.status_code == 403
    assert "owner" in promote.json()["detail"]
    assert (await erin.delete(f"/properties/{pid}/members/{alice_id}")).status_code == 403
    assert (await erin.delete(f"/properties/{pid}/members/{carol_id}")).status_code == 204
    # Crew cannot manage members at all.
    assert (await dave.get(f"/properties/{pid}/invitations")).status_code == 403


async def test_the_last_owner_stays_and_anyone_may_leave(alice: Host, carol: Host) -> None:
    prop = await alice.new_property()
    pid = prop["id"]
    alice_id = await alice.user_id()
    alone = await alice.delete(f"/properties/{pid}/members/{alice_id}")
    assert alone.status_code == 409
    assert "must keep an owner" in alone.json()["detail"]
    demote = await alice.patch(f"/properties/{pid}/members/{alice_id}", {"role": "manager"})
    assert demote.status_code == 409
    await alice.invite(pid, carol, "crew")
    carol_id = await carol.user_id()
    assert (await carol.delete(f"/properties/{pid}/members/{carol_id}")).status_code == 204
    assert (await carol.get(f"/properties/{pid}")).status_code == 404


async def test_removing_a_member_revokes_their_codes_and_unassigns_tasks(
    alice: Host, erin: Host, carol: Host
) -> None:
    prop = await alice.new_property()
    pid = prop["id"]
    await alice.invite(pid, erin, "manager")
    await alice.invite(pid, carol, "crew")
    erin_id, carol_id = await erin.user_id(), await carol.user_id()
    permanent = await alice.post(f"/properties/{pid}/access-codes", {"holderUserId": erin_id})
    assert permanent.status_code == 201
    task = await alice.new_task(pid, assignedTo=carol_id)
    crew_code = task["accessCode"]
    assert crew_code["holderUserId"] == carol_id

    # Demoting a manager revokes their permanent code; removing crew revokes their crew code.
    demoted = await alice.patch(f"/properties/{pid}/members/{erin_id}", {"role": "crew"})
    assert demoted.status_code == 200
    code = (await alice.get(f"/access-codes/{permanent.json()['id']}")).json()
    assert code["status"] == "revoked"
    assert (await alice.delete(f"/properties/{pid}/members/{carol_id}")).status_code == 204
    assert (await alice.get(f"/access-codes/{crew_code['id']}")).json()["status"] == "revoked"
    after = (await alice.get(f"/tasks/{task['id']}")).json()
    assert after["assignedTo"] is None
    assert after["accessCode"] is None
    # Assigning the task again issues a new crew code with a new id.
    reassigned = await alice.patch(f"/tasks/{task['id']}", {"assignedTo": erin_id})
    assert reassigned.json()["accessCode"]["id"] != crew_code["id"]
