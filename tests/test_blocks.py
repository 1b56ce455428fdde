"""Block Kit builders are pure functions: checked on their output, no mocks."""

from __future__ import annotations

import json

from bot.domain.awork_models import InvitationResult, Role, Team
from bot.domain.details import InviteDetails
from bot.domain.records import Failure, InviteRequest, Status
from bot.ui import approval, forms, mrkdwn, notices


def request(**changes) -> InviteRequest:
    base = InviteRequest(
        id="inv-1",
        requester_id="UREQ",
        details=InviteDetails(email="ada@example.com", first_name="Ada"),
    )
    return base.model_copy(update=changes)


def test_escape_neutralises_mrkdwn_controls():
    """&, < and > are escaped, in that order, so entities are not double-broken."""
    assert mrkdwn.escape("<!channel> & <@U1|x>") == "&lt;!channel&gt; &amp; &lt;@U1|x&gt;"
    assert mrkdwn.escape("Zoë Ünal") == "Zoë Ünal"


def test_form_fields_reads_every_element_kind():
    """State of text, number, selects, multi-select, checkboxes and radios becomes field values."""
    values = {
        "email": {"email": {"type": "plain_text_input", "value": "a@example.com"}},
        "gender": {"gender": {"type": "static_select", "selected_option": {"value": "female"}}},
        "roleId": {"roleId": {"type": "external_select", "selected_option": None}},
        "teamIds": {
            "teamIds": {
                "type": "multi_external_select",
                "selected_options": [{"value": "t1"}, {"value": "t2"}],
            }
        },
        "skipSendingEmail": {
            "skipSendingEmail": {"type": "checkboxes", "selected_options": [{"value": "true"}]}
        },
        "workspaceId": {
            "workspaceId": {"type": "radio_buttons", "selected_option": {"value": "new"}}
        },
        "bookedSeats": {"bookedSeats": {"type": "number_input", "value": "4"}},
        "odd": {"other_action": {"type": "plain_text_input", "value": "ignored"}},
    }
    assert forms.form_fields(values) == {
        "email": "a@example.com",
        "gender": "female",
        "roleId": None,
        "teamIds": ["t1", "t2"],
        "skipSendingEmail": True,
        "newWorkspace": True,
        "bookedSeats": "4",
    }


def test_pending_message_has_the_two_buttons():
    """A pending request shows Approve and Deny carrying its id."""
    _, message = approval.approval_message(request())
    actions = [b for b in message if b["type"] == "actions"]
    assert [(e["action_id"], e["value"], e["style"]) for e in actions[0]["elements"]] == [
        ("approve_invite", "inv-1", "primary"),
        ("deny_invite", "inv-1", "danger"),
    ]


def test_decided_messages_have_no_buttons_and_name_the_decider():
    """Invited and denied messages drop the buttons and say who decided."""
    invited = request(
        status=Status.INVITED,
        decided_by="UAPP",
        link_sent_to="UADA",
        result=InvitationResult.model_validate({"invitationCode": "SECRET"}),
    )
    denied = request(status=Status.DENIED, decided_by="UAPP", deny_reason="<no>")
    for req in (invited, denied):
        _, message = approval.approval_message(req)
        assert "actions" not in {b["type"] for b in message}
        assert "<@UAPP>" in json.dumps(message)
    assert "SECRET" not in json.dumps(approval.approval_message(invited))
    assert "&lt;no&gt;" in json.dumps(approval.approval_message(denied))


def test_retryable_failure_offers_try_again_only_then():
    """Only a failure that may pass (awork down) gets a 'Try again' button."""
    retryable = request(
        status=Status.FAILED, failure=Failure(code="timeout", message="down", retryable=True)
    )
    final = request(
        status=Status.FAILED, failure=Failure(code="already-exist-error", message="member")
    )
    assert "retry_invite" in json.dumps(approval.approval_message(retryable))
    assert "retry_invite" not in json.dumps(approval.approval_message(final))


def test_options_are_labelled_and_bounded():
    """Role options mark the admin role; labels are cut to Slack's 75 characters."""
    roles = [Role(id="r1", name="Admin", is_admin_role=True), Role(id="r2", name="x" * 200)]
    options = forms.role_options(roles)
    assert options[0] == {
        "text": {"type": "plain_text", "text": "Admin (admin)", "emoji": True},
        "value": "r1",
    }
    assert len(options[1]["text"]["text"]) == 75
    assert forms.team_options([Team(id="t", name="Design")])[0]["value"] == "t"


def test_outcome_notice_never_holds_the_link():
    """What the requester sees in the channel says where the link went, not the link."""
    invited = request(
        status=Status.INVITED,
        decided_by="UAPP",
        link_sent_to="UADA",
        result=InvitationResult.model_validate({"invitationCode": "SECRET"}),
    )
    text = notices.outcome_notice(invited)
    assert "SECRET" not in text and "<@UADA>" in text


def test_link_message_says_when_it_expires():
    """The requester's DM with the link gives the 24-hour expiry as a Slack date."""
    invited = request(
        status=Status.INVITED, result=InvitationResult.model_validate({"invitationCode": "C"})
    )
    text = notices.link_message(invited, "https://x/accept?c=C")
    assert "<!date^" in text and "https://x/accept?c=C" in text
    expires = int(invited.result.expires_at.timestamp())
    assert expires - int(invited.result.issued_at.timestamp()) == 24 * 3600 and str(expires) in text


def test_invitee_dm_has_accept_and_no_code():
    """The invitee's DM carries an Accept button with the request id, never the code."""
    invited = request(
        status=Status.INVITED,
        role_name="PM",
        team_names=["Design"],
        result=InvitationResult.model_validate({"invitationCode": "SECRETCODE"}),
    )
    text, dm = notices.invitee_dm(invited)
    assert "SECRETCODE" not in json.dumps(dm) + text
    button = dm[-1]["elements"][0]
    assert (button["action_id"], button["value"]) == ("accept_invite", "inv-1")
    assert "PM" in json.dumps(dm) and "Design" in json.dumps(dm)


def test_undelivered_link_is_said_plainly():
    """If no DM could carry the link, the requester and the message say so."""
    invited = request(
        status=Status.INVITED,
        decided_by="UAPP",
        result=InvitationResult.model_validate({"invitationCode": "C"}),
    )
    assert "acceptance link could not be sent by DM" in notices.outcome_notice(invited)
    assert "could not be sent by DM" in json.dumps(approval.approval_message(invited))


def test_recovered_invitation_says_how_the_invitee_gets_in():
    """No code (found in awork after its answer was lost): invited, its answer lost - never
    "a restart" - and awork's email carries the link, or a resend if it was skipped."""
    recovered = request(status=Status.INVITED, decided_by="UAPP", result=InvitationResult())
    told = notices.outcome_notice(recovered)
    assert "Invited, but awork's answer was lost" in told
    assert "awork's own email carries it" in told and "restart" not in told
    skipped = recovered.model_copy(update={"awork_email_skipped": True})
    message = json.dumps(approval.approval_message(skipped))
    assert "resend the invitation from awork" in message and "restart" not in message
