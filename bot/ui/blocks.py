"""Block Kit for one request: its approval message, the notices and DMs that tell people about
it, and the answers to clicks. Pure functions from domain models to Slack dicts.

Every piece of user text goes through `escape` (bot/ui/mrkdwn.py) before it is put into mrkdwn.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.domain.records import ApprovalRule, InviteRequest, Status
from bot.ui.forms import flow_words, plan_words
from bot.ui.mrkdwn import (
    TEXT_MAX,
    approved_by,
    asked_in,
    context,
    counted,
    escape,
    people,
    pieces,
    plain,
    section,
    sections,
    shortened,
    slack_date,
)

NOT_FOUND_TEXT = "I can't find that invitation request any more."
# The slash command's documented name; the texts name the one actually installed
# (`/awork-invite` where Slack keeps `/invite`), passed in as `command`.
DEFAULT_COMMAND = "/invite"
APPROVE = "approve_invite"
DENY = "deny_invite"
RETRY = "retry_invite"
ACCEPT = "accept_invite"
INVITE_AGAIN = "invite_again"

TEAMS_SHOWN = 20  # team names listed on a message; the rest are counted
DEFAULT_ROLE = "awork's default role"  # no role chosen: awork gives its default


# --- the approval message ------------------------------------------------------------------


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
        return [context(f":hourglass_flowing_sand: Approved by {who}, inviting in awork…")]
    if request.status in (Status.INVITED, Status.JOINING, Status.JOINED, Status.LAPSED):
        line = (
            f":white_check_mark: *Approved by {who}* — invitation sent to {_workspace(request)}. "
        )
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
            f":warning: *Approved by {who}, but awork refused*: {escape(failure.message if failure else '')}"
        )
    ]
    if failure and failure.retryable:
        blocks.append(action_buttons(request, (RETRY, "Try again", "primary")))
    return blocks


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
        # Found in awork after a crash or an unclear answer: the code never reached the bot.
        if request.awork_email_skipped:
            return "Its code was lost in a restart and awork's email was skipped: resend the invitation from awork's user list."
        return "awork's own email carries the acceptance link."
    if request.invitee_slack_id:  # their DM only: retried, never sent to anyone else
        invitee = f"<@{request.invitee_slack_id}>"
        if request.status is not Status.INVITED:
            return f"The DM asking {invitee} to accept was never delivered; {email}."
        if request.link_overdue_at is None:
            return f"The DM asking {invitee} to accept has not been delivered yet; it is retried."
        expires = request.result.expires_at if request.result else None
        return undelivered_link(invitee, expires, request.awork_email_skipped)
    return f"The acceptance link could not be sent by DM; {email}."


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


def _workspace(request: InviteRequest) -> str:
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


# --- telling people ------------------------------------------------------------------------


def help_text(command: str = DEFAULT_COMMAND) -> str:
    """`/invite help`, naming the command as installed."""
    return (
        f"*{command}* opens the form; `{command} bulk` opens the form for many people (a list "
        "or a CSV file, up to 500).\n"
        f"*Without a form:* `{command} ada@example.com` asks for one person; "
        f'`{command} a@x.com b@y.com role:"Project Manager" team:Design team:Engineering '
        "--no-email` asks for several at once, with a role and teams by name (any case; the "
        "start of a name is enough when it is unique) and without awork's welcome email. One "
        "per line as `email, first name, last name` works too.\n"
        f"*Lists:* `{command} pending [page]` (approvers: requests waiting for you), "
        f"`{command} mine [page]` (your requests), `{command} status <request id>`, "
        f"`{command} help`."
    )


def usage(command: str = DEFAULT_COMMAND) -> str:
    """The one-line reminder under a command's error."""
    return (
        f'Usage: `{command} a@x.com b@y.com role:"Project Manager" team:Design --no-email` '
        f"(`{command} help` for more)."
    )


def reminder(request: InviteRequest) -> str:
    """Posted in the approval message's thread when a request waits too long."""
    return (
        f":bell: Still waiting for a decision: <@{request.requester_id}> asked to invite "
        f"{escape(request.details.email)} {slack_date(request.created_at)}."
    )


def waiting_notice(request: InviteRequest) -> str:
    """The answer right after asking (ephemeral, where they asked); the decision comes by DM."""
    if request.approval_message is None:
        return (
            f":inbox_tray: I saved your request to invite {escape(request.details.email)} to awork "
            f"(request `{request.id}`), but could not reach the approvers' channel yet. I'll keep "
            "trying, and tell you by DM when it is decided."
        )
    return (
        f":inbox_tray: Your request to invite {escape(request.details.email)} to awork is waiting "
        f"for an approver (request `{request.id}`). I'll tell you by DM when it is decided."
    )


def requester_reminder(request: Any, expires: datetime | None) -> str:
    """By DM to the requester when the approvers were reminded of a request (or a batch)."""
    entries = getattr(request, "entries", None)
    whom = people(len(entries)) if entries else escape(request.details.email)
    until = f" It expires {slack_date(expires)} if nobody decides." if expires else ""
    return (
        f":bell: Your request to invite {whom} to awork (request `{request.id}`) is still "
        f"waiting for a decision; I reminded the approvers.{until}"
        + asked_in(request.origin_channel)
    )


def outcome_notice(request: InviteRequest, command: str = DEFAULT_COMMAND) -> str:
    """For the requester, by DM (later news), naming the channel where they asked. Holds no
    link or code."""
    return _outcome_words(request, command) + asked_in(request.origin_channel)


