"""Domain models: what awork speaks (camelCase, as in its spec) and what the bot stores.

Nothing here knows about Slack.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

from bot.text import clean_line, clean_lines, clean_text

Gender = Literal["male", "female", "other"]
InvitationFlow = Literal["invite", "new_user_new_workspace", "existing_user_new_workspace"]
NEW_WORKSPACE_FLOWS: tuple[str, ...] = ("new_user_new_workspace", "existing_user_new_workspace")
# What people read for awork's values; the values themselves are what awork is sent.
FLOW_LABELS: dict[str, str] = {
    "invite": "Invite into this workspace",
    "new_user_new_workspace": "New user, new workspace",
    "existing_user_new_workspace": "Existing awork user, new workspace",
}
# awork's plans for a new workspace. awork's published spec lists no plan ids (its later
# revision no longer has `planId` at all), so these names are the values sent - the ones
# bot/sandbox.py takes.
PLANS: dict[str, str] = {
    "free": "Free",
    "basic": "Basic",
    "business": "Business",
    "enterprise": "Enterprise",
}
# Each field as the invite form labels it (bot/forms.py builds the form with these), so an
# error names the field as people see it, never as awork spells it.
FIELD_LABELS: dict[str, str] = {
    "email": "Email",
    "firstName": "First name",
    "lastName": "Last name",
    "title": "Title",
    "position": "Position",
    "gender": "Gender",
    "roleId": "Role",
    "teamIds": "Teams",
    "skipSendingEmail": "Welcome email",
    "note": "Note to the approvers",
    "workspaceId": "Workspace",
    "newWorkspace": "Workspace",
    "planId": "Plan",
    "invitationFlow": "Invitation flow",
    "bookedSeats": "Booked seats",
    "connectInviteCode": "awork connect invite code",
}
INVITATION_VALIDITY = timedelta(hours=24)

# Invisible and control characters are taken out of everything a person types (bot/text.py).
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


def utcnow() -> datetime:
    return datetime.now(UTC)


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


class InviteDetails(BaseModel):
    """The invitation a requester asks for, as collected by the form.

    Field names are awork's (camelCase aliases), so form block ids, error keys and the
    awork body line up. `newWorkspace` stands for awork's "workspaceId left unset".
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    email: Annotated[EmailStr, Clean, StringConstraints(max_length=254)]
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
                errors["planId"] = "A plan can only be chosen when creating a new workspace."
            if self.invitation_flow in NEW_WORKSPACE_FLOWS:
                errors["invitationFlow"] = (
                    f"“{FLOW_LABELS[self.invitation_flow]}” creates a new workspace: choose "
                    f"“{FLOW_LABELS['invite']}”, or a new workspace under Workspace."
                )
        elif self.invitation_flow == "invite":
            errors["invitationFlow"] = (
                f"“{FLOW_LABELS['invite']}” does not create a workspace: choose "
                f"“{FLOW_LABELS['new_user_new_workspace']}” or "
                f"“{FLOW_LABELS['existing_user_new_workspace']}”."
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


def field_label(name: str, unknown: str = "A field") -> str:
    """A field as the form labels it: `lastName` -> "Last name" (awork's `LastName` too);
    `unknown` for a name the form does not have."""
    by_lower = {key.lower(): label for key, label in FIELD_LABELS.items()}
    return by_lower.get(str(name).lower(), unknown)


def errors_in_words(errors: dict[str, str]) -> list[str]:
    """Field errors for text that is not shown under the field itself: "Last name: …"."""
    return [f"{field_label(name)}: {message}" for name, message in errors.items()]


def _blank(text: str) -> bool:
    return not clean_text(text).strip()


def _friendly(error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if error["loc"] and error["loc"][0] == "email" and kind != "missing":
        return "That doesn't look like an email address."
    if kind == "missing":
        return "Please fill this in."
    if kind in ("string_too_long", "too_long"):
        return f"Too long (at most {ctx.get('max_length')} characters)."
    if kind in ("greater_than_equal", "less_than_equal", "int_parsing", "int_from_float"):
        return "Please give a whole number from 1 to 100000."
    if kind == "extra_forbidden":
        return "This field is not accepted here."
    return "This value is not accepted."


# --- the stored request ---------------------------------------------------------------------


class Status(StrEnum):
    PENDING = "pending"
    INVITING = "inviting"
    INVITED = "invited"
    FAILED = "failed"
    DENIED = "denied"
    JOINING = "joining"  # the invitee clicked Accept; awork is being asked
    JOINED = "joined"
    LAPSED = "lapsed"  # the code expired or awork refused it; "Invite again" is offered
    EXPIRED = "expired"  # nobody decided in time (INVITE_EXPIRE_AFTER)


class ApprovalRule(StrEnum):
    """Which rule decided (or decides) a request, as the approval message says it."""

    ONE = "one"  # an ordinary role: one approval
    TWO = "two"  # awork's admin role, and a second approver exists: two approvals
    # An admin role approved by one, because no other approver could decide: the only other
    # approver is the requester (who cannot approve their own request), or there is none.
    ALONE_REQUESTER = "alone_requester"
    ALONE_NO_OTHER = "alone_no_other"


# The approvers hear that an invitee's DM could not be delivered after INVITE_REMIND_AFTER,
# but at the latest this long after the invitation, while its 24 hours still leave time.
LINK_NOTICE_LATEST = INVITATION_VALIDITY / 2


def told_of_reminders_before(data: Any) -> Any:
    """A request or batch stored before requesters heard of reminders: a reminder posted then
    counts as told, so an upgrade does not send days-old "I reminded the approvers" DMs."""
    if isinstance(data, dict) and "reminder_told" not in data:
        data = {**data, "reminder_told": bool(data.get("reminder_posted"))}
    return data


OPEN_STATUSES = frozenset({Status.PENDING, Status.INVITING, Status.JOINING})
SETTLED_STATUSES = frozenset(
    {Status.INVITED, Status.FAILED, Status.DENIED, Status.JOINED, Status.LAPSED, Status.EXPIRED}
)


@dataclass(frozen=True)
class Schedule:
    """When pending requests are reminded about and expire (INVITE_REMIND_AFTER/EXPIRE_AFTER)."""

    remind_after: timedelta = timedelta(hours=24)
    expire_after: timedelta = timedelta(days=7)
    # An invitation is looked at again this often until it is joined or lapsed (the catalog's
    # refresh of awork's members, INVITE_CATALOG_REFRESH_SECONDS, tells which).
    follow_every: timedelta = timedelta(minutes=5)

    def pending_due(self, created_at: datetime, reminded_at: datetime | None) -> datetime:
        expiry = created_at + self.expire_after
        return expiry if reminded_at is not None else min(created_at + self.remind_after, expiry)


class MessageRef(BaseModel):
    channel: str
    ts: str


class PostedMessage(MessageRef):
    kind: str
    at: datetime = Field(default_factory=utcnow)


class AuditEvent(BaseModel):
    at: datetime = Field(default_factory=utcnow)
    event: str
    request_id: str | None = None
    actor: str | None = None
    detail: dict[str, Any] = {}


class Failure(BaseModel):
    code: str
    message: str
    retryable: bool = False


def new_request_id() -> str:
    return "inv-" + secrets.token_hex(6)


class InviteRequest(BaseModel):
    """One person's request to invite one person; the unit of approval and of state."""

    id: str = Field(default_factory=new_request_id)
    status: Status = Status.PENDING
    version: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    requester_id: str
    origin_channel: str | None = None
    details: InviteDetails
    role_name: str | None = None
    role_is_admin: bool = False
    team_names: list[str] = []
    approvals: list[str] = []  # approvers so far (an admin role needs two distinct ones)
    approvals_needed: int = 1  # 2: awork's admin role (one when no other approver can decide)
    approval_rule: ApprovalRule | None = None  # decided at approval (bot.approval)
    approval_message: MessageRef | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    deny_reason: Reason | None = None
    attempts: int = 0
    # Who is working on it (inviting or joining) and until when: a lease on the store's clock,
    # renewed before every awork call; another instance takes over only after it expired.
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    claim_until: datetime | None = None
    claim_id: str | None = None  # new with every claim: a stale holder's renewal is refused
    # When the invitation was first sent to awork, and whether an attempt may have reached
    # awork without us knowing (then the next attempt looks before it sends).
    invite_started_at: datetime | None = None
    uncertain: bool = False
    result: InvitationResult | None = None
    failure: Failure | None = None
    # Slack deliveries, so that a failed or interrupted post is redone, and done once.
    shown_status: Status | None = None
    waiting_told: bool = False
    outcome_told: bool = False
    link_attempted: bool = False
    link_sent_to: str | None = None
    # An invitee in Slack whose DM could not be delivered: retried, never sent to anyone else;
    # when the approvers were told so (decided once, see `link_notice_at`).
    link_overdue_at: datetime | None = None
    # The invitee's Slack id, looked up at approval; they alone may accept from Slack.
    invitee_slack_id: str | None = None
    awork_email_skipped: bool = False
    joined_at: datetime | None = None
    followed_at: datetime | None = None  # last looked at while INVITED (joined? lapsed?)
    lapse_reason: str | None = None
    reinvited_as: str | None = None
    reinvite_of: str | None = None
    messages: list[PostedMessage] = []
    # When a reminder was decided on (once), whether it reached the approval thread, and
    # whether the requester was told (by DM) that the approvers were reminded.
    reminded_at: datetime | None = None
    reminder_posted: bool = False
    reminder_told: bool = False

    @model_validator(mode="before")
    @classmethod
    def _told_of_reminders_before(cls, data: Any) -> Any:
        return told_of_reminders_before(data)

    delivery_failures: int = 0
    next_delivery_at: datetime | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    # A member of a batch: approved with the batch, shown on the batch's message; the run of
    # the batch ("Retry failed" starts another) that last claimed it.
    batch_id: str | None = None
    batch_run: int = 0

    def needs_delivery(self) -> bool:
        """Whether Slack has not yet been told everything about this request."""
        if self.batch_id is not None:
            # The batch's message and summary speak for its members; only an invitee who is in
            # Slack gets a DM of their own (the others' links go to the requester as a list).
            return (
                self.status is Status.INVITED
                and not self.link_attempted
                and self.invitee_slack_id is not None
            )
        if self.approval_message is None or self.shown_status is not self.status:
            return True
        if self.status is Status.PENDING:
            return (
                not self.waiting_told
                or (self.reminded_at is not None and not self.reminder_posted)
                or (self.reminder_posted and not self.reminder_told)
            )
        if self.status is Status.INVITED and not self.link_attempted:
            return True
        return self.status not in (Status.INVITING, Status.JOINING) and not self.outcome_told

    def due_at(self, schedule: Schedule) -> datetime | None:
        """When a sweep next has something to do for this request (None: nothing, ever)."""
        if self.status in (Status.INVITING, Status.JOINING):
            return self.claim_until or self.updated_at  # taken over once the lease expired
        times = []
        if self.needs_delivery():
            times.append(self.next_delivery_at or self.updated_at)
        if self.status is Status.PENDING and self.batch_id is None:
            times.append(schedule.pending_due(self.created_at, self.reminded_at))
        notice = self.link_notice_at(schedule.remind_after)
        if notice is not None:
            times.append(notice)
        if self.status is Status.INVITED and self.result is not None:
            # Followed until joined or lapsed: again after a while, and when the code runs out.
            again = (self.followed_at or self.updated_at) + schedule.follow_every
            expiry = self.result.expires_at
            times.append(
                again if self.followed_at and self.followed_at >= expiry else min(again, expiry)
            )
        return min(times) if times else None

    def link_notice_at(self, remind_after: timedelta) -> datetime | None:
        """When the approvers are to hear that the DM to an invitee in Slack has not been
        delivered yet: INVITE_REMIND_AFTER after the invitation, at the latest halfway through
        its 24 hours. None when that is not (or no longer) to be said."""
        if (
            self.status is not Status.INVITED
            or self.link_attempted
            or self.link_overdue_at is not None
            or self.invitee_slack_id is None
            or self.result is None
        ):
            return None
        return self.result.issued_at + min(remind_after, LINK_NOTICE_LATEST)

    @property
    def is_open(self) -> bool:
        """Still asked for: a new request for the same address would be a duplicate."""
        return self.status in OPEN_STATUSES

    @property
    def approvable(self) -> bool:
        """On the approvers' list: waiting for a decision, or a failure they may retry."""
        if self.batch_id is not None:
            return False
        retryable = self.failure is not None and self.failure.retryable
        return self.status is Status.PENDING or (self.status is Status.FAILED and retryable)

    @property
    def settled(self) -> bool:
        """Decided and told: nothing more will happen to it (it may move to the archive)."""
        return self.status in SETTLED_STATUSES and not self.needs_delivery()

    @property
    def accept_link_expired(self) -> bool:
        return self.result is not None and utcnow() >= self.result.expires_at


# --- a batch: many people in one request --------------------------------------------------------

BATCH_LIMIT = 500


class BatchStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"  # approved; invitations are being sent (again, after "Retry failed")
    DONE = "done"  # every member settled; the summary is shown
    DENIED = "denied"
    EXPIRED = "expired"


class Skipped(BaseModel):
    """A person left out of a batch at submission, and why ("member" or "open")."""

    email: str
    reason: Literal["member", "open", "repeated"]
    request_id: str | None = None


def new_batch_id() -> str:
    return "bat-" + secrets.token_hex(6)


class InviteBatch(BaseModel):
    """Up to 500 people asked for at once: one approval, then one invitation per person.

    Members are ordinary requests (`InviteRequest.batch_id`), created when the batch runs with
    ids derived from the batch's (`member_id`), so a resumed or repeated run finds them instead
    of inviting anyone twice."""

    id: str = Field(default_factory=new_batch_id)
    status: BatchStatus = BatchStatus.PENDING
    version: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    requester_id: str
    origin_channel: str | None = None
    entries: Annotated[list[InviteDetails], Field(min_length=1, max_length=BATCH_LIMIT)]
    skipped: list[Skipped] = []
    role_name: str | None = None
    role_is_admin: bool = False
    team_names: list[str] = []
    approvals: list[str] = []
    approvals_needed: int = 1
    approval_rule: ApprovalRule | None = None
    approval_message: MessageRef | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    deny_reason: Reason | None = None
    # The current run: 1 after approval, +1 for each "Retry failed"; who runs it, on a lease
    # (store clock) that the runner renews while it works.
    run: int = 0
    retrying: int = 0  # how many people a "Retry failed" run retries (its progress counts them)
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    claim_until: datetime | None = None
    claim_id: str | None = None
    finished_at: datetime | None = None
    # Slack deliveries (as for a request): what the approval message shows, notices, links.
    shown_status: BatchStatus | None = None
    shown_run: int = 0
    waiting_told: bool = False
    outcome_told: bool = False
    links_listed: bool = False
    # Bumped (by compare-and-set) when a member's DM to its invitee is overdue or delivered
    # after all, so the summary on the message is shown again; `shown_link_news` is the count
    # the message shows.
    link_news: int = 0
    shown_link_news: int = 0
    reminded_at: datetime | None = None
    reminder_posted: bool = False
    reminder_told: bool = False

    @model_validator(mode="before")
    @classmethod
    def _told_of_reminders_before(cls, data: Any) -> Any:
        return told_of_reminders_before(data)

    messages: list[PostedMessage] = []
    delivery_failures: int = 0
    next_delivery_at: datetime | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None

    @property
    def details(self) -> InviteDetails:
        """The shared part (role, teams, email setting) as carried by the first entry."""
        return self.entries[0]

    def member_id(self, index: int) -> str:
        return f"inv-{self.id.removeprefix('bat-')}-{index:03d}"

    def due_at(self, schedule: Schedule) -> datetime | None:
        """When a sweep next has something to do for this batch (None: nothing, ever)."""
        if self.status is BatchStatus.RUNNING:
            return self.claim_until or self.updated_at  # taken over once the lease expired
        times = []
        if self.needs_delivery():
            times.append(self.next_delivery_at or self.updated_at)
        if self.status is BatchStatus.PENDING:
            times.append(schedule.pending_due(self.created_at, self.reminded_at))
        return min(times) if times else None

    @property
    def is_open(self) -> bool:
        return self.status in (BatchStatus.PENDING, BatchStatus.RUNNING)

    @property
    def approvable(self) -> bool:
        return self.status is BatchStatus.PENDING

    @property
    def settled(self) -> bool:
        done = (BatchStatus.DONE, BatchStatus.DENIED, BatchStatus.EXPIRED)
        return self.status in done and not self.needs_delivery()

    def needs_delivery(self) -> bool:
        if self.approval_message is None or self.shown_status is not self.status:
            return True
        if self.status is BatchStatus.PENDING:
            return (
                not self.waiting_told
                or (self.reminded_at is not None and not self.reminder_posted)
                or (self.reminder_posted and not self.reminder_told)
            )
        if self.status is BatchStatus.DONE:
            return (
                self.shown_run != self.run
                or self.shown_link_news != self.link_news
                or not self.outcome_told
                or not self.links_listed
            )
        return self.status is not BatchStatus.RUNNING and not self.outcome_told
