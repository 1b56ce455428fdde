"""Block Kit for one request's approval message in the admin channel: who is asked for, the
approval rule, and the outcome as it stands (with its buttons). Pure functions from domain models
to Slack dicts; a batch's message (bot/ui/bulk_blocks.py) is built from the same pieces.

Every piece of user text goes through `escape` (bot/ui/mrkdwn.py) before it is put into mrkdwn.
"""

from __future__ import annotations

from typing import Any

from bot.domain.records import ApprovalRule, InviteRequest, Status, said
from bot.i18n import N_, _, ngettext, pgettext
from bot.ui.forms import GENDERS, flow_words, plan_words
from bot.ui.mrkdwn import (
    TEXT_MAX,
    approved_by,
    context,
    escape,
    pieces,
    plain,
    policy_note,
    section,
    sections,
    shortened,
    slack_date,
)
from bot.ui.whereabouts import link_whereabouts

STEP_NOTE = N_(
    ":zap: Asked from a workflow (the Workflow Builder step “Invite to awork”); "
    "the workflow goes on once this is decided"
)
APPROVE = "approve_invite"
DENY = "deny_invite"
RETRY = "retry_invite"

TEAMS_SHOWN = 20  # team names listed on a message; the rest are counted


def role_line(role_name: str | None) -> str:
    """The *Role:* line of a request's or a batch's message: awork's name, or its default."""
    role = escape(role_name) if role_name else _("awork's default role")
    return _("*Role:* {role}", role=role)


def gender_words(gender: str | None) -> str | None:
    """A gender as the form offers it ("Female"), in the language being spoken."""
    label = dict(GENDERS).get(gender or "")
    return _(label) if label else gender


def _summary(request: InviteRequest) -> list[str]:
    d = request.details
    if d.full_name:
        who = _("*Who:* {name} · {email}", name=escape(d.full_name), email=escape(d.email))
    else:
        who = _("*Who:* {email}", email=escape(d.email))
    lines = [who]
    extra = " · ".join(escape(x) for x in (d.title, d.position, gender_words(d.gender)) if x)
    if extra:
        lines.append(_("*Details:* {details}", details=extra))
    lines.append(role_line(request.role_name))
    if request.team_names:
        lines.append(_("*Teams:* {teams}", teams=shortened(request.team_names, TEAMS_SHOWN)))
    if d.skip_sending_email:
        lines.append(_("*Welcome email:* not sent"))
    if d.new_workspace:
        parts = [
            _("flow “{flow}”", flow=flow_words(d.flow)),
            _("plan {plan}", plan=plan_words(d.plan_id)),
        ]
        if d.booked_seats:
            parts.append(ngettext("{n} seat", "{n} seats", d.booked_seats))
        if d.connect_invite_code:
            parts.append(_("with a connect invite code"))
        lines.append(_("*New workspace:* {options}", options=", ".join(parts)))
    elif d.booked_seats or d.connect_invite_code:
        parts = (
            [ngettext("{n} booked seat", "{n} booked seats", d.booked_seats)]
            if d.booked_seats
            else []
        )
        if d.connect_invite_code:
            parts.append(_("with a connect invite code"))
        lines.append(_("*Options:* {options}", options=", ".join(parts)))
    return lines


def approval_message(request: InviteRequest) -> tuple[str, list[dict[str, Any]]]:
    """The admin-channel message for a request, in whatever state it is in."""
    d = request.details
    requester, email = f"<@{request.requester_id}>", escape(d.email)
    text = _("Invitation request for {email} from {requester}", email=email, requester=requester)
    blocks = [
        section(
            _("*{requester} asks to invite {email} to awork*", requester=requester, email=email)
        ),
        *sections(_summary(request)),  # split, never cut: its last lines are decided on
    ]
    if d.note:
        quoted = [
            "> " + piece
            for line in d.note.split("\n")
            for piece in pieces(escape(line), TEXT_MAX - 2)
        ]
        blocks += sections(quoted)
    blocks.append(context(asked_line(request)))
    policy = policy_note(request)
    if policy:
        blocks.append(context(policy))
    if request.step is not None:
        blocks.append(context(_(STEP_NOTE)))
    outcome = _outcome_blocks(request)
    note = approval_rule_note(request)
    if note and request.status is not Status.PENDING:  # pending: the note is in the outcome
        outcome.insert(1, context(note))
    return text, blocks + outcome


def asked_line(record: Any) -> str:
    """A request's or a batch's id and when it was asked."""
    return _("Request `{id}` · asked {date}", id=record.id, date=slack_date(record.created_at))


def mentions(users: list[str]) -> str:
    """People as mentions: "<@A>", "<@A> and <@B>", "<@A>, <@B> and <@C>"."""
    given = [f"<@{user}>" for user in users]
    if len(given) < 2:
        return "".join(given)
    return _("{first} and {second}", first=", ".join(given[:-1]), second=given[-1])


