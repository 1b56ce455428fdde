"""What a person asks for: the invitation's fields as the form collects them, validated, and
field errors in the form's own words."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidationError,
)
from pydantic.alias_generators import to_camel
from pydantic_core import CoreSchema, core_schema

from bot.domain.awork_models import Gender, Invitation, InvitationFlow
from bot.domain.text import clean_line, clean_lines, clean_text
from bot.i18n import N_, _, ngettext

NEW_WORKSPACE_FLOWS: tuple[str, ...] = ("new_user_new_workspace", "existing_user_new_workspace")
# What people read for awork's values; the values themselves are what awork is sent. Marked
# for the catalog here, translated where shown (`flow_words`, the form).
FLOW_LABELS: dict[str, str] = {
    "invite": N_("Invite into this workspace"),
    "new_user_new_workspace": N_("New user, new workspace"),
    "existing_user_new_workspace": N_("Existing awork user, new workspace"),
}
# The form's Workspace choice (`workspaceId`: this workspace or a new one). The flow select
# offers only the new-workspace flows: "invite" is what this workspace means, said here once.
WORKSPACE_CHOICES: dict[str, str] = {
    "current": FLOW_LABELS["invite"],
    "new": N_("Create a new workspace for them"),
}
# awork's plans for a new workspace. awork's published spec lists no plan ids (its later
# revision no longer has `planId` at all), so these names are the values sent - the ones
# bot/awork/sandbox.py takes. awork's own names: shown as they are, in every language.
PLANS: dict[str, str] = {
    "free": "Free",
    "basic": "Basic",
    "business": "Business",
    "enterprise": "Enterprise",
}
# Each field as the invite form labels it (bot/ui/forms.py builds the form with these), so an
# error names the field as people see it, never as awork spells it. Marked for the catalog;
# `field_label` translates. skipSendingEmail says what ticking it does (awork's welcome email
# is skipped), so that "…: yes" cannot read as "the email is sent".
FIELD_LABELS: dict[str, str] = {
    "email": N_("Email"),
    "firstName": N_("First name"),
    "lastName": N_("Last name"),
    "title": N_("Title"),
    "position": N_("Position"),
    "gender": N_("Gender"),
    "roleId": N_("Role"),
    "teamIds": N_("Teams"),
    "skipSendingEmail": N_("Skip awork's welcome email"),
    "note": N_("Note to the approvers"),
    "workspaceId": N_("Workspace"),
    "newWorkspace": N_("Workspace"),
    "planId": N_("Plan"),
    "invitationFlow": N_("Invitation flow"),
    "bookedSeats": N_("Booked seats"),
    "connectInviteCode": N_("awork connect invite code"),
}


class Email:
    """pydantic's `EmailStr` - the same schema, the same check (`pydantic.networks.validate_email`,
    so the same addresses pass with the same normal form and errors) - except that
    email_validator (20 ms of regular expressions) is imported at the first address checked,
    not when this module is: serving starts without it."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, _source: Any, _handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(cls._validate, core_schema.str_schema())

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        field_schema = handler(schema)
        field_schema.update(type="string", format="email")
        return field_schema

    @staticmethod
    def _validate(value: str, /) -> str:
        from pydantic.networks import validate_email  # imports email_validator once

        return validate_email(value)[1]


# Invisible and control characters are taken out of everything a person types (bot/domain/text.py).
Clean = BeforeValidator(clean_line)
CleanLines = BeforeValidator(clean_lines)
# Limits for free text; awork allows more for some, Slack messages stay readable with these.
Name = Annotated[str, Clean, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ShortText = Annotated[
    str, Clean, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]
Note = Annotated[
    str, CleanLines, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)
]
# A deny reason: its length is checked where it is typed (the modal); stored clean however it came.
Reason = Annotated[str, CleanLines, StringConstraints(strip_whitespace=True)]


