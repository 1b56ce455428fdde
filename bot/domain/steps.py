"""The Workflow Builder step "Invite to awork" (`invite_to_awork`, a custom step): its inputs
read into what the invite form would have collected, and when its run can be completed.

A run (`function_executed`) makes at most one request: the request's id is derived from the
run's execution id, so a retried or repeated delivery of the same run finds it. The run is
completed once the request's outcome is known - invited (or already a member), denied,
expired, refused by awork - as part of the request's delivery to Slack, so a restart or a
lost answer delays it but never loses it. Pure: the caller passes awork's cached roles and
teams.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from bot.domain.awork_models import Role, Team
from bot.domain.details import InviteDetails, parse_details
from bot.domain.inline import resolve
from bot.domain.records import WorkflowStep
from bot.i18n import _

__all__ = ["STEP_CALLBACK_ID", "WorkflowStep", "read_inputs", "step_request_id"]

STEP_CALLBACK_ID = "invite_to_awork"
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
# The step's inputs by the form field each one fills.
INPUT_OF = {
    "email": "email",
    "firstName": "first_name",
    "lastName": "last_name",
    "roleId": "role",
    "teamIds": "teams",
    "note": "note",
    "skipSendingEmail": "skip_email",
}


def step_request_id(execution_id: str) -> str:
    """The one request a step run may make (a request id's shape: `inv-` and 12 hex)."""
    return "inv-" + hashlib.sha256(execution_id.encode()).hexdigest()[:12]


def read_inputs(
    inputs: dict[str, Any], roles: Sequence[Role], teams: Sequence[Team]
) -> tuple[InviteDetails | None, str | None, list[str]]:
    """The details and the requester a run's inputs ask for, or what is wrong with them: one
    plain sentence per input (in the current language), naming it by its id."""
    errors: list[str] = []
    requester = inputs.get("requester")
    if not isinstance(requester, str) or not USER_ID.match(requester):
        errors.append(
            _(
                "Input {input}: give the Slack user on whose behalf to ask.",
                input="requester",
            )
        )
        requester = None
    fields: dict[str, Any] = {}
    for field, name in (
        ("email", "email"),
        ("firstName", "first_name"),
        ("lastName", "last_name"),
        ("note", "note"),
    ):
        value = inputs.get(name)
        if value is not None and not isinstance(value, str):
            errors.append(_("Input {input}: give text.", input=name))
        elif value is not None:
            fields[field] = value
    role = inputs.get("role")
    if isinstance(role, str) and role.strip():
        found, problem = resolve(role, roles, "role")
        if problem:
            errors.append(_("Input {input}: {problem}", input="role", problem=problem))
        else:
            fields["roleId"] = found.id
    elif role not in (None, ""):
        errors.append(_("Input {input}: give an awork role's name.", input="role"))
    wanted = inputs.get("teams") or []
    if isinstance(wanted, str):
        wanted = [wanted]
    if not isinstance(wanted, list) or not all(isinstance(team, str) for team in wanted):
        errors.append(_("Input {input}: give awork team names.", input="teams"))
        wanted = []
    team_ids = []
    for name in wanted:
        found, problem = resolve(name, teams, "team")
        if problem:
            errors.append(_("Input {input}: {problem}", input="teams", problem=problem))
        else:
            team_ids.append(found.id)
    fields["teamIds"] = team_ids
    skip = inputs.get("skip_email")
    if skip not in (None, True, False):
        errors.append(_("Input {input}: give true or false.", input="skip_email"))
    fields["skipSendingEmail"] = skip is True
    details, problems = parse_details(fields)
    errors += [
        _("Input {input}: {problem}", input=INPUT_OF.get(field, field), problem=message)
        for field, message in problems.items()
    ]
    if errors:
        return None, requester, errors
    return details, requester, []
