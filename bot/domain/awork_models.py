"""What awork speaks: its invitation body and answer, roles, teams and users (camelCase, as in
its spec). Nothing here knows about Slack."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_serializer,
)
from pydantic.alias_generators import to_camel

from bot.domain.clock import utcnow

Gender = Literal["male", "female", "other"]
InvitationFlow = Literal["invite", "new_user_new_workspace", "existing_user_new_workspace"]

INVITATION_VALIDITY = timedelta(hours=24)


class AworkModel(BaseModel):
    """awork's JSON uses camelCase; Python code uses snake_case."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


# --- awork API --------------------------------------------------------------------------------


class Invitation(AworkModel):
    """Body of `POST /invitations`. Fields left as None are not sent."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    email: str
    workspace_id: str | None = None
    plan_id: str | None = None
    invitation_flow: InvitationFlow | None = None
    role_id: str | None = None
    connect_invite_code: str | None = None
    passcode: str | None = None
    password: SecretStr | None = None
    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    position: str | None = None
    gender: Gender | None = None
    skip_sending_email: bool | None = None
    team_ids: list[str] | None = None
    booked_seats: int | None = None

    def to_body(self) -> dict[str, Any]:
        body = self.model_dump(by_alias=True, exclude_none=True, mode="json")
        if self.password is not None:
            body["password"] = self.password.get_secret_value()
        return body


class Workspace(AworkModel):
    id: str | None = None
    name: str | None = None


class InvitationResult(AworkModel):
    """Response of `POST /invitations`. Both codes are credentials.

    `invitation_code` is None when the invitation was found in awork after a crash or an
    ambiguous timeout rather than received: awork's own email then carries the link."""

    invitation_code: SecretStr | None = None
    password_reset_code: SecretStr | None = None
    user_id: str | None = None
    workspace: Workspace | None = None
    issued_at: datetime = Field(default_factory=utcnow)

    @property
    def expires_at(self) -> datetime:
        return self.issued_at + INVITATION_VALIDITY

    @field_serializer("invitation_code", "password_reset_code", when_used="json")
    def _reveal_for_store(self, value: SecretStr | None) -> str | None:
        # Only the store serialises to JSON; repr/str/logs still show '**********'.
        return value.get_secret_value() if value is not None else None


class Role(AworkModel):
    id: str
    name: str
    is_admin_role: bool = False
    is_guest_role: bool = False
    is_archived: bool = False


class Team(AworkModel):
    id: str
    name: str


class ContactInfo(AworkModel):
    type: str | None = None
    value: str | None = None


class UserStatus(AworkModel):
    invitation_accepted: bool = False
    is_deactivated: bool = False


class AworkUser(AworkModel):
    id: str
    created_on: datetime | None = None
    first_name: str | None = None
    last_name: str | None = None
    user_contact_infos: list[ContactInfo] | None = None
    status: UserStatus | None = None

    @property
    def emails(self) -> list[str]:
        return [
            info.value.lower()
            for info in self.user_contact_infos or []
            if info.type == "email" and info.value
        ]


# --- what a person asks for -----------------------------------------------------------------
