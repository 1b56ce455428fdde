"""Block Kit for telling people about one request: the requester's notices and DMs (waiting,
reminded, decided, invited, lapsed), the reminder in the approval message's thread, and the
invitee's DM with its Accept button. Pure functions from domain models to Slack dicts.

What goes to the requester later (a decision, an outcome) names the channel where they asked.
Every piece of user text goes through `escape` (bot/ui/mrkdwn.py) before it is put into mrkdwn.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.domain.records import InviteRequest, Status
from bot.ui.answers import DEFAULT_COMMAND
from bot.ui.approval import (
    TEAMS_SHOWN,
    action_buttons,
    answer_lost,
    failed_how,
    link_whereabouts,
    workspace_name,
)
from bot.ui.mrkdwn import (
    approved_by,
    asked_in,
    escape,
    people,
    route_words,
    section,
    shortened,
    slack_date,
)

ACCEPT = "accept_invite"
INVITE_AGAIN = "invite_again"

DEFAULT_ROLE = "awork's default role"  # no role chosen: awork gives its default


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
        + route_words(request)
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


def unsure_notice(request: InviteRequest) -> str:
    """By DM to the requester while awork's lost answer is being settled: the result follows."""
    return (
        f":hourglass_flowing_sand: {approved_by(request, 'An approver')} approved your request "
        f"to invite {escape(request.details.email)}, but awork is slow to answer. I'm checking "
        "whether the invitation went through before anything is sent again, and will tell you "
        "by DM how it ends." + asked_in(request.origin_channel)
    )


def outcome_notice(request: InviteRequest, command: str = DEFAULT_COMMAND) -> str:
    """For the requester, by DM (later news), naming the channel where they asked. Holds no
    link or code."""
    return _outcome_words(request, command) + asked_in(request.origin_channel)


def _outcome_words(request: InviteRequest, command: str) -> str:
    email = escape(request.details.email)
    who = f"<@{request.decided_by}>" if request.decided_by else "An approver"
    if request.status in (Status.INVITED, Status.JOINING):
        where = (
            withheld_links(request.awork_email_skipped)
            if request.link_withheld
            else link_whereabouts(request, reader=request.requester_id)
        )
        return (
            f":white_check_mark: {approved_by(request, 'An approver')} approved your request: "
            f"{email} is invited to awork. {where}"
        )
    if request.status is Status.EXPIRED:
        return f":hourglass: Your request to invite {email} expired without a decision. You can ask again with `{command}`."
    if request.status is Status.JOINED:
        return f":tada: {email} accepted the invitation and joined {workspace_name(request)}."
    if request.status is Status.LAPSED:
        return f":hourglass: The invitation for {email} can no longer be accepted: {escape(request.lapse_reason or '')}"
    if request.status is Status.DENIED:
        return f":no_entry: {who} denied your request to invite {email}: {escape(request.deny_reason or '')}"
    if request.status is Status.FAILED and request.failure:
        return f":warning: Your request to invite {email} was approved, but {failed_how(request.failure)}: {escape(request.failure.message)}"
    return f"Your request to invite {email} is {request.status.value}."


def withheld_links(email_skipped: bool, count: int | None = None) -> str:
    """For the requester, where they asked, when Slack refused them the DM with acceptance
    links: a request's (`count` None), or those of a batch's `count` invitees who are not in
    Slack. No link in it."""
    if count is None:
        links, them = "their acceptance link", "it"
    elif count == 1:
        links, them = "the acceptance link of 1 person who is not in this Slack", "it"
    else:
        links, them = f"the acceptance links of {count} people who are not in this Slack", "them"
    also = (
        f"awork's own email was skipped, so nothing carries {them}: resend "
        f"{'the invitation' if them == 'it' else 'the invitations'} from awork's user list"
        if email_skipped
        else f"awork's own email carries {them}"
    )
    return f"Slack did not let me DM you, so I could not give you {links} privately; {also}."


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
    lines = [
        f":wave: <@{request.requester_id}> invited you to *{workspace_name(request)}* on awork."
    ]
    lines.append(f"*Role:* {escape(request.role_name) if request.role_name else DEFAULT_ROLE}")
    if request.team_names:
        lines.append("*Teams:* " + shortened(request.team_names, TEAMS_SHOWN))
    lines.append(f"The invitation is open until {expires}.")
    text = f"{escape(d.email)}: you are invited to {workspace_name(request)} on awork"
    return text, [
        section("\n".join(lines)),
        action_buttons(request, (ACCEPT, "Accept invitation", "primary")),
    ]


def answer_lost_dm(request: InviteRequest) -> str:
    """The invitee's DM when awork's answer to their invitation was lost: invited, but the
    bot has no code for an Accept button - what to do instead."""
    return (
        f":wave: <@{request.requester_id}> invited you to *{workspace_name(request)}* on awork. "
        + answer_lost(request.awork_email_skipped)
    )


def joined_dm(
    request: InviteRequest, password_link: str | None
) -> tuple[str, list[dict[str, Any]]]:
    """Replaces the invitee's DM once they joined. The password link is theirs alone."""
    text = f":tada: You joined {workspace_name(request)} on awork."
    if password_link:
        text += f" <{password_link}|Set your password> to sign in."
    return text, [section(text)]


def link_message(request: InviteRequest, link: str) -> str:
    """The requester's DM with the acceptance link, for an invitee who isn't in this Slack."""
    expires = slack_date(request.result.expires_at) if request.result else "in 24 hours"
    return (
        f":key: {escape(request.details.email)} is invited to {workspace_name(request)}, but isn't in this Slack, "
        f"so here is their acceptance link to pass on privately: <{link}|accept the invitation> "
        f"(works until {expires})." + by_policy(request) + asked_in(request.origin_channel)
    )


def by_policy(record: Any) -> str:
    """A line for the requester when the policy approved their request (no approver did)."""
    if str(record.approval_rule) != "policy":
        return ""
    return f"\nNo approver was needed: {approved_by(record)} approved it."
