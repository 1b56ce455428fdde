"""What a Workflow Builder step run ("Invite to awork") is completed with: its outputs, or one
plain sentence saying why it failed (Workflow Builder shows it as it is: no mrkdwn). Pure."""

from __future__ import annotations

from typing import Any

from bot.domain.records import InviteRequest
from bot.i18n import _
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
    """Why a run's request ended without an invitation (in the current language)."""
    email = request.details.email
    if request.step_outcome() == "denied":
        if request.deny_reason:
            return _(
                "The request to invite {email} was denied: {reason}",
                email=email,
                reason=request.deny_reason,
            )
        return _("The request to invite {email} was denied: no reason", email=email)
    if request.step_outcome() == "expired":
        return _(
            "Nobody decided on the request to invite {email} in time; it expired.", email=email
        )
    failure = request.failure
    why = failure.said() if failure else _("awork did not invite them")
    if failure is not None and failure.retryable:
        return _(
            "awork did not invite {email}: {why} (an approver may still try again from the "
            "approval message)",
            email=email,
            why=why,
        )
    return _("awork did not invite {email}: {why}", email=email, why=why)


def invalid_inputs(errors: list[str]) -> str:
    return _("The step's inputs are not valid. {problems}", problems=" ".join(errors))


def refused(turned: Any) -> str:
    """An ask the bot turned away (the policy, an open request for the address)."""
    return turned_away(turned, plain=True, on_behalf=True)
