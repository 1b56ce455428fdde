"""Form validation rules, the mapping to awork's invitation body, and the stored format."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from bot.domain.batches import InviteBatch
from bot.domain.details import InviteDetails, parse_details
from bot.domain.records import InviteRequest


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


# A request and a batch as stored before they shared a base (every field, as written then).
OLD_REQUEST = """{"id": "inv-0123456789ab", "status": "invited", "version": 7,
 "created_at": "2024-05-01T09:30:00Z", "updated_at": "2024-05-01T09:30:00Z",
 "requester_id": "UREQ", "origin_channel": "CGEN",
 "details": {"email": "ada@example.com", "first_name": "Ada", "last_name": null, "title": null,
  "position": null, "gender": null, "role_id": null, "team_ids": [], "skip_sending_email": false,
  "note": null, "new_workspace": false, "plan_id": null, "invitation_flow": null,
  "booked_seats": null, "connect_invite_code": null},
 "role_name": "Admin", "role_is_admin": true, "team_names": ["Design"],
 "approvals": ["UA", "UB"], "approvals_needed": 2, "approval_rule": "two",
 "approval_message": {"channel": "CADM", "ts": "1.2"}, "decided_by": "UB",
 "decided_at": "2024-05-01T09:30:00Z", "deny_reason": null, "attempts": 1,
 "claimed_by": "host:1:ab", "claimed_at": "2024-05-01T09:30:00Z",
 "claim_until": "2024-05-01T09:30:00Z", "claim_id": "c1",
 "invite_started_at": "2024-05-01T09:30:00Z", "uncertain": false, "result": null,
 "failure": null, "shown_status": "inviting", "waiting_told": true, "outcome_told": false,
 "link_attempted": false, "link_sent_to": null, "link_overdue_at": null,
 "invitee_slack_id": "UADA", "awork_email_skipped": false, "joined_at": null,
 "followed_at": null, "lapse_reason": null, "reinvited_as": null, "reinvite_of": null,
 "messages": [{"channel": "CADM", "ts": "1.2", "kind": "approval", "at": "2024-05-01T09:30:00Z"}],
 "reminded_at": "2024-05-01T09:30:00Z", "reminder_posted": true, "reminder_told": true,
 "delivery_failures": 2, "next_delivery_at": "2024-05-01T09:30:00Z", "lease_owner": "x",
 "lease_until": "2024-05-01T09:30:00Z", "batch_id": null, "batch_run": 0}"""
OLD_BATCH = """{"id": "bat-0123456789ab", "status": "done", "version": 3,
 "created_at": "2024-05-01T09:30:00Z", "updated_at": "2024-05-01T09:30:00Z",
 "requester_id": "UREQ", "origin_channel": "CGEN",
 "entries": [{"email": "a@x.com", "first_name": null, "last_name": null, "title": null,
  "position": null, "gender": null, "role_id": null, "team_ids": [], "skip_sending_email": false,
  "note": null, "new_workspace": false, "plan_id": null, "invitation_flow": null,
  "booked_seats": null, "connect_invite_code": null}],
 "skipped": [{"email": "b@x.com", "reason": "member", "request_id": null}],
 "role_name": "PM", "role_is_admin": false, "team_names": ["Design"], "approvals": ["UA"],
 "approvals_needed": 1, "approval_rule": "one",
 "approval_message": {"channel": "CADM", "ts": "1.3"}, "decided_by": "UA",
 "decided_at": "2024-05-01T09:30:00Z", "deny_reason": null, "run": 2, "retrying": 1,
 "claimed_by": "h", "claimed_at": "2024-05-01T09:30:00Z", "claim_until": "2024-05-01T09:30:00Z",
 "claim_id": "c2", "finished_at": "2024-05-01T09:30:00Z", "shown_status": "done",
 "shown_run": 2, "waiting_told": true, "outcome_told": true, "links_listed": true,
 "link_news": 1, "shown_link_news": 1, "reminded_at": null, "reminder_posted": false,
 "reminder_told": false, "messages": [], "delivery_failures": 0, "next_delivery_at": null,
 "lease_owner": null, "lease_until": null}"""


# Fields added since, each with the value a document stored before them loads with.
POLICY_ADDED = {"policy_rule": None, "route": None, "route_channel": None, "route_approvers": []}
ADDED = {
    InviteRequest: {
        "unsure_since": None,
        "unsure_checks": 0,
        "resent": False,
        "unsure_told": False,
        "step": None,
        "invitee_unknown": False,
        **POLICY_ADDED,
    },
    InviteBatch: {"unsure": 0, "failed": 0, **POLICY_ADDED},
}


def test_stored_requests_and_batches_load_and_are_stored_again_unchanged():
    """A document stored before requests and batches shared a base loads, and is written back
    with the same fields and values (and the fields added since, at their defaults): the
    store's format did not change."""
    for model, old in ((InviteRequest, OLD_REQUEST), (InviteBatch, OLD_BATCH)):
        document = json.loads(old)
        assert model.model_validate(document).model_dump(mode="json") == {
            **document,
            **ADDED[model],
        }


def test_a_status_of_the_other_kind_is_refused():
    """The shared base keeps each kind's own states: a batch state is no request state."""
    with pytest.raises(ValidationError):
        InviteRequest.model_validate({**json.loads(OLD_REQUEST), "status": "running"})
    with pytest.raises(ValidationError):
        InviteBatch.model_validate({**json.loads(OLD_BATCH), "shown_status": "invited"})