class InviteDetails(BaseModel):
    """The invitation a requester asks for, as collected by the form.

    Field names are awork's (camelCase aliases), so form block ids, error keys and the
    awork body line up. `newWorkspace` stands for awork's "workspaceId left unset".
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    email: Annotated[Email, Clean, StringConstraints(max_length=254)]
    first_name: Name | None = None
    last_name: Name | None = None
    title: Name | None = None
    position: ShortText | None = None
    gender: Gender | None = None
    role_id: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    team_ids: Annotated[list[str], Field(max_length=100)] = []
    skip_sending_email: bool = False
    note: Note | None = None
    # Advanced, approvers only.
    new_workspace: bool = False
    plan_id: ShortText | None = None
    invitation_flow: InvitationFlow | None = None
    booked_seats: Annotated[int, Field(ge=1, le=100_000)] | None = None
    connect_invite_code: ShortText | None = None

    ADVANCED: ClassVar[tuple[str, ...]] = (
        "new_workspace",
        "plan_id",
        "invitation_flow",
        "booked_seats",
        "connect_invite_code",
    )

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    @property
    def flow(self) -> str:
        if self.invitation_flow:
            return self.invitation_flow
        return "new_user_new_workspace" if self.new_workspace else "invite"

    def uses_advanced(self) -> bool:
        defaults = InviteDetails.model_fields
        return any(getattr(self, name) != defaults[name].default for name in self.ADVANCED)

    def conflicts(self) -> dict[str, str]:
        """Cross-field rules, keyed by the field (camelCase) the message belongs on."""
        errors: dict[str, str] = {}
        if not self.new_workspace:
            if self.plan_id:
                errors["planId"] = _("A plan can only be chosen when creating a new workspace.")
            if self.invitation_flow in NEW_WORKSPACE_FLOWS:
                errors["invitationFlow"] = _(
                    "“{flow}” creates a new workspace: choose “{create}” under {field}.",
                    flow=_(FLOW_LABELS[self.invitation_flow]),
                    create=_(WORKSPACE_CHOICES["new"]),
                    field=field_label("workspaceId"),
                )
        elif self.invitation_flow == "invite":
            errors["invitationFlow"] = _(
                "“{flow}” does not create a workspace: choose “{new_user}” or “{existing_user}”.",
                flow=_(FLOW_LABELS["invite"]),
                new_user=_(FLOW_LABELS["new_user_new_workspace"]),
                existing_user=_(FLOW_LABELS["existing_user_new_workspace"]),
            )
        return errors

    def to_invitation(self, workspace_id: str | None, skip_email: bool = False) -> Invitation:
        """awork's body. `skip_email`: the bot delivers the invitation itself (Slack member)."""
        return Invitation(
            email=self.email,
            workspace_id=None if self.new_workspace else workspace_id,
            plan_id=self.plan_id if self.new_workspace else None,
            invitation_flow=self.flow,
            role_id=self.role_id,
            connect_invite_code=self.connect_invite_code,
            first_name=self.first_name,
            last_name=self.last_name,
            title=self.title,
            position=self.position,
            gender=self.gender,
            skip_sending_email=self.skip_sending_email or skip_email,
            team_ids=list(self.team_ids) or None,
            booked_seats=self.booked_seats,
        )


def parse_details(fields: dict[str, Any]) -> tuple[InviteDetails | None, dict[str, str]]:
    """Validate raw form fields; return the details or field errors keyed by camelCase name."""
    # A field of nothing but spaces and invisible characters counts as left empty.
    cleaned = {
        key: value
        for key, value in fields.items()
        if value not in (None, "", []) and not (isinstance(value, str) and _blank(value))
    }
    try:
        details = InviteDetails.model_validate(cleaned)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors(include_url=False, include_input=False):
            field = str(error["loc"][0]) if error["loc"] else "email"
            errors.setdefault(field, _friendly(error))
        return None, errors
    errors = details.conflicts()
    return (None, errors) if errors else (details, {})


def field_label(name: str, unknown: str | None = None) -> str:
    """A field as the form labels it, in the current language: `lastName` -> "Last name"
    (awork's `LastName` too); `unknown` (as it is) for a name the form does not have, else
    "A field"."""
    by_lower = {key.lower(): label for key, label in FIELD_LABELS.items()}
    label = by_lower.get(str(name).lower())
    if label is not None:
        return _(label)
    return unknown if unknown is not None else _("A field")


def errors_in_words(errors: dict[str, str]) -> list[str]:
    """Field errors for text that is not shown under the field itself: "Last name: …"."""
    return [f"{field_label(name)}: {message}" for name, message in errors.items()]


def _blank(text: str) -> bool:
    return not clean_text(text).strip()


def _friendly(error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if error["loc"] and error["loc"][0] == "email" and kind != "missing":
        return _("That doesn't look like an email address.")
    if kind == "missing":
        return _("Please fill this in.")
    if kind in ("string_too_long", "too_long") and isinstance(ctx.get("max_length"), int):
        if ctx.get("field_type") == "List":  # teams
            return _("Too many (at most {n}).", n=ctx["max_length"])
        return ngettext(
            "Too long (at most {n} character).",
            "Too long (at most {n} characters).",
            ctx["max_length"],
        )
    if kind in ("greater_than_equal", "less_than_equal", "int_parsing", "int_from_float"):
        return _("Please give a whole number from 1 to 100000.")
    if kind == "extra_forbidden":
        return _("This field is not accepted here.")
    return _("This value is not accepted.")


# --- the stored request ---------------------------------------------------------------------
