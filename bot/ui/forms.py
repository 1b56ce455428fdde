"""The invite form and the deny-reason modal, and reading a submitted form back: pure
functions from domain models to Slack views, and from view state to awork's field names."""

from __future__ import annotations

import json
from typing import Any

from bot.domain.awork_models import Role, Team
from bot.domain.details import (
    FLOW_LABELS,
    NEW_WORKSPACE_FLOWS,
    PLANS,
    WORKSPACE_CHOICES,
    field_label,
)
from bot.i18n import N_, _, pgettext
from bot.ui.mrkdwn import OPTION_MAX, escape, fitted, option, people, plain, section

INVITE_FORM = "invite_form"
DENY_REASON = "deny_reason"

# Text fields: block id -> (max length, placeholder marked for the catalog); the labels are
# FIELD_LABELS'.
TEXT_FIELDS = {
    "email": (254, N_("name@company.com")),
    "firstName": (100, None),
    "lastName": (100, None),
    "title": (100, N_("e.g. Dr.")),
    "position": (200, N_("e.g. Creative Director")),
}
GENDERS = (("male", N_("Male")), ("female", N_("Female")), ("other", N_("Other")))
# The flow select's choices (awork's value, the words people choose): only the flows of a new
# workspace - "invite" is the Workspace field's "Invite into this workspace", not offered twice.
FLOWS = tuple((flow, FLOW_LABELS[flow]) for flow in NEW_WORKSPACE_FLOWS)
ADMIN_MARK = N_(" (admin)")  # after an admin role's name in the role picker
NOTE_MAX = 1000
REASON_MAX = 500


# --- the invite form -----------------------------------------------------------------------


def input_block(
    block_id: str,
    label: str,
    element: dict[str, Any],
    optional: bool = True,
    hint: str | None = None,
) -> dict[str, Any]:
    """An input block whose element answers to the block's id (how `form_fields` reads it)."""
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
    return input_block(block_id, label, element, optional=optional, hint=hint)


def invite_form(
    origin_channel: str | None, advanced: bool, initial: dict[str, str] | None = None
) -> dict[str, Any]:
    """The `/invite` modal. Approvers also get the advanced (new workspace) part. `initial`
    fills in text fields by block id (the message shortcut: the author's address and names),
    each cut to what its field takes, or Slack refuses the whole view."""
    given = initial or {}
    blocks: list[dict[str, Any]] = []
    for block_id, (max_length, placeholder) in TEXT_FIELDS.items():
        blocks.append(
            _text_input(
                block_id,
                field_label(block_id),
                max_length,
                _(placeholder) if placeholder else None,
                initial=(given.get(block_id) or "")[:max_length] or None,
                optional=block_id != "email",
            )
        )
    blocks += [
        input_block(
            "gender",
            field_label("gender"),
            {"type": "static_select", "options": [option(v, _(t)) for v, t in GENDERS]},
        ),
        role_input("roleId", field_label("roleId")),
        teams_input("teamIds", field_label("teamIds")),
        skip_email_input(),
        _text_input(
            "note",
            field_label("note"),
            NOTE_MAX,
            _("Why this person needs access"),
            multiline=True,
        ),
    ]
    if advanced:
        current = option("current", _(WORKSPACE_CHOICES["current"]))
        blocks += [
            {"type": "divider"},
            {"type": "header", "text": plain(_("Advanced (approvers only)"))},
            input_block(
                "workspaceId",
                field_label("workspaceId"),
                {
                    "type": "radio_buttons",
                    "options": [current, option("new", _(WORKSPACE_CHOICES["new"]))],
                    "initial_option": current,
                },
            ),
            input_block(
                "planId",
                field_label("planId"),
                {
                    "type": "static_select",
                    "placeholder": plain(PLANS["free"]),  # awork's plan names, as they are
                    "options": [option(v, t) for v, t in PLANS.items()],
                },
                hint=_("Only with a new workspace. Empty means the free plan."),
            ),
            input_block(
                "invitationFlow",
                field_label("invitationFlow"),
                {"type": "static_select", "options": [option(v, _(t)) for v, t in FLOWS]},
                hint=_(
                    "Only with a new workspace. Empty means “{flow}”.",
                    flow=_(FLOW_LABELS["new_user_new_workspace"]),
                ),
            ),
            input_block(
                "bookedSeats",
                field_label("bookedSeats"),
                {
                    "type": "number_input",
                    "is_decimal_allowed": False,
                    "min_value": "1",
                    "max_value": "100000",
                },
            ),
            _text_input("connectInviteCode", field_label("connectInviteCode"), 200),
        ]
    return {
        "type": "modal",
        "callback_id": INVITE_FORM,
        "title": plain(_("Invite to awork"), 24),
        "submit": plain(_("Ask for approval"), 24),
        "close": plain(_("Cancel"), 24),
        "private_metadata": json.dumps({"channel": origin_channel}),
        "blocks": blocks,
    }


