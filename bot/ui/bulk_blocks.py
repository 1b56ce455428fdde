"""Block Kit for batches: the batch's approval message (with progress and its summary), the
requester's notices and the private list of acceptance links. Pure functions. The bulk form
itself is bot/ui/bulk_form.py (its names are re-exported here for the listeners)."""

from __future__ import annotations

from typing import Any

from bot.domain.batches import BatchStatus, InviteBatch, Skipped, Summary
from bot.domain.records import InviteRequest, Status
from bot.ui.answers import refusal
from bot.ui.approval import (
    APPROVE,
    DENY,
    TEAMS_SHOWN,
    action_buttons,
    answer_lost,
    approval_rule_note,
    undelivered_link,
)
from bot.ui.bulk_form import BULK_FORM as BULK_FORM  # re-exported for the listeners
from bot.ui.bulk_form import PEOPLE as PEOPLE
from bot.ui.bulk_form import PEOPLE_FILE as PEOPLE_FILE
from bot.ui.bulk_form import bulk_form as bulk_form
from bot.ui.lists import item_line
from bot.ui.mrkdwn import (
    approved_by,
    asked_in,
    context,
    counted,
    escape,
    people,
    plain,
    policy_note,
    route_words,
    section,
    sections,
    shortened,
    slack_date,
)

RETRY_FAILED = "retry_failed"
RUN_MARK = ":run-"  # in a Retry failed button's value: `bat-…:run-2`
SHOWN = 10  # people named on a message; the rest are counted
LINKS_PER_MESSAGE = 50
# Why a person was left out of a list, in the words of the list's messages and answers.
LEFT_OUT = {
    "member": "already in awork",
    "open": "already requested",
    "repeated": "listed twice",
    "blocked": "blocked domain",
    "daily_limit": "over today's limit",
}


def _people(batch: InviteBatch) -> str:
    names = [
        escape(f"{e.full_name} · {e.email}" if e.full_name else e.email)
        for e in batch.entries[:SHOWN]
    ]
    more = len(batch.entries) - SHOWN
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def _skipped(skipped: list[Skipped]) -> str | None:
    if not skipped:
        return None
    parts = []
    for reason, words in LEFT_OUT.items():
        emails = [escape(s.email) for s in skipped if s.reason == reason]
        if emails:
            more = f" and {len(emails) - SHOWN} more" if len(emails) > SHOWN else ""
            parts.append(f"{words}: {', '.join(emails[:SHOWN])}{more}")
    resets = any(s.reason == "daily_limit" for s in skipped)
    note = " (the daily limit starts again at 00:00 UTC)" if resets else ""
    return "Left out — " + "; ".join(parts) + note


