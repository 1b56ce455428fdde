"""Block Kit for batches: the batch's approval message (with progress and its summary), the
requester's notices and the private list of acceptance links. Pure functions. The bulk form
itself is bot/ui/bulk_form.py (its names are re-exported here for the listeners)."""

from __future__ import annotations

from typing import Any

from bot.domain.batches import BatchStatus, InviteBatch, Skipped, Summary
from bot.domain.records import InviteRequest, Status
from bot.i18n import N_, _, ngettext, pgettext
from bot.ui.approval import (
    APPROVE,
    DENY,
    TEAMS_SHOWN,
    action_buttons,
    approval_rule_note,
    asked_line,
    denied_line,
    expired_line,
    role_line,
)
from bot.ui.bulk_form import BULK_FORM as BULK_FORM  # re-exported for the listeners
from bot.ui.bulk_form import PEOPLE as PEOPLE
from bot.ui.bulk_form import PEOPLE_FILE as PEOPLE_FILE
from bot.ui.bulk_form import bulk_form as bulk_form
from bot.ui.lists import item_line
from bot.ui.mrkdwn import (
    approved_by,
    context,
    escape,
    plain,
    policy_note,
    section,
    sections,
    shortened,
)
from bot.ui.whereabouts import answer_lost, undelivered_link

RETRY_FAILED = "retry_failed"
RUN_MARK = ":run-"  # in a Retry failed button's value: `bat-…:run-2`
SHOWN = 10  # people named on a message; the rest are counted
LINKS_PER_MESSAGE = 50
# Why a person was left out of a list, in the words of the list's messages and answers
# (marked for the catalog: `_(LEFT_OUT[reason])` where shown).
LEFT_OUT = {
    "member": N_("already in awork"),
    "open": N_("already requested"),
    "repeated": N_("listed twice"),
    "blocked": N_("blocked domain"),
    "daily_limit": N_("over today's limit"),
}


def _more(listed: str, more: int) -> str:
    """Names already listed and joined, and "and N more" when there are more."""
    if more <= 0:
        return listed
    return ngettext("{names} and {n} more", "{names} and {n} more", more, names=listed)


def _people(batch: InviteBatch) -> str:
    names = ", ".join(
        escape(f"{e.full_name} · {e.email}" if e.full_name else e.email)
        for e in batch.entries[:SHOWN]
    )
    return _more(names, len(batch.entries) - SHOWN)


def left_out_line(skipped: list[Skipped]) -> str | None:
    if not skipped:
        return None
    parts = []
    for reason, words in LEFT_OUT.items():
        emails = [s.email for s in skipped if s.reason == reason]
        if emails:
            parts.append(f"{_(words)}: {shortened(emails, SHOWN)}")
    if any(s.reason == "daily_limit" for s in skipped):
        return _(
            "Left out — {reasons} (the daily limit starts again at 00:00 UTC)",
            reasons="; ".join(parts),
        )
    return _("Left out — {reasons}", reasons="; ".join(parts))