def role_input(block_id: str, label: str) -> dict[str, Any]:
    """The role picker (awork's roles, searched as typed); left empty, awork's default role."""
    return input_block(
        block_id,
        label,
        {
            "type": "external_select",
            "min_query_length": 0,
            "placeholder": plain(_("Type to search awork roles")),
        },
        hint=_("Left empty: awork's default role."),
    )


def teams_input(block_id: str, label: str) -> dict[str, Any]:
    """The teams picker (awork's teams, searched as typed)."""
    return input_block(
        block_id,
        label,
        {
            "type": "multi_external_select",
            "min_query_length": 0,
            "placeholder": plain(_("Type to search awork teams")),
        },
    )


def skip_email_input() -> dict[str, Any]:
    """The checkbox that skips awork's welcome email (ticked: awork sends none)."""
    return input_block(
        "skipSendingEmail",
        field_label("skipSendingEmail"),
        {"type": "checkboxes", "options": [option("true", _("Don't send it"))]},
    )


def flow_words(flow: str) -> str:
    """An invitation flow as the form names it (awork's value only when it has no words)."""
    label = FLOW_LABELS.get(flow)
    return _(label) if label else escape(flow)


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
            # A select cannot be cleared in Slack: a plan or (new-workspace) flow picked before
            # switching back to this workspace is set aside, not refused (the form could not
            # be sent otherwise).
            fields.pop("planId", None)
            fields.pop("invitationFlow", None)
    return fields


def _options(element: dict[str, Any]) -> list[Any]:
    selected = element.get("selected_options")
    return selected if isinstance(selected, list) else []


def _option_value(selected: Any) -> Any:
    return selected.get("value") if isinstance(selected, dict) else None


def role_options(roles: list[Role]) -> list[dict[str, Any]]:
    """The role picker's options: an admin role keeps its "(admin)" however long its name."""
    return [
        option(role.id, fitted(role.name, _(ADMIN_MARK) if role.is_admin_role else "", OPTION_MAX))
        for role in roles
    ]


def team_options(teams: list[Team]) -> list[dict[str, Any]]:
    return [option(team.id, team.name) for team in teams]


# --- the deny-reason modal -----------------------------------------------------------------


def _subject(request: Any) -> str:
    """Who a request (or a batch: `entries`) is about."""
    entries = getattr(request, "entries", None)
    return people(len(entries)) if entries else escape(request.details.email)


def deny_answer_modal(text: str) -> dict[str, Any]:
    """In place of the deny-reason modal when the deny changed nothing: why (mrkdwn, so the
    approver who decided shows as Slack shows a mention, which a field error cannot), and only
    a button to close it."""
    return {
        "type": "modal",
        "title": plain(_("Deny request"), 24),
        "close": plain(_("Close"), 24),
        "blocks": [section(text)],
    }


def deny_reason_modal(request: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": DENY_REASON,
        "title": plain(_("Deny request"), 24),
        "submit": plain(pgettext("button", "Deny"), 24),
        "close": plain(_("Cancel"), 24),
        "private_metadata": request.id,
        "blocks": [
            section(_("Deny the invitation for *{who}*?", who=_subject(request))),
            _text_input(
                "reason",
                _("Reason (the requester sees it)"),
                REASON_MAX,
                multiline=True,
                optional=False,
            ),
        ],
    }
