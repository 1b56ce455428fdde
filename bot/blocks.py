"""Block Kit builders: pure functions from domain models to Slack dicts, and back for form state.

Every piece of user text goes through `escape` before it is put into mrkdwn.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.models import (
    FIELD_LABELS,
    FLOW_LABELS,
    PLANS,
    ApprovalRule,
    InviteRequest,
    MessageRef,
    Role,
    Status,
    Team,
)

NOT_FOUND_TEXT = "I can't find that invitation request any more."
# The slash command's documented name; the texts name the one actually installed
# (`/awork-invite` where Slack keeps `/invite`), passed in as `command`.
DEFAULT_COMMAND = "/invite"
INVITE_FORM = "invite_form"
DENY_REASON = "deny_reason"
APPROVE = "approve_invite"
DENY = "deny_invite"
RETRY = "retry_invite"
ACCEPT = "accept_invite"
INVITE_AGAIN = "invite_again"

TEXT_FIELDS = {  # block id -> (label, max length, placeholder)
    "email": (FIELD_LABELS["email"], 254, "name@company.com"),
    "firstName": (FIELD_LABELS["firstName"], 100, None),
    "lastName": (FIELD_LABELS["lastName"], 100, None),
    "title": (FIELD_LABELS["title"], 100, "e.g. Dr."),
    "position": (FIELD_LABELS["position"], 200, "e.g. Creative Director"),
}
GENDERS = (("male", "Male"), ("female", "Female"), ("other", "Other"))
FLOWS = tuple(FLOW_LABELS.items())  # (awork's value, the words people choose)
NOTE_MAX = 1000
REASON_MAX = 500


def escape(text: object) -> str:
    """Make user text inert in mrkdwn: `<!channel>`, `<@U1>` and links become plain text."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain(text: str, limit: int = 150) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:limit], "emoji": True}


TEXT_MAX = 3000  # Slack's limit on a section's (and a context element's) text


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text[:TEXT_MAX]}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": mrkdwn(text)}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [mrkdwn(text)]}


def sections(lines: list[str], kind: Callable[[str], dict[str, Any]] = section) -> list[dict]:
    """Lines as few sections (or `kind` blocks) as Slack's 3,000 characters each allow: long
    text is split over blocks, never cut - the last lines are the ones approvers decide on."""
    result: list[dict[str, Any]] = []
    current = ""
    for line in lines:
        for piece in pieces(line):
            if current and len(current) + 1 + len(piece) > TEXT_MAX:
                result.append(kind(current))
                current = piece
            else:
                current = f"{current}\n{piece}" if current else piece
    if current:
        result.append(kind(current))
    return result


def pieces(line: str, limit: int = TEXT_MAX) -> list[str]:
    """A line longer than `limit` broken into parts that fit, at a space where there is one,
    never inside an entity (`&amp;`) or a `<…>` mention or link."""
    result = []
    while len(line) > limit:
        cut = line.rfind(" ", limit // 2, limit) + 1 or limit
        amp, lt = line.rfind("&", 0, cut), line.rfind("<", 0, cut)
        if amp > 0 and ";" not in line[amp:cut]:
            cut = amp
        if lt > 0 and ">" not in line[lt:cut]:
            cut = min(cut, lt)
        result.append(line[:cut].rstrip())
        line = line[cut:]
    return [*result, line]


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """A count with its noun in agreement: "1 person", "3 people"."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def people(count: int) -> str:
    return counted(count, "person", "people")


def shortened(names: list[str], shown: int) -> str:
    """Escaped names, the first `shown` of them and "and N more"."""
    listed = ", ".join(escape(name) for name in names[:shown])
    return listed + (f" and {len(names) - shown} more" if len(names) > shown else "")


def fitted(name: str, marker: str, limit: int) -> str:
    """`name` + `marker` within `limit` characters: the name is cut, never the marker."""
    if len(name) + len(marker) <= limit:
        return name + marker
    return name[: max(0, limit - len(marker) - 1)] + "…" + marker


def asked_in(channel: str | None) -> str:
    """For news that reaches a requester by DM: a line naming the channel where they asked
    (nothing when unknown, or when that was a direct message)."""
    if not channel or channel.startswith("D"):
        return ""
    return f"\nYou asked in <#{channel}>."


def approved_by(record: Any, nobody: str = "an approver") -> str:
    """Who approved a request or a batch: both approvers of an admin role's two approvals,
    else the one who decided."""
    given = list(dict.fromkeys(record.approvals))
    if len(given) >= 2:
        return " and ".join(f"<@{user}>" for user in given)
    return f"<@{record.decided_by}>" if record.decided_by else nobody


OPTION_MAX = 75  # Slack's limit on an option's text


def option(value: str, text: str) -> dict[str, Any]:
    return {"text": plain(text, OPTION_MAX), "value": value[:150]}


def slack_date(when: datetime) -> str:
    """A date Slack shows in each reader's own time zone."""
    stamp = int(when.timestamp())
    fallback = when.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{stamp}^{{date_short_pretty}} at {{time}}|{fallback}>"


# --- the invite form -----------------------------------------------------------------------


def _input(
    block_id: str,
    label: str,
    element: dict[str, Any],
    optional: bool = True,
    hint: str | None = None,
) -> dict[str, Any]:
    element = {**element, "action_id": block_id}
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "label": plain(label),
        "optional": optional,
        "element": element,
    }
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def _text_input(
    block_id: str,
    label: str,
    max_length: int,
    placeholder: str | None = None,
    initial: str | None = None,
    optional: bool = True,
    multiline: bool = False,
    hint: str | None = None,
) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "max_length": max_length}
    if multiline:
        element["multiline"] = True
    if placeholder:
        element["placeholder"] = plain(placeholder)
    if initial:
        element["initial_value"] = initial
    return _input(block_id, label, element, optional=optional, hint=hint)


