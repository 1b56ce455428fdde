"""What a batch's requester is told (by ephemeral, by DM: waiting, decided, done, reminded,
the private acceptance links) and the clicker's answer when a batch's button changed nothing.
Pure functions; the batch's approval message is bot/ui/bulk_blocks.py."""

from __future__ import annotations

from bot.domain.batches import BatchStatus, InviteBatch, Summary
from bot.i18n import _, ngettext
from bot.ui.answers import refusal
from bot.ui.bulk_blocks import SHOWN, left_out_line, summary_line
from bot.ui.mrkdwn import approved_by, asked_in, deciders, escape, route_words, slack_date


def batch_waiting_notice(batch: InviteBatch) -> str:
    left_out = left_out_line(batch.skipped)
    note = f" {left_out}." if left_out else ""
    waiting = ngettext(
        ":inbox_tray: Your request to invite {n} person to awork is waiting for an approver "
        "(request `{id}`). I'll tell you by DM when it is decided.",
        ":inbox_tray: Your request to invite {n} people to awork is waiting for an approver "
        "(request `{id}`). I'll tell you by DM when it is decided.",
        len(batch.entries),
        id=batch.id,
    )
    return f"{waiting}{route_words(batch)}{note}"


def batch_outcome_notice(batch: InviteBatch, summary: Summary) -> str:
    """For the requester, by DM (later news), naming the channel where they asked."""
    return _batch_outcome_words(batch, summary) + asked_in(batch.origin_channel)


def _batch_outcome_words(batch: InviteBatch, summary: Summary) -> str:
    count = len(batch.entries)
    if batch.status is BatchStatus.DENIED:
        denier = f"<@{batch.decided_by}>" if batch.decided_by else _("An approver")
        return ngettext(
            ":no_entry: {who} denied your request to invite {n} person: {reason}",
            ":no_entry: {who} denied your request to invite {n} people: {reason}",
            count,
            who=denier,
            reason=escape(batch.deny_reason or ""),
        )
    if batch.status is BatchStatus.EXPIRED:
        return ngettext(
            ":hourglass: Your request to invite {n} person expired without a decision.",
            ":hourglass: Your request to invite {n} people expired without a decision.",
            count,
        )
    who = approved_by(batch, _("An approver"))
    failed = "".join(
        f"\n• {escape(m.details.email)}: {escape(m.failure.said() if m.failure else '')}"
        for m in summary.failed[:SHOWN]
    )
    more = len(summary.failed) - SHOWN
    if more > 0:
        failed += "\n" + ngettext("…and {n} more", "…and {n} more", more)
    approved = ngettext(
        ":white_check_mark: {who} approved your request `{id}`: {summary}.",
        ":white_check_mark: {who} approved your request `{id}`: {summary}.",
        deciders(batch),
        who=who,
        id=batch.id,
        summary=summary_line(summary),
    )
    return approved + failed


def batch_links(batch: InviteBatch, links: list[tuple[str, str]], part: int, parts: int) -> str:
    """The requester's DM with acceptance links for invitees who aren't in Slack. Credentials:
    a DM only."""
    head = ngettext(
        ":key: Acceptance links for request `{id}` ({part} of {parts}). This person isn't in "
        "this Slack; pass each link privately to its person (each works for 24 hours):",
        ":key: Acceptance links for request `{id}` ({part} of {parts}). These people aren't "
        "in this Slack; pass each link privately to its person (each works for 24 hours):",
        len(links),
        id=batch.id,
        part=part,
        parts=parts,
    )
    accept = _("accept the invitation")
    return head + "".join(f"\n• {escape(email)}: <{link}|{accept}>" for email, link in links)


def batch_reminder(batch: InviteBatch) -> str:
    requester = f"<@{batch.requester_id}>"
    return ngettext(
        ":bell: Still waiting for a decision: {requester} asked to invite {n} person {date}.",
        ":bell: Still waiting for a decision: {requester} asked to invite {n} people {date}.",
        len(batch.entries),
        requester=requester,
        date=slack_date(batch.created_at),
    )


def batch_refusal(batch: InviteBatch | None, reason: str | None) -> str:
    """Why a click on a batch's message changed nothing, said privately to the clicker."""
    if batch is not None and reason == "already_retried":
        if batch.status is BatchStatus.RUNNING:
            return _(
                "Nothing changed: that “Retry failed” of request `{id}` was clicked already; "
                "retry {retry} is running.",
                id=batch.id,
                retry=batch.run - 1,
            )
        return _(
            "Nothing changed: that “Retry failed” of request `{id}` was clicked already, and "
            "retry {retry} has run. The message shows who still fails, with a new button if "
            "anyone does.",
            id=batch.id,
            retry=batch.run - 1,
        )
    return refusal(batch, reason, batch_already_decided)


def batch_already_decided(batch: InviteBatch) -> str:
    count, values = len(batch.entries), {"id": batch.id}
    if batch.status is BatchStatus.PENDING:
        return ngettext(
            "Nothing changed: the request `{id}` for {n} person is still waiting.",
            "Nothing changed: the request `{id}` for {n} people is still waiting.",
            count,
            **values,
        )
    if batch.status is BatchStatus.EXPIRED:
        return ngettext(
            "Nothing changed: the request `{id}` for {n} person expired without a decision.",
            "Nothing changed: the request `{id}` for {n} people expired without a decision.",
            count,
            **values,
        )
    if batch.status is BatchStatus.DENIED:
        denier = f"<@{batch.decided_by}>" if batch.decided_by else _("someone else")
        return ngettext(
            "Nothing changed: the request `{id}` for {n} person was already denied by {who}.",
            "Nothing changed: the request `{id}` for {n} people was already denied by {who}.",
            count,
            who=denier,
            **values,
        )
    who = approved_by(batch, _("someone else"))
    if batch.status is BatchStatus.RUNNING:
        return ngettext(
            "Nothing changed: the request `{id}` for {n} person was approved by {who} and is "
            "being invited.",
            "Nothing changed: the request `{id}` for {n} people was approved by {who} and is "
            "being invited.",
            count,
            who=who,
            **values,
        )
    return ngettext(
        "Nothing changed: the request `{id}` for {n} person was approved by {who} and is done.",
        "Nothing changed: the request `{id}` for {n} people was approved by {who} and is done.",
        count,
        who=who,
        **values,
    )
