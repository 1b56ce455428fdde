"""Where an invitation's acceptance link went - by DM to the invitee, to the requester to pass
on, in awork's own email, nowhere yet - said without the link itself, for the approval
messages (bot/ui/approval.py, bot/ui/bulk_blocks.py) and the requester's notices. Pure
functions."""

from __future__ import annotations

from datetime import datetime

from bot.domain.records import InviteRequest, Status
from bot.i18n import _, ngettext
from bot.ui.mrkdwn import slack_date


def link_whereabouts(request: InviteRequest, reader: str | None = None) -> str:
    """Where the way to accept went - said without the link itself; to `reader` (who reads
    it, when that is one person) as "you" where it went to them."""
    sent_to = f"<@{request.link_sent_to}>"
    if request.link_sent_to and request.link_sent_to == request.invitee_slack_id:
        if request.link_sent_to == reader:
            return _("You were asked by DM to accept it.")
        return _("{invitee} was asked by DM to accept it.", invitee=sent_to)
    if request.link_sent_to == reader and reader:
        return _("I sent you its acceptance link by DM, to pass on privately.")
    if request.link_sent_to:
        return _("The acceptance link went by DM to {person}.", person=sent_to)
    skipped = request.awork_email_skipped
    if request.result is not None and request.result.invitation_code is None:
        # Found in awork after its answer was lost: the code never reached the bot.
        return answer_lost(skipped)
    if request.invitee_slack_id:  # their DM only: retried, never sent to anyone else
        invitee = f"<@{request.invitee_slack_id}>"
        if request.status is not Status.INVITED:
            if skipped:
                return _(
                    "The DM asking {invitee} to accept was never delivered; awork's own "
                    "email was skipped.",
                    invitee=invitee,
                )
            return _(
                "The DM asking {invitee} to accept was never delivered; awork's own email "
                "carries the link.",
                invitee=invitee,
            )
        if request.link_overdue_at is None:
            return _(
                "The DM asking {invitee} to accept has not been delivered yet; it is retried.",
                invitee=invitee,
            )
        expires = request.result.expires_at if request.result else None
        return undelivered_link(invitee, expires, skipped)
    if request.invitee_unknown and not request.link_attempted:  # asked again by the sweep
        if skipped:
            return _(
                "The acceptance link waits until Slack says whether the invitee is in Slack; "
                "awork's own email was skipped."
            )
        return _(
            "The acceptance link waits until Slack says whether the invitee is in Slack; "
            "awork's own email carries it meanwhile."
        )
    if skipped:
        return _("The acceptance link could not be sent by DM; awork's own email was skipped.")
    return _("The acceptance link could not be sent by DM; awork's own email carries the link.")


def answer_lost(email_skipped: bool, count: int | None = None) -> str:
    """Invitations found in awork after their answer was lost: invited, but without the
    code, so without an acceptance link - what to do instead: a request's (`count` None), or
    `count` of a batch's invitees. No link in it."""
    if count is None:
        if email_skipped:
            return _(
                "Invited, but awork's answer was lost, so there is no acceptance link, and "
                "awork's own email was skipped: ask an awork admin to resend the invitation "
                "from awork's user list."
            )
        return _(
            "Invited, but awork's answer was lost, so there is no acceptance link: awork's "
            "own email carries it."
        )
    if email_skipped:
        return ngettext(
            "awork's answer was lost for {n} person, so there is no acceptance link, and "
            "awork's own email was skipped: ask an awork admin to resend the invitation "
            "from awork's user list.",
            "awork's answer was lost for {n} people, so there is no acceptance link, and "
            "awork's own email was skipped: ask an awork admin to resend the invitations "
            "from awork's user list.",
            count,
        )
    return ngettext(
        "awork's answer was lost for {n} person, so there is no acceptance link: awork's own "
        "email carries it.",
        "awork's answer was lost for {n} people, so there is no acceptance link: awork's own "
        "email carries them.",
        count,
    )


def undelivered_link(invitees: str, expires: datetime | None, email_skipped: bool) -> str:
    """For approvers (and the requester): a DM to invitees in Slack is overdue. No link in it."""
    until = f" ({slack_date(expires)})" if expires else ""
    if email_skipped:
        return _(
            ":warning: The acceptance link could not be delivered to {invitees}: Slack did not "
            "let the bot DM them. Ask them to open a direct message with the bot (Apps → the "
            "bot → Messages) and to allow messages from apps; the bot keeps trying until the "
            "invitation ends{until}. Nothing else carries it: awork's own email was skipped. "
            "If it runs out, the requester can invite them again.",
            invitees=invitees,
            until=until,
        )
    return _(
        ":warning: The acceptance link could not be delivered to {invitees}: Slack did not "
        "let the bot DM them. Ask them to open a direct message with the bot (Apps → the "
        "bot → Messages) and to allow messages from apps; the bot keeps trying until the "
        "invitation ends{until}. awork's own email carries the link as well. If it runs out, "
        "the requester can invite them again.",
        invitees=invitees,
        until=until,
    )