def invite_form(
    origin_channel: str | None, advanced: bool, email: str | None = None
) -> dict[str, Any]:
    """The `/invite` modal. Approvers also get the advanced (new workspace) part."""
    blocks: list[dict[str, Any]] = []
    for block_id, (label, max_length, placeholder) in TEXT_FIELDS.items():
        blocks.append(
            _text_input(
                block_id,
                label,
                max_length,
                placeholder,
                initial=email if block_id == "email" else None,
                optional=block_id != "email",
            )
        )
    blocks += [
        _input(
            "gender",
            FIELD_LABELS["gender"],
            {"type": "static_select", "options": [option(v, t) for v, t in GENDERS]},
        ),
        _input(
            "roleId",
            FIELD_LABELS["roleId"],
            {
                "type": "external_select",
                "min_query_length": 0,
                "placeholder": plain("Type to search awork roles"),
            },
        ),
        _input(
            "teamIds",
            FIELD_LABELS["teamIds"],
            {
                "type": "multi_external_select",
                "min_query_length": 0,
                "placeholder": plain("Type to search awork teams"),
            },
        ),
        _input(
            "skipSendingEmail",
            FIELD_LABELS["skipSendingEmail"],
            {"type": "checkboxes", "options": [option("true", "Don't send awork's welcome email")]},
        ),
        _text_input(
            "note",
            FIELD_LABELS["note"],
            NOTE_MAX,
            "Why this person needs access",
            multiline=True,
        ),
    ]
    if advanced:
        blocks += [
            {"type": "divider"},
            {"type": "header", "text": plain("Advanced (approvers only)")},
            _input(
                "workspaceId",
                FIELD_LABELS["workspaceId"],
                {
                    "type": "radio_buttons",
                    "options": [
                        option("current", "Invite into this workspace"),
                        option("new", "Create a new workspace for them"),
                    ],
                    "initial_option": option("current", "Invite into this workspace"),
                },
            ),
            _input(
                "planId",
                FIELD_LABELS["planId"],
                {
                    "type": "static_select",
                    "placeholder": plain("Free"),
                    "options": [option(v, t) for v, t in PLANS.items()],
                },
                hint="Only with a new workspace. Empty means the free plan.",
            ),
            _input(
                "invitationFlow",
                FIELD_LABELS["invitationFlow"],
                {"type": "static_select", "options": [option(v, t) for v, t in FLOWS]},
                hint=(
                    f"Empty: “{FLOW_LABELS['invite']}” here, "
                    f"“{FLOW_LABELS['new_user_new_workspace']}” with a new workspace."
                ),
            ),
            _input(
                "bookedSeats",
                FIELD_LABELS["bookedSeats"],
                {
                    "type": "number_input",
                    "is_decimal_allowed": False,
                    "min_value": "1",
                    "max_value": "100000",
                },
            ),
            _text_input("connectInviteCode", FIELD_LABELS["connectInviteCode"], 200),
        ]
    return {
        "type": "modal",
        "callback_id": INVITE_FORM,
        "title": plain("Invite to awork", 24),
        "submit": plain("Ask for approval", 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps({"channel": origin_channel}),
        "blocks": blocks,
    }


def flow_words(flow: str) -> str:
    """An invitation flow as the form names it (awork's value only when it has no words)."""
    return FLOW_LABELS.get(flow) or escape(flow)


def plan_words(plan_id: str | None) -> str:
    """A plan as the form names it; none is awork's free plan."""
    return PLANS.get(plan_id or "free") or escape(plan_id)


def form_fields(state_values: Any) -> dict[str, Any]:
    """The submitted form as awork field names (camelCase) -> plain Python values.

    Tolerates any shape: what is not an element Slack would send is left out, so validation
    answers for it ("Please fill this in") instead of the listener failing."""
    fields: dict[str, Any] = {}
    if not isinstance(state_values, dict):
        return fields
    for block_id, actions in state_values.items():
        element = actions.get(block_id) if isinstance(actions, dict) else None
        if not isinstance(element, dict):
            continue
        kind = element.get("type")
        if kind in ("plain_text_input", "number_input"):
            value: Any = element.get("value")
        elif kind in ("static_select", "external_select", "radio_buttons"):
            value = _option_value(element.get("selected_option"))
        elif kind in ("multi_external_select", "multi_static_select"):
            value = [v for v in map(_option_value, _options(element)) if v is not None]
        elif kind == "checkboxes":
            value = bool(_options(element))
        else:
            continue
        fields[block_id] = value
    if "workspaceId" in fields:
        fields["newWorkspace"] = fields.pop("workspaceId") == "new"
        if not fields["newWorkspace"]:
            # A select cannot be cleared in Slack: a plan picked before switching back to this
            # workspace is set aside, not refused (the form could not be sent otherwise).
            fields.pop("planId", None)
    return fields


def _options(element: dict[str, Any]) -> list[Any]:
    selected = element.get("selected_options")
    return selected if isinstance(selected, list) else []


def _option_value(selected: Any) -> Any:
    return selected.get("value") if isinstance(selected, dict) else None


def role_options(roles: list[Role]) -> list[dict[str, Any]]:
    """The role picker's options: an admin role keeps its "(admin)" however long its name."""
    return [
        option(role.id, fitted(role.name, " (admin)" if role.is_admin_role else "", OPTION_MAX))
        for role in roles
    ]


def team_options(teams: list[Team]) -> list[dict[str, Any]]:
    return [option(team.id, team.name) for team in teams]


# --- deciding ------------------------------------------------------------------------------


def _subject(request: Any) -> str:
    """Who a request (or a batch: `entries`) is about."""
    entries = getattr(request, "entries", None)
    return people(len(entries)) if entries else escape(request.details.email)


def deny_reason_modal(request: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": DENY_REASON,
        "title": plain("Deny request", 24),
        "submit": plain("Deny", 24),
        "close": plain("Cancel", 24),
        "private_metadata": request.id,
        "blocks": [
            section(f"Deny the invitation of *{_subject(request)}*?"),
            _text_input(
                "reason",
                "Reason (the requester sees it)",
                REASON_MAX,
                multiline=True,
                optional=False,
            ),
        ],
    }


TEAMS_SHOWN = 20  # team names listed on a message; the rest are counted
DEFAULT_ROLE = "awork's default role"  # no role chosen: awork gives its default


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
        buttons = _buttons(request, (APPROVE, "Approve", "primary"), (DENY, "Deny", "danger"))
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
        blocks.append(_buttons(request, (RETRY, "Try again", "primary")))
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


def _buttons(request: Any, *buttons: tuple[str, str, str]) -> dict[str, Any]:
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


# --- lists and App Home ------------------------------------------------------------------------

PAGE_SIZE = 20  # two blocks a request, plus header and footer: within Block Kit's 50 per message
HOME_SHOWN = PAGE_SIZE * 2  # own requests on the App Home: the first page of `/invite mine`


STATUS_WORDS = {
    Status.PENDING: ":inbox_tray: waiting for approval",
    Status.INVITING: ":hourglass_flowing_sand: being invited",
    Status.INVITED: ":envelope: invited",
    Status.FAILED: ":warning: awork refused",
    Status.DENIED: ":no_entry: denied",
    Status.JOINING: ":hourglass_flowing_sand: joining",
    Status.JOINED: ":tada: joined",
    Status.LAPSED: ":hourglass: lapsed",
    Status.EXPIRED: ":hourglass: expired",
}


def request_line(request: InviteRequest) -> str:
    d = request.details
    who = f"{escape(d.full_name)} · " if d.full_name else ""
    return f"*{who}{escape(d.email)}* — {STATUS_WORDS[request.status]} · `{request.id}` · asked {slack_date(request.created_at)}"


def _page(items: list[Any], page: int, size: int) -> tuple[list[Any], int, int]:
    pages = max(1, -(-len(items) // size))
    page = min(max(page, 1), pages)
    return items[(page - 1) * size : page * size], page, pages


def _is_batch(item: Any) -> bool:
    return hasattr(item, "entries")


BATCH_WORDS = {
    "pending": ":inbox_tray: waiting for approval",
    "running": ":hourglass_flowing_sand: being invited",
    "done": ":envelope: done",
    "denied": ":no_entry: denied",
    "expired": ":hourglass: expired",
}


def batch_line(batch: Any) -> str:
    """A batch (many people in one request) in a list."""
    return (
        f"*{people(len(batch.entries))}* ({escape(batch.entries[0].email)}"
        f"{', …' if len(batch.entries) > 1 else ''}) — "
        f"{BATCH_WORDS[str(batch.status)]} · `{batch.id}` · asked {slack_date(batch.created_at)}"
    )


def item_line(item: Any) -> str:
    return batch_line(item) if _is_batch(item) else request_line(item)


def pending_list(
    requests: list[Any], page: int = 1, command: str = DEFAULT_COMMAND
) -> list[dict[str, Any]]:
    """`/invite pending`: open requests (and batches) with their buttons, a page at a time."""
    shown, page, pages = _page(requests, page, PAGE_SIZE)
    result = [section(f"*Waiting for a decision: {len(requests)}*")]
    for request in shown:
        result.append(section(item_line(request)))
        if _is_batch(request):
            count = len(request.entries)
            approve = f"Approve all {count}" if count > 1 else "Approve"
            result.append(
                _buttons(request, (APPROVE, approve, "primary"), (DENY, "Deny", "danger"))
            )
        elif request.status is Status.PENDING:
            result.append(
                _buttons(request, (APPROVE, "Approve", "primary"), (DENY, "Deny", "danger"))
            )
        else:
            result.append(_buttons(request, (RETRY, "Try again", "primary")))
    if pages > 1:
        result.append(
            context(f"Page {page} of {pages}. More: `{command} pending {page % pages + 1}`")
        )
    return result


def my_list(
    requests: list[Any], page: int = 1, command: str = DEFAULT_COMMAND
) -> list[dict[str, Any]]:
    """`/invite mine`: a requester's own requests (and batches) with their status."""
    shown, page, pages = _page(requests, page, PAGE_SIZE * 2)
    result = [section(f"*Your invitation requests: {len(requests)}*")]
    result += [section(item_line(request)) for request in shown]
    if pages > 1:
        result.append(context(f"Page {page} of {pages}. More: `{command} mine {page % pages + 1}`"))
    if not requests:
        result.append(context(f"None yet. `{command}` asks for one."))
    return result


def status_card(request: InviteRequest) -> list[dict[str, Any]]:
    """`/invite status <id>`: one request, as its approval message shows it."""
    _, message = approval_message(request)
    actions_free = [block for block in message if block.get("type") != "actions"]
    return [section(request_line(request)), *actions_free]


def home_view(
    waiting: list[Any], mine: list[Any], approver: bool, command: str = DEFAULT_COMMAND
) -> dict[str, Any]:
    """The App Home tab: 'Waiting for you' for approvers, 'Your requests' for everyone.
    `command`: the slash command as installed (last seen in a command)."""
    result: list[dict[str, Any]] = []
    if approver:
        result += pending_list(waiting, command=command)[:60]
        result.append({"type": "divider"})
    result += home_mine(mine, command)
    return {"type": "home", "blocks": result[:100]}


def home_mine(mine: list[Any], command: str = DEFAULT_COMMAND) -> list[dict[str, Any]]:
    """'Your requests' on the App Home: the newest page of them, and when there are more, how
    many and the command that lists the rest (within the 100 blocks of a Home tab)."""
    shown = my_list(mine[:HOME_SHOWN], command=command)
    if len(mine) <= HOME_SHOWN:
        return shown
    shown[0] = section(f"*Your invitation requests: {len(mine)}*")
    return [
        *shown,
        context(
            f"Showing the newest {HOME_SHOWN} of {len(mine)}. `{command} mine` lists them all, "
            f"a page at a time: `{command} mine 2` shows the next."
        ),
    ]


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
        _buttons(request, (INVITE_AGAIN, "Invite again", "primary")),
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
        _buttons(request, (ACCEPT, "Accept invitation", "primary")),
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


def permalink(team_domain: str | None, ref: MessageRef | None) -> str | None:
    """A link to a message, built the way Slack's own permalinks look (no API call)."""
    if not team_domain or ref is None:
        return None
    return f"https://{team_domain}.slack.com/archives/{ref.channel}/p{ref.ts.replace('.', '')}"


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


# --- sandbox mode ----------------------------------------------------------------------------

SANDBOX_NOTE = ":test_tube: *sandbox — no real invitation*"


def label_sandbox(payload: dict[str, Any], block_limit: int = 50) -> dict[str, Any]:
    """A message (or a modal, with `block_limit` 100) marked as coming from the awork sandbox."""
    labelled = dict(payload)
    if "text" in labelled or "blocks" not in labelled:
        text = labelled.get("text") or ""
        labelled["text"] = f"{text} (sandbox — no real invitation)".strip()
    if labelled.get("blocks") is not None:
        labelled["blocks"] = [context(SANDBOX_NOTE), *labelled["blocks"]][:block_limit]
    return labelled
