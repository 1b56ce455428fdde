"""Block Kit for telling people about one request: the requester's notices and DMs (waiting,
reminded, decided, invited, lapsed), the reminder in the approval message's thread, and the
invitee's DM with its Accept button. Pure functions from domain models to Slack dicts.

What goes to the requester later (a decision, an outcome) names the channel where they asked.
Every piece of user text goes through `escape` (bot/ui/mrkdwn.py) before it is put into mrkdwn.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.domain.records import InviteRequest, Status, said
from bot.i18n import N_, _, ngettext, pgettext
from bot.ui.answers import DEFAULT_COMMAND
from bot.ui.approval import TEAMS_SHOWN, action_buttons, known_workspace, workspace_name
from bot.ui.lists import STATUS_WORDS
from bot.ui.mrkdwn import (
    approved_by,
    asked_in,
    deciders,
    escape,
    people,
    route_words,
    section,
    shortened,
    slack_date,
)
from bot.ui.whereabouts import answer_lost, link_whereabouts

ACCEPT = "accept_invite"
INVITE_AGAIN = "invite_again"

DEFAULT_ROLE = N_("awork's default role")  # no role chosen: awork gives its default


def mention(user_id: str) -> str:
    """A Slack mention of a person (a placeholder's value, never translated)."""
    return f"<@{user_id}>"


def reminder(request: InviteRequest) -> str:
    """Posted in the approval message's thread when a request waits too long."""
    return _(
        ":bell: Still waiting for a decision: {requester} asked to invite {email} {date}.",
        requester=mention(request.requester_id),
        email=escape(request.details.email),
        date=slack_date(request.created_at),
    )


def waiting_notice(request: InviteRequest) -> str:
    """The answer right after asking (ephemeral, where they asked); the decision comes by DM."""
    email = escape(request.details.email)
    if request.approval_message is None:
        return _(
            ":inbox_tray: I saved your request to invite {email} to awork (request `{id}`), but "
            "could not reach the approvers' channel yet. I'll keep trying, and tell you by DM "
            "when it is decided.",
            email=email,
            id=request.id,
        )
    return _(
        ":inbox_tray: Your request to invite {email} to awork is waiting for an approver "
        "(request `{id}`). I'll tell you by DM when it is decided.",
        email=email,
        id=request.id,
    ) + route_words(request)


def requester_reminder(request: Any, expires: datetime | None) -> str:
    """By DM to the requester when the approvers were reminded of a request (or a batch)."""
    entries = getattr(request, "entries", None)
    whom = people(len(entries)) if entries else escape(request.details.email)
    text = _(
        ":bell: Your request to invite {whom} to awork (request `{id}`) is still waiting for a "
        "decision; I reminded the approvers.",
        whom=whom,
        id=request.id,
    )
    if expires:
        text += " " + _("It expires {date} if nobody decides.", date=slack_date(expires))
    return text + asked_in(request.origin_channel)


def unsure_notice(request: InviteRequest) -> str:
    """By DM to the requester while awork's lost answer is being settled: the result follows."""
    # Two approvers (an admin role) take the plural verb in German: "… haben genehmigt". The
    # names are made first: Babel's extraction loses a plural with a nested `_()` in its call.
    who = approved_by(request, _("An approver"))
    return ngettext(
        ":hourglass_flowing_sand: {who} approved your request to invite {email}, but awork is "
        "slow to answer. I'm checking whether the invitation went through before anything is "
        "sent again, and will tell you by DM how it ends.",
        ":hourglass_flowing_sand: {who} approved your request to invite {email}, but awork is "
        "slow to answer. I'm checking whether the invitation went through before anything is "
        "sent again, and will tell you by DM how it ends.",
        deciders(request),
        who=who,
        email=escape(request.details.email),
    ) + asked_in(request.origin_channel)


def outcome_notice(request: InviteRequest, command: str = DEFAULT_COMMAND) -> str:
    """For the requester, by DM (later news), naming the channel where they asked. Holds no
    link or code."""
    return _outcome_words(request, command) + asked_in(request.origin_channel)


def _outcome_words(request: InviteRequest, command: str) -> str:
    email = escape(request.details.email)
    if request.status in (Status.INVITED, Status.JOINING):
        where = (
            withheld_links(request.awork_email_skipped)
            if request.link_withheld
            else link_whereabouts(request, reader=request.requester_id)
        )
        who = approved_by(request, _("An approver"))  # before: see unsure_notice
        approved = ngettext(
            ":white_check_mark: {who} approved your request: {email} is invited to awork.",
            ":white_check_mark: {who} approved your request: {email} is invited to awork.",
            deciders(request),
            who=who,
            email=email,
        )
        return f"{approved} {where}"
    if request.status is Status.EXPIRED:
        return _(
            ":hourglass: Your request to invite {email} expired without a decision. You can ask "
            "again with `{command}`.",
            email=email,
            command=command,
        )
    if request.status is Status.JOINED:
        return _(
            ":tada: {email} accepted the invitation and joined {workspace}.",
            email=email,
            workspace=workspace_name(request),
        )
    if request.status is Status.LAPSED:
        return _(
            ":hourglass: The invitation for {email} can no longer be accepted: {reason}",
            email=email,
            reason=escape(said(request.lapse_reason)),  # stored as its msgid
        )
    if request.status is Status.DENIED:
        return _(
            ":no_entry: {who} denied your request to invite {email}: {reason}",
            who=mention(request.decided_by) if request.decided_by else _("An approver"),
            email=email,
            reason=escape(request.deny_reason or ""),  # the approver's own words
        )
    if request.status is Status.FAILED and request.failure:
        reason = escape(request.failure.said())
        if request.failure.retryable:
            return _(
                ":warning: Your request to invite {email} was approved, but the invitation did "
                "not go through: {reason}",
                email=email,
                reason=reason,
            )
        return _(
            ":warning: Your request to invite {email} was approved, but awork refused: {reason}",
            email=email,
            reason=reason,
        )
    return _(
        "Your request to invite {email} is {status}.",
        email=email,
        status=_(STATUS_WORDS[request.status]),
    )


def withheld_links(email_skipped: bool, count: int | None = None) -> str:
    """For the requester, where they asked, when Slack refused them the DM with acceptance
    links: a request's (`count` None), or those of a batch's `count` invitees who are not in
    Slack. No link in it."""
    if count is None:
        if email_skipped:
            return _(
                "Slack did not let me DM you, so I could not give you their acceptance link "
                "privately; awork's own email was skipped, so nothing carries it: resend the "
                "invitation from awork's user list."
            )
        return _(
            "Slack did not let me DM you, so I could not give you their acceptance link "
            "privately; awork's own email carries it."
        )
    if email_skipped:
        return ngettext(
            "Slack did not let me DM you, so I could not give you the acceptance link of {n} "
            "person who is not in this Slack privately; awork's own email was skipped, so "
            "nothing carries it: resend the invitation from awork's user list.",
            "Slack did not let me DM you, so I could not give you the acceptance links of {n} "
            "people who are not in this Slack privately; awork's own email was skipped, so "
            "nothing carries them: resend the invitations from awork's user list.",
            count,
        )
    return ngettext(
        "Slack did not let me DM you, so I could not give you the acceptance link of {n} person "
        "who is not in this Slack privately; awork's own email carries it.",
        "Slack did not let me DM you, so I could not give you the acceptance links of {n} "
        "people who are not in this Slack privately; awork's own email carries them.",
        count,
    )


def invite_again_offer(
    request: InviteRequest, command: str = DEFAULT_COMMAND
) -> list[dict[str, Any]]:
    """The requester's note about a lapsed invitation, with a button for a fresh one."""
    return [
        section(outcome_notice(request, command)),
        action_buttons(request, (INVITE_AGAIN, pgettext("button", "Invite again"), "primary")),
    ]


def invitee_dm(request: InviteRequest) -> tuple[str, list[dict[str, Any]]]:
    """The invitee's DM: who, where, role, teams, until when - and Accept. No code in it."""
    d = request.details
    workspace = known_workspace(request)
    lines = [
        invited_you(request),
        _(
            "*Role:* {role}",
            role=escape(request.role_name) if request.role_name else _(DEFAULT_ROLE),
        ),
    ]
    if request.team_names:
        lines.append(_("*Teams:* {teams}", teams=shortened(request.team_names, TEAMS_SHOWN)))
    if request.result:
        lines.append(
            _(
                "The invitation is open until {date}.",
                date=slack_date(request.result.expires_at),
            )
        )
    else:
        lines.append(_("The invitation is open for 24 hours."))
    if workspace:
        text = _(
            "{email}: you are invited to {workspace} on awork",
            email=escape(d.email),
            workspace=workspace,
        )
    else:
        text = _("{email}: you are invited to awork", email=escape(d.email))
    return text, [
        section("\n".join(lines)),
        action_buttons(request, (ACCEPT, pgettext("button", "Accept invitation"), "primary")),
    ]


def answer_lost_dm(request: InviteRequest) -> str:
    """The invitee's DM when awork's answer to their invitation was lost: invited, but the
    bot has no code for an Accept button - what to do instead."""
    return f"{invited_you(request)} {answer_lost(request.awork_email_skipped)}"


def invited_you(request: InviteRequest) -> str:
    """The invitee's first line: who invited them, and where."""
    requester, workspace = mention(request.requester_id), known_workspace(request)
    if workspace:
        return _(
            ":wave: {requester} invited you to *{workspace}* on awork.",
            requester=requester,
            workspace=workspace,
        )
    return _(":wave: {requester} invited you to awork.", requester=requester)


def joined_dm(
    request: InviteRequest, password_link: str | None
) -> tuple[str, list[dict[str, Any]]]:
    """Replaces the invitee's DM once they joined. The password link is theirs alone."""
    workspace = known_workspace(request)
    if workspace:
        text = _(":tada: You joined {workspace} on awork.", workspace=workspace)
    else:
        text = _(":tada: You joined awork.")
    if password_link:
        text += " " + _("<{link}|Set your password> to sign in.", link=password_link)
    return text, [section(text)]


def link_message(request: InviteRequest, link: str) -> str:
    """The requester's DM with the acceptance link, for an invitee who isn't in this Slack."""
    values = {
        "email": escape(request.details.email),
        "workspace": workspace_name(request),
        "link": link,
    }
    if request.result:
        text = _(
            ":key: {email} is invited to {workspace}, but isn't in this Slack, so here is "
            "their acceptance link to pass on privately: <{link}|accept the invitation> "
            "(works until {date}).",
            date=slack_date(request.result.expires_at),
            **values,
        )
    else:
        text = _(
            ":key: {email} is invited to {workspace}, but isn't in this Slack, so here is "
            "their acceptance link to pass on privately: <{link}|accept the invitation> "
            "(works for 24 hours).",
            **values,
        )
    return text + by_policy(request) + asked_in(request.origin_channel)


def by_policy(record: Any) -> str:
    """A line for the requester when the policy approved their request (no approver did)."""
    if str(record.approval_rule) != "policy":
        return ""
    rule = escape(record.policy_rule or "approved_domains")
    return "\n" + _("No approver was needed: the policy ({rule}) approved it.", rule=rule)