def _outcome_words(request: InviteRequest, command: str) -> str:
    email = escape(request.details.email)
    who = f"<@{request.decided_by}>" if request.decided_by else "An approver"
    if request.status in (Status.INVITED, Status.JOINING):
        where = link_whereabouts(request, reader=request.requester_id)
        return (
            f":white_check_mark: {approved_by(request, 'An approver')} approved your request: "
            f"{email} is invited to awork. {where}"
        )
    if request.status is Status.EXPIRED:
        return f":hourglass: Your request to invite {email} expired without a decision. You can ask again with `{command}`."
    if request.status is Status.JOINED:
        return f":tada: {email} accepted the invitation and joined {_workspace(request)}."
    if request.status is Status.LAPSED:
        return f":hourglass: The invitation for {email} can no longer be accepted: {escape(request.lapse_reason or '')}"
    if request.status is Status.DENIED:
        return f":no_entry: {who} denied your request to invite {email}: {escape(request.deny_reason or '')}"
    if request.status is Status.FAILED and request.failure:
        return f":warning: Your request to invite {email} was approved, but awork refused: {escape(request.failure.message)}"
    return f"Your request to invite {email} is {request.status.value}."


def invite_again_offer(
    request: InviteRequest, command: str = DEFAULT_COMMAND
) -> list[dict[str, Any]]:
    """The requester's note about a lapsed invitation, with a button for a fresh one."""
    return [
        section(outcome_notice(request, command)),
        action_buttons(request, (INVITE_AGAIN, "Invite again", "primary")),
    ]


def invitee_dm(request: InviteRequest) -> tuple[str, list[dict[str, Any]]]:
    """The invitee's DM: who, where, role, teams, until when - and Accept. No code in it."""
    d = request.details
    expires = slack_date(request.result.expires_at) if request.result else "in 24 hours"
    lines = [f":wave: <@{request.requester_id}> invited you to *{_workspace(request)}* on awork."]
    lines.append(f"*Role:* {escape(request.role_name) if request.role_name else DEFAULT_ROLE}")
    if request.team_names:
        lines.append("*Teams:* " + shortened(request.team_names, TEAMS_SHOWN))
    lines.append(f"The invitation is open until {expires}.")
    text = f"{escape(d.email)}: you are invited to {_workspace(request)} on awork"
    return text, [
        section("\n".join(lines)),
        action_buttons(request, (ACCEPT, "Accept invitation", "primary")),
    ]


def joined_dm(
    request: InviteRequest, password_link: str | None
) -> tuple[str, list[dict[str, Any]]]:
    """Replaces the invitee's DM once they joined. The password link is theirs alone."""
    text = f":tada: You joined {_workspace(request)} on awork."
    if password_link:
        text += f" <{password_link}|Set your password> to sign in."
    return text, [section(text)]


ACCEPT_ANSWERS = {
    "already_joined": "You have already joined. :tada:",
    "in_progress": "Your acceptance is being processed; one moment.",
    "lapsed": "This invitation can no longer be accepted. I've let the person who invited you know, so they can invite you again.",
    "refused": "awork did not accept this invitation. I've let the person who invited you know, so they can invite you again.",
    "unavailable": "awork is not answering right now. Please click *Accept invitation* again in a few minutes.",
    "no_code": "Please accept this invitation from awork's email.",
    "not_invitee": ":lock: This invitation is for someone else; only they can accept it.",
    "not_found": NOT_FOUND_TEXT,
    "not_requester": ":lock: Only the person who asked for this invitation can ask again.",
}


def link_message(request: InviteRequest, link: str) -> str:
    """The requester's DM with the acceptance link, for an invitee who isn't in this Slack."""
    expires = slack_date(request.result.expires_at) if request.result else "in 24 hours"
    return (
        f":key: {escape(request.details.email)} is invited to {_workspace(request)}, but isn't in this Slack, "
        f"so here is their acceptance link to pass on privately: <{link}|accept the invitation> "
        f"(works until {expires})." + asked_in(request.origin_channel)
    )


def duplicate_error(kind: str, request: InviteRequest | None, link: str | None) -> str:
    """The email field's error when the admins need not be asked (plain text, shown in the form)."""
    if kind == "member" or request is None:
        return "This address is already in the awork workspace; no invitation is needed."
    since = request.created_at.strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"There is already an open request for this address (request {request.id}, since {since})."
    )
    return f"{text} {link}" if link else text


def refusal(request: Any, reason: str | None, decided: Callable[[Any], str] | None = None) -> str:
    """Why a click or a deny changed nothing, said privately to the clicker. `decided` words
    an already-decided request (a batch has its own)."""
    if request is None:
        return NOT_FOUND_TEXT
    if reason == "not_approver":
        return NOT_APPROVER
    if reason == "already_approved":
        return "Your approval is in; this admin-role invitation needs a second approver."
    if reason == "own_request":
        return "You can't approve your own request; another approver will decide it."
    return (decided or already_decided)(request)


FIRST_APPROVAL = ":white_check_mark: Your approval is in. An admin role needs a second approver, who has been shown it."
NOT_APPROVER = ":lock: Only approvers can decide on invitation requests."


def already_decided(request: InviteRequest) -> str:
    who = approved_by(request, "someone else")
    denier = f"<@{request.decided_by}>" if request.decided_by else "someone else"
    words = {
        Status.INVITING: f"was already approved by {who} and is being sent",
        Status.INVITED: f"was already approved by {who}",
        Status.DENIED: f"was already denied by {denier}",
        Status.FAILED: f"was already approved by {who}, and awork refused it",
        Status.PENDING: "is still waiting",
        Status.JOINING: f"was already approved by {who}",
        Status.JOINED: f"was already approved by {who}, and they joined",
        Status.LAPSED: "lapsed, and was already asked for again",
        Status.EXPIRED: "expired without a decision",
    }[request.status]
    return f"Nothing changed: the request for {escape(request.details.email)} {words}."