def approval_rule_note(record: Any) -> str | None:
    """How the admin-role rule applies to a request or a batch, as `bot.approval` decided it:
    two approvals, or one alone because no other approver could decide. None for an ordinary
    role, and once a request was denied or expired."""
    status = str(record.status)
    if record.approvals_needed < 2 or status in ("denied", "expired"):
        return None
    given = list(record.approvals)
    if status == "pending":
        if not given:
            return _(
                ":busts_in_silhouette: Admin role: two approvals are needed (0 of 2), "
                "or one when no other approver can decide"
            )
        return _(
            ":busts_in_silhouette: Admin role: a second approval is needed "
            "({given} of 2 approvals) — {approvers} approved, waiting for one more approver",
            given=len(given),
            approvers=mentions(given),
        )
    rule = record.approval_rule
    if rule is ApprovalRule.TWO:
        return _(
            ":busts_in_silhouette: Admin role: approved by {approvers} (two approvals)",
            approvers=mentions(given),
        )
    if not given:
        return None
    alone = f"<@{given[0]}>"
    if rule is ApprovalRule.ALONE_REQUESTER:
        return _(
            ":busts_in_silhouette: Admin role: approved by {approver} alone, because no other "
            "approver can decide (the requester cannot approve their own request)",
            approver=alone,
        )
    if rule is ApprovalRule.ALONE_NO_OTHER:
        return _(
            ":busts_in_silhouette: Admin role: approved by {approver} alone, because there is "
            "no other approver",
            approver=alone,
        )
    return None


def denied_line(record: Any) -> str:
    """A denied request's or batch's outcome on its message: who denied it, and why."""
    denier = f"<@{record.decided_by}>" if record.decided_by else _("an approver")
    return _(
        ":no_entry: *Denied by {denier}*: {reason}",
        denier=denier,
        reason=escape(record.deny_reason or ""),
    )


def expired_line() -> str:
    return _(":hourglass: *Expired*: nobody decided in time. The requester can ask again.")


def _outcome_blocks(request: InviteRequest) -> list[dict[str, Any]]:
    who = approved_by(request)
    if request.status is Status.PENDING:
        buttons = action_buttons(
            request,
            (APPROVE, pgettext("button", "Approve"), "primary"),
            (DENY, pgettext("button", "Deny"), "danger"),
        )
        note = approval_rule_note(request)
        return [context(note), buttons] if note else [buttons]
    if request.status is Status.INVITING:
        if request.unsure_since is not None:
            return [
                context(
                    _(
                        # While an invitation whose answer was lost is being settled
                        # (bot/domain/settling.py).
                        ":hourglass_flowing_sand: Approved by {who}. awork is slow to answer; "
                        "checking whether the invitation went through before anything is "
                        "sent again…",
                        who=who,
                    )
                )
            ]
        return [
            context(_(":hourglass_flowing_sand: Approved by {who}, inviting in awork…", who=who))
        ]
    if request.status in (Status.INVITED, Status.JOINING, Status.JOINED, Status.LAPSED):
        line = _(
            ":white_check_mark: *Approved by {who}* — invitation sent to {workspace}. {whereabouts}",
            who=who,
            workspace=workspace_name(request),
            whereabouts=link_whereabouts(request),
        )
        result = [section(line)]
        if request.status is Status.JOINED:
            invitee = (
                f"<@{request.invitee_slack_id}>"
                if request.invitee_slack_id
                else escape(request.details.email)
            )
            date = slack_date(request.joined_at or request.updated_at)
            result.append(
                section(_(":tada: *{invitee} joined* {date}", invitee=invitee, date=date))
            )
        elif request.status is Status.LAPSED:
            reason = escape(said(request.lapse_reason))
            result.append(
                section(_(":hourglass: *The invitation lapsed*: {reason}", reason=reason))
            )
        return result
    if request.status is Status.DENIED:
        return [section(denied_line(request))]
    if request.status is Status.EXPIRED:
        return [section(expired_line())]
    failure = request.failure
    reason = escape(failure.said() if failure else "")
    if failure and failure.retryable:
        line = _(
            ":warning: *Approved by {who}, but the invitation did not go through*: {reason}",
            who=who,
            reason=reason,
        )
    else:
        line = _(
            ":warning: *Approved by {who}, but awork refused*: {reason}", who=who, reason=reason
        )
    blocks = [section(line)]
    if failure and failure.retryable:
        blocks.append(action_buttons(request, (RETRY, pgettext("button", "Try again"), "primary")))
    return blocks


def failed_how(failure: Any) -> str:
    """How an approved invitation failed: awork refused it, or - worth a retry: awork did not
    answer, or its answers were lost and it has nobody - it did not go through."""
    if failure and failure.retryable:
        return _("the invitation did not go through")
    return _("awork refused")


def workspace_name(request: InviteRequest) -> str:
    """The workspace the invitation is into, by its name when awork gave one (else "awork")."""
    return known_workspace(request) or "awork"


def known_workspace(request: InviteRequest) -> str | None:
    """The workspace's name, escaped, when awork gave one; None when it did not (a text that
    says "… on awork" then says "awork" alone, not "awork on awork")."""
    result = request.result
    name = result.workspace.name if result and result.workspace and result.workspace.name else None
    return escape(name) if name else None


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
