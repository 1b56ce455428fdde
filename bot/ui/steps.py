"""What a Workflow Builder step run ("Invite to awork") is completed with: its outputs, or one
plain sentence saying why it failed (Workflow Builder shows it as it is: no mrkdwn). Pure."""

from __future__ import annotations

from typing import Any

from bot.domain.records import InviteRequest
from bot.ui.answers import turned_away


def invited_outputs(request: InviteRequest) -> dict[str, Any]:
    """Outputs of a run whose request was invited: its id, the awork user, the invitee."""
    outputs: dict[str, Any] = {"request_id": request.id, "status": "invited"}
    if request.result is not None and request.result.user_id:
        outputs["awork_user_id"] = request.result.user_id
    if request.invitee_slack_id:
        outputs["invitee"] = request.invitee_slack_id
    return outputs


def member_outputs(existing: Any) -> dict[str, Any]:
    """Outputs of a run for an address already in awork (`existing`: our request that
    invited it, if one did)."""
    outputs: dict[str, Any] = {"status": "already_member"}
    if isinstance(existing, InviteRequest) and not already_member(existing):
        outputs["request_id"] = existing.id
        if existing.result is not None and existing.result.user_id:
            outputs["awork_user_id"] = existing.result.user_id
        if existing.invitee_slack_id:
            outputs["invitee"] = existing.invitee_slack_id
    return outputs


def already_member(request: InviteRequest) -> bool:
    """awork refused the invitation because the address is in the workspace already."""
    return request.failure is not None and request.failure.code == "already-exist-error"


def step_error(request: InviteRequest) -> str:
    """Why a run's request ended without an invitation."""
    email = request.details.email
    if request.step_outcome() == "denied":
        return f"The request to invite {email} was denied: {request.deny_reason or 'no reason'}"
    if request.step_outcome() == "expired":
        return f"Nobody decided on the request to invite {email} in time; it expired."
    failure = request.failure
    why = failure.message if failure else "awork did not invite them"
    later = (
        " (an approver may still try again from the approval message)"
        if (failure is not None and failure.retryable)
        else ""
    )
    return f"awork did not invite {email}: {why}{later}"


def invalid_inputs(errors: list[str]) -> str:
    return "The step's inputs are not valid. " + " ".join(errors)


def refused(turned: Any) -> str:
    """An ask the bot turned away (the policy, an open request for the address)."""
    return turned_away(turned, plain=True, on_behalf=True)
