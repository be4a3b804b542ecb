"""The team page: members and roles, inviting by link, joining with it, removing a member."""

from __future__ import annotations

import re

from tests.cloud_api.conftest import Cloud
from tests.dashboard.support import Browser, People, new_site, unlabelled_fields

LINK = re.compile(r'<code id="invitation-link">[^<]*(/app/invitations/[A-Za-z0-9_-]+)</code>')


async def test_an_owner_invites_crew_who_join_with_the_link_and_can_be_removed(
    people: People, cloud: Cloud
) -> None:
    alice = await people.new("alice")  # owner
    carol = await people.new("carol")
    bob = await people.new("bob")
    site = await new_site(alice.api, "Casa Team")
    team = f"/app/properties/{site.property_id}/team"
    prop_page = f"/app/properties/{site.property_id}"

    assert f'href="{team}"' in await alice.browser.page(prop_page)
    page = await alice.browser.page(team)
    assert unlabelled_fields(page) == []
    assert alice.email in page
    assert "(you)" in page

    wrong = await alice.browser.post(
        f"{team}/invitations", {"email": "carol at home", "role": "crew"}
    )
    assert wrong.status_code == 422
    assert "Enter the email address they log in with" in wrong.text

    await alice.browser.page(team)
    made = await alice.browser.post(f"{team}/invitations", {"email": carol.email, "role": "crew"})
    assert made.status_code == 200
    assert "This link is shown only now." in made.text
    found = LINK.search(made.text)
    assert found is not None
    link = found.group(1)
    assert carol.email in await alice.browser.page(team)  # waiting to join

    # Someone else with the link cannot use it; a visitor is asked to log in first.
    assert "This invitation is for" in await bob.browser.page(link)
    assert (await bob.browser.post(link, {})).status_code == 403
    async with Browser(cloud.app) as visitor:
        to_login = await visitor.get(link)
        assert to_login.status_code == 303
        assert to_login.headers["location"] == f"/login?next={link}"

    assert (await carol.browser.get(prop_page)).status_code == 404
    invited = await carol.browser.page(link)
    assert "You are invited to join Casa Team as crew." in invited
    joined = await carol.browser.post(link, {})
    assert "You joined Casa Team as crew." in await carol.browser.follow(joined)
    assert (await carol.browser.get(prop_page)).status_code == 200
    again = await carol.browser.get(link)
    assert again.status_code == 409  # used once
    assert "accepted" in again.text

    # Crew see the team but cannot invite.
    crew_view = await carol.browser.page(team)
    assert alice.email in crew_view
    assert "Create invitation" not in crew_view
    refused = await carol.browser.post(f"{team}/invitations", {"email": bob.email, "role": "crew"})
    assert refused.status_code == 403

    # Removing asks first; then the member is gone.
    members = (await alice.api.get(f"/properties/{site.property_id}/members")).json()["members"]
    carol_id = next(m["userId"] for m in members if m["email"] == carol.email)
    await alice.browser.page(team)
    asked = await alice.browser.post(f"{team}/members/{carol_id}/remove", {})
    assert "Remove this member?" in asked.text
    removed = await alice.browser.post(f"{team}/members/{carol_id}/remove", {"confirm": "yes"})
    assert "Member removed." in await alice.browser.follow(removed)
    assert (await carol.browser.get(prop_page)).status_code == 404


async def test_a_withdrawn_invitation_link_no_longer_works(people: People) -> None:
    alice = await people.new("alice")
    dave = await people.new("dave")
    site = await new_site(alice.api, "Casa Retirada")
    team = f"/app/properties/{site.property_id}/team"
    await alice.browser.page(team)
    made = await alice.browser.post(f"{team}/invitations", {"email": dave.email, "role": "manager"})
    found = LINK.search(made.text)
    assert found is not None
    invitations = (await alice.api.get(f"/properties/{site.property_id}/invitations")).json()
    [pending] = invitations["invitations"]
    await alice.browser.page(team)
    withdrawn = await alice.browser.post(f"{team}/invitations/{pending['id']}/revoke", {})
    assert "Invitation withdrawn." in await alice.browser.follow(withdrawn)
    gone = await dave.browser.get(found.group(1))
    assert gone.status_code == 409
    assert "This invitation is revoked" in gone.text