def batch_approval_message(
    batch: InviteBatch, summary: Summary | None = None, done: int | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The admin-channel message for a batch: `summary` (members' states) once it is done,
    `done` (how many are settled) while it runs."""
    count = len(batch.entries)
    requester = f"<@{batch.requester_id}>"
    text = ngettext(
        "Request to invite {n} person from {requester}",
        "Request to invite {n} people from {requester}",
        count,
        requester=requester,
    )
    lines = [_("*People:* {people}", people=_people(batch)), role_line(batch.role_name)]
    if batch.team_names:
        lines.append(_("*Teams:* {teams}", teams=shortened(batch.team_names, TEAMS_SHOWN)))
    if batch.details.skip_sending_email:
        lines.append(_("*Welcome email:* not sent"))
    heading = ngettext(
        "*{requester} asks to invite {n} person to awork*",
        "*{requester} asks to invite {n} people to awork*",
        count,
        requester=requester,
    )
    result = [
        section(heading),
        *sections(lines),  # split, never cut: the last lines are decided on too
    ]
    left_out = left_out_line(batch.skipped)
    if left_out:
        result += sections([left_out], kind=context)
    result.append(context(asked_line(batch)))
    policy = policy_note(batch)
    if policy:
        result.append(context(policy))
    outcome = _batch_outcome(batch, summary, done)
    note = approval_rule_note(batch)
    if note and batch.status is not BatchStatus.PENDING:  # pending: the note is in the outcome
        outcome.insert(1, context(note))
    return text, result + outcome


def _batch_outcome(
    batch: InviteBatch, summary: Summary | None, done: int | None = None
) -> list[dict[str, Any]]:
    count = len(batch.entries)
    if batch.status is BatchStatus.PENDING:
        approve = (
            ngettext("Approve all {n}", "Approve all {n}", count)
            if count > 1
            else pgettext("button", "Approve")
        )
        buttons = action_buttons(
            batch, (APPROVE, approve, "primary"), (DENY, pgettext("button", "Deny"), "danger")
        )
        note = approval_rule_note(batch)
        return [context(note), buttons] if note else [buttons]
    if batch.status is BatchStatus.RUNNING:
        if done is None and summary is not None:
            done = summary.retried if retrying(batch) else summary.done
        return [section(progress_line(batch, done or 0))]
    if batch.status is BatchStatus.DENIED:
        return [section(denied_line(batch))]
    if batch.status is BatchStatus.EXPIRED:
        return [section(expired_line())]
    return summary_blocks(batch, summary or Summary())


def retrying(batch: InviteBatch) -> bool:
    """Whether the batch's run is a "Retry failed" run, which goes only through those retried."""
    return batch.run > 1 and batch.retrying > 0


def progress_line(batch: InviteBatch, done: int) -> str:
    """How far a run is: "3 of 120 done", or for a "Retry failed" run "3 of 5 retried" -
    counting only the people it retries."""
    who = approved_by(batch)
    if retrying(batch):
        values = {"who": who, "retry": batch.run - 1, "done": done, "total": batch.retrying}
        if batch.unsure:
            return ngettext(
                ":hourglass_flowing_sand: Approved by {who}, inviting in awork again "
                "(retry {retry}): *{done} of {total}* retried. awork is slow to answer for "
                "{n}: checking whether that invitation went through before anything is sent "
                "again",
                ":hourglass_flowing_sand: Approved by {who}, inviting in awork again "
                "(retry {retry}): *{done} of {total}* retried. awork is slow to answer for "
                "{n}: checking whether their invitations went through before anything is "
                "sent again",
                batch.unsure,
                **values,
            )
        return _(
            ":hourglass_flowing_sand: Approved by {who}, inviting in awork again "
            "(retry {retry}): *{done} of {total}* retried",
            **values,
        )
    values = {"who": who, "done": done, "total": len(batch.entries)}
    if batch.unsure:
        return ngettext(
            ":hourglass_flowing_sand: Approved by {who}, inviting in awork: *{done} of "
            "{total}* done. awork is slow to answer for {n}: checking whether that invitation "
            "went through before anything is sent again",
            ":hourglass_flowing_sand: Approved by {who}, inviting in awork: *{done} of "
            "{total}* done. awork is slow to answer for {n}: checking whether their "
            "invitations went through before anything is sent again",
            batch.unsure,
            **values,
        )
    return _(
        ":hourglass_flowing_sand: Approved by {who}, inviting in awork: *{done} of {total}* done",
        **values,
    )


def retry_button(batch: InviteBatch, failing: int) -> dict[str, Any]:
    """ "Retry failed": its value names the run it follows, so that it runs once - a click
    after that run has been retried changes nothing. After a retry it says "still failing"."""
    label = (
        ngettext("Retry {n} still failing", "Retry {n} still failing", failing)
        if batch.run > 1
        else ngettext("Retry failed ({n})", "Retry failed ({n})", failing)
    )
    return {
        "type": "actions",
        "block_id": f"retry-{batch.id}-{batch.run}",
        "elements": [
            {
                "type": "button",
                "action_id": RETRY_FAILED,
                "text": plain(label),
                "style": "primary",
                "value": f"{batch.id}{RUN_MARK}{batch.run}",
            }
        ],
    }


def retry_target(value: str) -> tuple[str, int | None]:
    """A "Retry failed" button's value: the batch id, and the run it follows (None on a
    button from before runs were named)."""
    batch_id, _sep, run = value.partition(RUN_MARK)
    return batch_id, int(run) if run.isascii() and run.isdigit() and len(run) < 7 else None


def summary_line(summary: Summary) -> str:
    parts = [ngettext("*{n} invited*", "*{n} invited*", len(summary.invited))]
    if summary.already:
        parts.append(ngettext("{n} already a member", "{n} already members", len(summary.already)))
    if summary.failed:
        parts.append(ngettext("*{n} failed*", "*{n} failed*", len(summary.failed)))
    if summary.waiting:
        parts.append(
            ngettext("{n} still being invited", "{n} still being invited", summary.waiting)
        )
    return " · ".join(parts)


def summary_blocks(batch: InviteBatch, summary: Summary) -> list[dict[str, Any]]:
    who = approved_by(batch)
    if summary.failed:
        head = _(":warning: Approved by {who}. {summary}.", who=who, summary=summary_line(summary))
    else:
        head = _(
            ":white_check_mark: Approved by {who}. {summary}.",
            who=who,
            summary=summary_line(summary),
        )
    blocks = [section(head)]
    if summary.already:
        names = shortened(summary.already, SHOWN)
        blocks.append(
            context(
                ngettext(
                    "Already a member: {names}",
                    "Already members: {names}",
                    len(summary.already),
                    names=names,
                )
            )
        )
    if summary.failed:
        by_reason: dict[str, list[str]] = {}
        for member in summary.failed:
            reason = member.failure.said() if member.failure else _("unknown")
            by_reason.setdefault(reason, []).append(member.details.email)
        lines = [
            f"• {shortened(emails, 5)}: {escape(reason)}"
            for reason, emails in list(by_reason.items())[:SHOWN]
        ]
        more = len(by_reason) - SHOWN
        if more > 0:
            lines.append(ngettext("• …and {n} more reason", "• …and {n} more reasons", more))
        blocks += sections([_("*Failed:*"), *lines])
        blocks.append(retry_button(batch, len(summary.failed)))
    if summary.invited:
        overdue = [
            m
            for m in summary.invited
            if m.status is Status.INVITED and m.link_overdue_at and not m.link_attempted
        ]
        blocks.append(context(_links_whereabouts(batch, summary)))
        if overdue:
            names = ", ".join(f"<@{m.invitee_slack_id}>" for m in overdue[:SHOWN])
            names = _more(names, len(overdue) - SHOWN)
            expires = min((m.result.expires_at for m in overdue if m.result), default=None)
            skipped = all(m.awork_email_skipped for m in overdue)
            blocks.append(section(undelivered_link(names, expires, skipped)))
    return blocks


def _links_whereabouts(batch: InviteBatch, summary: Summary) -> str:
    """Where the invited people's ways to accept went. Written as it is said: no case change,
    which would break the mentions in it."""
    lost = [m for m in summary.invited if _answer_lost(m)]
    in_slack = sum(1 for m in summary.invited if m.invitee_slack_id and not _answer_lost(m))
    withheld = sum(1 for m in summary.invited if m.link_withheld)
    waiting = sum(
        1
        for m in summary.invited
        if m.status is Status.INVITED
        and m.invitee_unknown
        and not m.invitee_slack_id
        and not m.link_attempted
        and not _answer_lost(m)
    )
    rest = len(summary.invited) - in_slack - withheld - waiting - len(lost)
    requester = f"<@{batch.requester_id}>"
    said = []
    if in_slack:
        said.append(
            ngettext(
                "{n} in Slack was asked by DM to accept",
                "{n} in Slack were asked by DM to accept",
                in_slack,
            )
        )
    if rest and said:
        said.append(
            ngettext(
                "the acceptance link of the other one went to {requester} by DM",
                "the acceptance links of the other {n} went to {requester} by DM",
                rest,
                requester=requester,
            )
        )
    elif rest:
        said.append(
            ngettext(
                "The acceptance link went to {requester} by DM",
                "The acceptance links of all {n} went to {requester} by DM",
                rest,
                requester=requester,
            )
        )
    if waiting:
        said.append(
            ngettext(
                "{n} acceptance link waits until Slack says whether its invitee is in Slack",
                "{n} acceptance links wait until Slack says whether their invitees are in Slack",
                waiting,
            )
        )
    if withheld:
        said.append(
            ngettext(
                "{n} acceptance link could not be sent: Slack refused {requester} the DM",
                "{n} acceptance links could not be sent: Slack refused {requester} the DM",
                withheld,
                requester=requester,
            )
        )
    if lost:
        said.append(answer_lost(all(m.awork_email_skipped for m in lost), len(lost)))
    return "; ".join(part.rstrip(".") for part in said) + "."


def _answer_lost(member: InviteRequest) -> bool:
    """Found in awork after its answer was lost: there is no code, so no acceptance link."""
    return member.result is not None and member.result.invitation_code is None


def batch_status_card(batch: InviteBatch, summary: Summary | None) -> list[dict[str, Any]]:
    """`/invite status bat-…`: the batch as its approval message shows it, without buttons
    (the message says when it was asked: the line above does not again)."""
    _text, message = batch_approval_message(batch, summary)
    line = item_line(batch, asked=False)
    return [section(line), *(b for b in message if b.get("type") != "actions")]
