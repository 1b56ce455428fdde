"""Block Kit for one request's approval message in the admin channel: who is asked for, the
approval rule, and the outcome as it stands (with its buttons). Pure functions from domain models
to Slack dicts; a batch's message (bot/ui/bulk_blocks.py) is built from the same pieces.

Every piece of user text goes through `escape` (bot/ui/mrkdwn.py) before it is put into mrkdwn.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.domain.records import ApprovalRule, InviteRequest, Status
from bot.ui.forms import flow_words, plan_words
from bot.ui.mrkdwn import (
    TEXT_MAX,
    approved_by,
    context,
    counted,
    escape,
    pieces,
    plain,
    policy_note,
    section,
    sections,
    shortened,
    slack_date,
)

STEP_NOTE = (
    ":zap: Asked from a workflow (the Workflow Builder step “Invite to awork”); "
    "the workflow goes on once this is decided"
)
APPROVE = "approve_invite"
DENY = "deny_invite"
RETRY = "retry_invite"

TEAMS_SHOWN = 20  # team names listed on a message; the rest are counted


def _summary(request: InviteRequest) -> list[str]:
    d = request.details
    lines = [f"*Who:* {escape(d.full_name) + ' · ' if d.full_name else ''}{escape(d.email)}"]
    extra = " · ".join(escape(x) for x in (d.title, d.position, d.gender) if x)
    if extra:
        lines.append(f"*Details:* {extra}")
    lines.append(f"*Role:* {escape(request.role_name) if request.role_name else 'awork default'}")
    if request.team_names:
        lines.append("*Teams:* " + shortened(request.team_names, TEAMS_SHOWN))
    if d.skip_sending_email:
        lines.append("*Welcome email:* not sent")
    if d.new_workspace:
        parts = [f"flow “{flow_words(d.flow)}”", f"plan {plan_words(d.plan_id)}"]
        if d.booked_seats:
            parts.append(counted(d.booked_seats, "seat"))
        if d.connect_invite_code:
            parts.append("with a connect invite code")
        lines.append("*New workspace:* " + ", ".join(parts))
    elif d.booked_seats or d.connect_invite_code:
        parts = [counted(d.booked_seats, "booked seat")] if d.booked_seats else []
        if d.connect_invite_code:
            parts.append("with a connect invite code")
        lines.append("*Options:* " + ", ".join(parts))
    return lines


def approval_message(request: InviteRequest) -> tuple[str, list[dict[str, Any]]]:
    """The admin-channel message for a request, in whatever state it is in."""
    d = request.details
    text = f"Invitation request for {escape(d.email)} from <@{request.requester_id}>"
    blocks = [
        section(f"*<@{request.requester_id}> asks to invite {escape(d.email)} to awork*"),
        *sections(_summary(request)),  # split, never cut: its last lines are decided on
    ]
    if d.note:
        quoted = [
            "> " + piece
            for line in d.note.split("\n")
            for piece in pieces(escape(line), TEXT_MAX - 2)
        ]
        blocks += sections(quoted)
    blocks.append(context(f"Request `{request.id}` · asked {slack_date(request.created_at)}"))
    policy = policy_note(request)
    if policy:
        blocks.append(context(policy))
    if request.step is not None:
        blocks.append(context(STEP_NOTE))
    outcome = _outcome_blocks(request)
    note = approval_rule_note(request)
    if note and request.status is not Status.PENDING:  # pending: the note is in the outcome
        outcome.insert(1, context(note))
    return text, blocks + outcome


def approval_rule_note(record: Any) -> str | None:
    """How the admin-role rule applies to a request or a batch, as `bot.approval` decided it:
    two approvals, or one alone because no other approver could decide. None for an ordinary
    role, and once a request was denied or expired."""
    status = str(record.status)
    if record.approvals_needed < 2 or status in ("denied", "expired"):
        return None
    given = [f"<@{user}>" for user in record.approvals]
    if status == "pending":
        if not given:
            return (
                ":busts_in_silhouette: Admin role: two approvals are needed (0 of 2), "
                "or one when no other approver can decide"
            )
        return (
            f":busts_in_silhouette: Admin role: a second approval is needed "
            f"({len(given)} of 2 approvals) — {' and '.join(given)} approved, "
            "waiting for one more approver"
        )
    rule = record.approval_rule
    if rule is ApprovalRule.TWO:
        return (
            f":busts_in_silhouette: Admin role: approved by {' and '.join(given)} (two approvals)"
        )
    why = {
        ApprovalRule.ALONE_REQUESTER: "no other approver can decide "
        "(the requester cannot approve their own request)",
        ApprovalRule.ALONE_NO_OTHER: "there is no other approver",
    }.get(rule)
    if why is None or not given:
        return None
    return f":busts_in_silhouette: Admin role: approved by {given[0]} alone, because {why}"


def _outcome_blocks(request: InviteRequest) -> list[dict[str, Any]]:
    who = approved_by(request)
    if request.status is Status.PENDING:
        buttons = action_buttons(request, (APPROVE, "Approve", "primary"), (DENY, "Deny", "danger"))
        note = approval_rule_note(request)
        return [context(note), buttons] if note else [buttons]
    if request.status is Status.INVITING:
        if request.unsure_since is not None:
            return [context(f":hourglass_flowing_sand: Approved by {who}. {SLOW_AWORK}")]
        return [context(f":hourglass_flowing_sand: Approved by {who}, inviting in awork…")]
    if request.status in (Status.INVITED, Status.JOINING, Status.JOINED, Status.LAPSED):
        line = f":white_check_mark: *Approved by {who}* — invitation sent to {workspace_name(request)}. "
        result = [section(line + link_whereabouts(request))]
        if request.status is Status.JOINED:
            invitee = (
                f"<@{request.invitee_slack_id}>"
                if request.invitee_slack_id
                else escape(request.details.email)
            )
            result.append(
                section(
                    f":tada: *{invitee} joined* {slack_date(request.joined_at or request.updated_at)}"
                )
            )
        elif request.status is Status.LAPSED:
            result.append(
                section(
                    f":hourglass: *The invitation lapsed*: {escape(request.lapse_reason or '')}"
                )
            )
        return result
    if request.status is Status.DENIED:
        denier = f"<@{request.decided_by}>" if request.decided_by else "an approver"
        return [section(f":no_entry: *Denied by {denier}*: {escape(request.deny_reason or '')}")]
    if request.status is Status.EXPIRED:
        return [
            section(":hourglass: *Expired*: nobody decided in time. The requester can ask again.")
        ]
    failure = request.failure
    blocks = [
        section(
            f":warning: *Approved by {who}, but {failed_how(failure)}*: {escape(failure.message if failure else '')}"
        )
    ]
    if failure and failure.retryable:
        blocks.append(action_buttons(request, (RETRY, "Try again", "primary")))
    return blocks


def failed_how(failure: Any) -> str:
    """How an approved invitation failed: awork refused it, or - worth a retry: awork did not
    answer, or its answers were lost and it has nobody - it did not go through."""
    return "the invitation did not go through" if failure and failure.retryable else "awork refused"


def link_whereabouts(request: InviteRequest, reader: str | None = None) -> str:
    """Where the way to accept went - said without the link itself; to `reader` (who reads
    it, when that is one person) as "you" where it went to them."""
    if request.link_sent_to and request.link_sent_to == request.invitee_slack_id:
        if request.link_sent_to == reader:
            return "You were asked by DM to accept it."
        return f"<@{request.link_sent_to}> was asked by DM to accept it."
    if request.link_sent_to == reader and reader:
        return "I sent you its acceptance link by DM, to pass on privately."
    if request.link_sent_to:
        return f"The acceptance link went by DM to <@{request.link_sent_to}>."
    email = (
        "awork's own email was skipped"
        if request.awork_email_skipped
        else "awork's own email carries the link"
    )
    if request.result is not None and request.result.invitation_code is None:
        # Found in awork after its answer was lost: the code never reached the bot.
        return answer_lost(request.awork_email_skipped)
    if request.invitee_slack_id:  # their DM only: retried, never sent to anyone else
        invitee = f"<@{request.invitee_slack_id}>"
        if request.status is not Status.INVITED:
            return f"The DM asking {invitee} to accept was never delivered; {email}."
        if request.link_overdue_at is None:
            return f"The DM asking {invitee} to accept has not been delivered yet; it is retried."
        expires = request.result.expires_at if request.result else None
        return undelivered_link(invitee, expires, request.awork_email_skipped)
    return f"The acceptance link could not be sent by DM; {email}."


# While an invitation whose answer was lost is being settled (bot/domain/settling.py).
SLOW_AWORK = (
    "awork is slow to answer; checking whether the invitation went through before "
    "anything is sent again…"
)


def answer_lost(email_skipped: bool, count: int | None = None) -> str:
    """Invitations found in awork after their answer was lost: invited, but without the
    code, so without an acceptance link - what to do instead: a request's (`count` None), or
    `count` of a batch's invitees. No link in it."""
    if count is None:
        lost, it = "Invited, but awork's answer was lost, so there is no acceptance link", "it"
    else:
        people = "1 person" if count == 1 else f"{count} people"
        lost = f"awork's answer was lost for {people}, so there is no acceptance link"
        it = "it" if count == 1 else "them"
    if email_skipped:
        return (
            f"{lost}, and awork's own email was skipped: ask an awork admin to resend "
            f"{'the invitation' if it == 'it' else 'the invitations'} from awork's user list."
        )
    return f"{lost}: awork's own email carries {it}."


