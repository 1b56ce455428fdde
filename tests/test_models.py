"""Form validation rules and the mapping to awork's invitation body."""

from __future__ import annotations

from bot.domain.details import InviteDetails, parse_details


def test_email_is_required_and_checked():
    """No email, or a malformed one, is an error on the email field."""
    assert parse_details({})[1] == {"email": "Please fill this in."}
    assert parse_details({"email": "a@b"})[1] == {
        "email": "That doesn't look like an email address."
    }
    assert parse_details({"email": "x" * 250 + "@example.com"})[1]["email"]


def test_text_limits_are_field_errors():
    """Overlong names, title, position and note each get their own message."""
    _, errors = parse_details(
        {
            "email": "a@example.com",
            "firstName": "x" * 101,
            "position": "p" * 201,
            "note": "n" * 1001,
        }
    )
    assert errors == {
        "firstName": "Too long (at most 100 characters).",
        "position": "Too long (at most 200 characters).",
        "note": "Too long (at most 1000 characters).",
    }


def test_values_are_trimmed_and_empty_fields_ignored():
    """Whitespace is stripped; empty strings and lists count as not given."""
    details, errors = parse_details(
        {"email": " Ada@Example.COM ", "firstName": "  Ada ", "title": "", "teamIds": []}
    )
    assert (
        errors == {}
        and details.email == "Ada@example.com"
        and details.first_name == "Ada"
        and details.title is None
    )


def test_gender_and_flow_are_restricted():
    """Only male/female/other and the three flows are accepted."""
    assert "gender" in parse_details({"email": "a@example.com", "gender": "robot"})[1]
    assert (
        "invitationFlow"
        in parse_details({"email": "a@example.com", "invitationFlow": "sideways"})[1]
    )


def test_plan_and_flow_must_fit_the_workspace_choice():
    """planId or a new-workspace flow with this workspace, or 'invite' with a new one, are refused."""
    assert parse_details({"email": "a@example.com", "planId": "p"})[1] == {
        "planId": "A plan can only be chosen when creating a new workspace."
    }
    assert (
        "invitationFlow"
        in parse_details({"email": "a@example.com", "invitationFlow": "new_user_new_workspace"})[1]
    )
    assert (
        "invitationFlow"
        in parse_details(
            {"email": "a@example.com", "newWorkspace": True, "invitationFlow": "invite"}
        )[1]
    )


def test_booked_seats_must_be_a_positive_whole_number():
    """Zero, negative or fractional seats are refused."""
    for bad in ("0", "-1", "2.5", "many"):
        assert "bookedSeats" in parse_details({"email": "a@example.com", "bookedSeats": bad})[1]
    assert parse_details({"email": "a@example.com", "bookedSeats": "12"})[0].booked_seats == 12


def test_this_workspace_becomes_an_invite_into_it():
    """Default: workspaceId set, flow 'invite', no plan."""
    body = InviteDetails(email="a@example.com").to_invitation("W1").to_body()
    assert body == {
        "email": "a@example.com",
        "workspaceId": "W1",
        "invitationFlow": "invite",
        "skipSendingEmail": False,
    }


def test_new_workspace_leaves_workspace_id_unset():
    """A new workspace: no workspaceId, plan passed through, default new-user flow."""
    details = InviteDetails(email="a@example.com", new_workspace=True, plan_id="biz")
    body = details.to_invitation("W1").to_body()
    assert (
        "workspaceId" not in body
        and body["planId"] == "biz"
        and body["invitationFlow"] == "new_user_new_workspace"
    )
    assert details.uses_advanced() and not InviteDetails(email="a@example.com").uses_advanced()