def batch_approval_message(
    batch: InviteBatch, summary: Summary | None = None, done: int | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The admin-channel message for a batch: `summary` (members' states) once it is done,
    `done` (how many are settled) while it runs."""
    count = len(batch.entries)
    text = f"Request to invite {people(count)} from <@{batch.requester_id}>"
    lines = [f"*People:* {_people(batch)}"]
    lines.append(f"*Role:* {escape(batch.role_name) if batch.role_name else 'awork default'}")
    if batch.team_names:
        lines.append("*Teams:* " + shortened(batch.team_names, TEAMS_SHOWN))
    if batch.details.skip_sending_email:
        lines.append("*Welcome email:* not sent")
    result = [
        section(f"*<@{batch.requester_id}> asks to invite {people(count)} to awork*"),
        *sections(lines),  # split, never cut: the last lines are decided on too
    ]
    left_out = _skipped(batch.skipped)
    if left_out:
        result += sections([left_out], kind=context)
    result.append(context(f"Request `{batch.id}` · asked {slack_date(batch.created_at)}"))
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
    who = f"<@{batch.decided_by}>" if batch.decided_by else "an approver"
    count = len(batch.entries)
    if batch.status is BatchStatus.PENDING:
        approve = f"Approve all {count}" if count > 1 else "Approve"
        buttons = action_buttons(batch, (APPROVE, approve, "primary"), (DENY, "Deny", "danger"))
        note = approval_rule_note(batch)
        return [context(note), buttons] if note else [buttons]
    if batch.status is BatchStatus.RUNNING:
        if done is None and summary is not None:
            done = summary.retried if retrying(batch) else summary.done
        return [section(progress_line(batch, done or 0))]
    if batch.status is BatchStatus.DENIED:
        return [section(f":no_entry: *Denied by {who}*: {escape(batch.deny_reason or '')}")]
    if batch.status is BatchStatus.EXPIRED:
        return [
            section(":hourglass: *Expired*: nobody decided in time. The requester can ask again.")
        ]
    return summary_blocks(batch, summary or Summary())


def retrying(batch: InviteBatch) -> bool:
    """Whether the batch's run is a "Retry failed" run, which goes only through those retried."""
    return batch.run > 1 and batch.retrying > 0


def progress_line(batch: InviteBatch, done: int) -> str:
    """How far a run is: "3 of 120 done", or for a "Retry failed" run "3 of 5 retried" -
    counting only the people it retries."""
    who = approved_by(batch)
    unsure = (
        f". awork is slow to answer for {batch.unsure}: checking whether "
        f"{'that invitation' if batch.unsure == 1 else 'their invitations'} went through "
        "before anything is sent again"
        if batch.unsure
        else ""
    )
    if retrying(batch):
        return (
            f":hourglass_flowing_sand: Approved by {who}, inviting in awork again "
            f"(retry {batch.run - 1}): *{done} of {batch.retrying}* retried{unsure}"
        )
    return (
        f":hourglass_flowing_sand: Approved by {who}, inviting in awork: "
        f"*{done} of {len(batch.entries)}* done{unsure}"
    )


def retry_button(batch: InviteBatch, failing: int) -> dict[str, Any]:
    """ "Retry failed": its value names the run it follows, so that it runs once - a click
    after that run has been retried changes nothing. After a retry it says "still failing"."""
    label = f"Retry {failing} still failing" if batch.run > 1 else f"Retry failed ({failing})"
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
    batch_id, _, run = value.partition(RUN_MARK)
    return batch_id, int(run) if run.isascii() and run.isdigit() and len(run) < 7 else None


def summary_line(summary: Summary) -> str:
    parts = [f"*{len(summary.invited)} invited*"]
    if summary.already:
        parts.append(counted(len(summary.already), "already a member", "already members"))
    if summary.failed:
        parts.append(f"*{len(summary.failed)} failed*")
    if summary.waiting:
        parts.append(f"{summary.waiting} still being invited")
    return " · ".join(parts)


def summary_blocks(batch: InviteBatch, summary: Summary) -> list[dict[str, Any]]:
    who = approved_by(batch)
    icon = ":warning:" if summary.failed else ":white_check_mark:"
    blocks = [section(f"{icon} Approved by {who}. {summary_line(summary)}.")]
    if summary.already:
        more = len(summary.already) - SHOWN
        names = ", ".join(escape(e) for e in summary.already[:SHOWN])
        blocks.append(context(f"Already members: {names}{f' and {more} more' if more > 0 else ''}"))
    if summary.failed:
        by_reason: dict[str, list[str]] = {}
        for member in summary.failed:
            reason = member.failure.message if member.failure else "unknown"
            by_reason.setdefault(reason, []).append(member.details.email)
        lines = []
        for reason, emails in list(by_reason.items())[:SHOWN]:
            more = len(emails) - 5
            names = ", ".join(escape(e) for e in emails[:5]) + (
                f" and {more} more" if more > 0 else ""
            )
            lines.append(f"• {names}: {escape(reason)}")
        more = len(by_reason) - SHOWN
        if more > 0:
            lines.append(f"• …and {counted(more, 'more reason')}")
        blocks += sections(["*Failed:*", *lines])
        blocks.append(retry_button(batch, len(summary.failed)))
    if summary.invited:
        overdue = [
            m
            for m in summary.invited
            if m.status is Status.INVITED and m.link_overdue_at and not m.link_attempted
        ]
        blocks.append(context(_links_whereabouts(batch, summary)))
        if overdue:
            more = len(overdue) - SHOWN
            names = ", ".join(f"<@{m.invitee_slack_id}>" for m in overdue[:SHOWN])
            names += f" and {more} more" if more > 0 else ""
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
    rest = len(summary.invited) - in_slack - withheld - len(lost)
    requester = f"<@{batch.requester_id}>"
    said = []
    if in_slack:
        said.append(
            f"{in_slack} in Slack {'was' if in_slack == 1 else 'were'} asked by DM to accept"
        )
    if rest and said:
        other = "link of the other one" if rest == 1 else f"links of the other {rest}"
        said.append(f"the acceptance {other} went to {requester} by DM")
    elif rest:
        links = "The acceptance link" if rest == 1 else f"The acceptance links of all {rest}"
        said.append(f"{links} went to {requester} by DM")
    if withheld:
        links = "1 acceptance link" if withheld == 1 else f"{withheld} acceptance links"
        said.append(f"{links} could not be sent: Slack refused {requester} the DM")
    if lost:
        said.append(answer_lost(all(m.awork_email_skipped for m in lost), len(lost)))
    return "; ".join(part.rstrip(".") for part in said) + "."


def _answer_lost(member: InviteRequest) -> bool:
    """Found in awork after its answer was lost: there is no code, so no acceptance link."""
    return member.result is not None and member.result.invitation_code is None


# --- telling the requester --------------------------------------------------------------------


def batch_waiting_notice(batch: InviteBatch) -> str:
    left_out = _skipped(batch.skipped)
    note = f" {left_out}." if left_out else ""
    return (
        f":inbox_tray: Your request to invite {people(len(batch.entries))} to awork is waiting "
        f"for an approver (request `{batch.id}`). I'll tell you by DM when it is decided."
        f"{route_words(batch)}{note}"
    )


def batch_outcome_notice(batch: InviteBatch, summary: Summary) -> str:
    """For the requester, by DM (later news), naming the channel where they asked."""
    return _batch_outcome_words(batch, summary) + asked_in(batch.origin_channel)


def _batch_outcome_words(batch: InviteBatch, summary: Summary) -> str:
    who = f"<@{batch.decided_by}>" if batch.decided_by else "An approver"
    count = people(len(batch.entries))
    if batch.status is BatchStatus.DENIED:
        return f":no_entry: {who} denied your request to invite {count}: {escape(batch.deny_reason or '')}"
    if batch.status is BatchStatus.EXPIRED:
        return f":hourglass: Your request to invite {count} expired without a decision."
    who = approved_by(batch, "An approver")
    failed = "".join(
        f"\n• {escape(m.details.email)}: {escape(m.failure.message if m.failure else '')}"
        for m in summary.failed[:SHOWN]
    )
    more = len(summary.failed) - SHOWN
    failed += f"\n…and {more} more" if more > 0 else ""
    return f":white_check_mark: {who} approved your request `{batch.id}`: {summary_line(summary)}.{failed}"


def batch_links(batch: InviteBatch, links: list[tuple[str, str]], part: int, parts: int) -> str:
    """The requester's DM with acceptance links for invitees who aren't in Slack. Credentials:
    a DM only."""
    these = "This person isn't" if len(links) == 1 else "These people aren't"
    head = (
        f":key: Acceptance links for request `{batch.id}` ({part} of {parts}). {these} in this "
        "Slack; pass each link privately to its person (each works for 24 hours):"
    )
    return head + "".join(
        f"\n• {escape(email)}: <{link}|accept the invitation>" for email, link in links
    )


def batch_reminder(batch: InviteBatch) -> str:
    return (
        f":bell: Still waiting for a decision: <@{batch.requester_id}> asked to invite "
        f"{people(len(batch.entries))} {slack_date(batch.created_at)}."
    )


def batch_status_card(batch: InviteBatch, summary: Summary | None) -> list[dict[str, Any]]:
    """`/invite status bat-…`: the batch as its approval message shows it, without buttons."""
    _, message = batch_approval_message(batch, summary)
    return [section(item_line(batch)), *(b for b in message if b.get("type") != "actions")]


def batch_refusal(batch: InviteBatch | None, reason: str | None) -> str:
    """Why a click on a batch's message changed nothing, said privately to the clicker."""
    if batch is not None and reason == "already_retried":
        said = f"Nothing changed: that “Retry failed” of request `{batch.id}` was clicked already"
        if batch.status is BatchStatus.RUNNING:
            return f"{said}; retry {batch.run - 1} is running."
        return (
            f"{said}, and retry {batch.run - 1} has run. The message shows who still fails, "
            "with a new button if anyone does."
        )
    return refusal(batch, reason, batch_already_decided)


def batch_already_decided(batch: InviteBatch) -> str:
    who = approved_by(batch, "someone else")
    denier = f"<@{batch.decided_by}>" if batch.decided_by else "someone else"
    words = {
        BatchStatus.PENDING: "is still waiting",
        BatchStatus.RUNNING: f"was approved by {who} and is being invited",
        BatchStatus.DONE: f"was approved by {who} and is done",
        BatchStatus.DENIED: f"was already denied by {denier}",
        BatchStatus.EXPIRED: "expired without a decision",
    }[batch.status]
    return f"Nothing changed: the request `{batch.id}` for {people(len(batch.entries))} {words}."