def undelivered_link(invitees: str, expires: datetime | None, email_skipped: bool) -> str:
    """For approvers (and the requester): a DM to invitees in Slack is overdue. No link in it."""
    until = f" ({slack_date(expires)})" if expires else ""
    also = (
        "Nothing else carries it: awork's own email was skipped."
        if email_skipped
        else "awork's own email carries the link as well."
    )
    return (
        f":warning: The acceptance link could not be delivered to {invitees}: Slack did not "
        f"let the bot DM them. Ask them to open a direct message with the bot (Apps → the "
        f"bot → Messages) and to allow messages from apps; the bot keeps trying until the "
        f"invitation ends{until}. {also} If it runs out, the requester can invite them again."
    )


def workspace_name(request: InviteRequest) -> str:
    """The workspace the invitation is into, by its name when awork gave one."""
    result = request.result
    name = result.workspace.name if result and result.workspace and result.workspace.name else None
    return escape(name) if name else "awork"


def action_buttons(request: Any, *buttons: tuple[str, str, str]) -> dict[str, Any]:
    """A row of buttons (action id, label, style), each carrying the request's (or batch's) id."""
    return {
        "type": "actions",
        "block_id": f"decide-{request.id}",
        "elements": [
            {
                "type": "button",
                "action_id": action_id,
                "text": plain(label),
                "style": style,
                "value": request.id,
            }
            for action_id, label, style in buttons
        ],
    }
