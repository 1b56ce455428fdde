"""The stored request: its states, approval rule, schedule and Slack bookkeeping; and the base
it shares with a batch."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field, model_validator

from bot.domain.awork_models import INVITATION_VALIDITY, InvitationResult
from bot.domain.clock import utcnow
from bot.domain.details import InviteDetails, Reason, field_label
from bot.i18n import _


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
    POLICY = "policy"  # an approved domain of INVITE_POLICY: invited without an approver


# The approvers hear that an invitee's DM could not be delivered after INVITE_REMIND_AFTER,
# but at the latest this long after the invitation, while its 24 hours still leave time.
LINK_NOTICE_LATEST = INVITATION_VALIDITY / 2


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


class WorkflowStep(BaseModel):
    """The Workflow Builder step run that asked for a request (bot/domain/steps.py), and
    whether it has been completed."""

    execution_id: str
    workflow_execution_id: str | None = None
    done: bool = False  # functions.completeSuccess / completeError went through


def said(stored: str | None) -> str:
    """A reason stored on a record (`lapse_reason`, a failure's message) in the language being
    spoken: ours is stored as its English msgid and translated here; awork's own words pass
    unchanged, no catalog has them. "" for none (gettext would answer "" with its header)."""
    return _(stored) if stored else ""


class Failure(BaseModel):
    """Why an approved invitation failed. `message` is the English sentence (as stored before
    texts were translated, and for logs); `msgid` is our text's English msgid, `values` fill
    its `{fields}` - the address, awork's own words and codes, never translated - and `fields`
    are awork's validation errors (property, awork's message), said with the form's labels as
    `{reasons}`. Shown with `said()`, in the reader's language."""

    code: str
    message: str
    retryable: bool = False
    msgid: str | None = None
    values: dict[str, str] = {}
    fields: list[tuple[str, str]] = []

    def said(self) -> str:
        """The failure in the language being spoken (stored without a msgid: its message,
        translated when it is one of ours)."""
        if not self.msgid:
            return said(self.message)
        values = dict(self.values)
        if self.fields:
            values["reasons"] = "; ".join(
                f"{said(field_label(name, name))}: {message}".strip(": ")
                for name, message in self.fields
            )
        return _(self.msgid, **values)


def new_request_id() -> str:
    return "inv-" + secrets.token_hex(6)


StatusT = TypeVar("StatusT", bound=StrEnum)


class Decidable(BaseModel, Generic[StatusT]):
    """What a single request and a batch share: who asked, where, for which role and teams;
    the approvals and the decision; the work lease; and what Slack has been told. The
    services decide both the same way (bot/services/decisions.py)."""

    id: str
    status: StatusT
    version: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    requester_id: str
    origin_channel: str | None = None
    role_name: str | None = None
    role_is_admin: bool = False
    team_names: list[str] = []
    approvals: list[str] = []  # approvers so far (an admin role needs two distinct ones)
    approvals_needed: int = 1  # 2: awork's admin role (one when no other approver can decide)
    approval_rule: ApprovalRule | None = None  # decided at approval (bot.domain.approval)
    approval_message: MessageRef | None = None
    # The policy (INVITE_POLICY): the rule that said where it goes, or that it needs no
    # approver; and its route's channel and approvers, kept with it (a change of the policy
    # applies to new requests). No route: INVITE_ADMIN_CHANNEL and INVITE_APPROVERS.
    policy_rule: str | None = None
    route: str | None = None
    route_channel: str | None = None
    route_approvers: list[str] = []
    decided_by: str | None = None
    decided_at: datetime | None = None
    deny_reason: Reason | None = None
    # Who is working on it (inviting, joining, running a batch) and until when: a lease on the
    # store's clock, renewed while the work goes on; another instance takes over only after
    # it expired.
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    claim_until: datetime | None = None
    claim_id: str | None = None  # new with every claim: a stale holder's renewal is refused
    # Slack deliveries, so that a failed or interrupted post is redone, and done once.
    shown_status: StatusT | None = None
    waiting_told: bool = False
    outcome_told: bool = False
    # When a reminder was decided on (once), whether it reached the approval thread, and
    # whether the requester was told (by DM) that the approvers were reminded.
    reminded_at: datetime | None = None
    reminder_posted: bool = False
    reminder_told: bool = False
    messages: list[PostedMessage] = []
    delivery_failures: int = 0
    next_delivery_at: datetime | None = None
    # The short lease of whoever brings Slack up to date (handlers/delivery/courier.py).
    lease_owner: str | None = None
    lease_until: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _told_of_reminders_before(cls, data: Any) -> Any:
        """Stored before requesters heard of reminders: a reminder posted then counts as told,
        so an upgrade does not send days-old "I reminded the approvers" DMs."""
        if isinstance(data, dict) and "reminder_told" not in data:
            data = {**data, "reminder_told": bool(data.get("reminder_posted"))}
        return data

    def pending_news(self) -> bool:
        """While pending: the "waiting" notice, a reminder or its DM to the requester is
        still to be delivered."""
        return (
            not self.waiting_told
            or (self.reminded_at is not None and not self.reminder_posted)
            or (self.reminder_posted and not self.reminder_told)
        )


class InviteRequest(Decidable[Status]):
    """One person's request to invite one person; the unit of approval and of state."""

    id: str = Field(default_factory=new_request_id)
    status: Status = Status.PENDING
    details: InviteDetails
    attempts: int = 0
    # When the invitation was first sent to awork, and whether an attempt may have reached
    # awork without us knowing (then the next attempt looks before it sends).
    invite_started_at: datetime | None = None
    uncertain: bool = False
    # An attempt whose answer was lost is *unsure* (bot/domain/settling.py): since when, how
    # often awork was asked since, and whether the one further POST that a confirmed absence
    # allows went out. While unsure the lease (`claim_until`) runs to the next look, which any
    # instance's sweep then makes, found by the due index.
    unsure_since: datetime | None = None
    unsure_checks: int = 0
    resent: bool = False
    unsure_told: bool = False  # the requester heard that awork is slow to answer
    result: InvitationResult | None = None
    failure: Failure | None = None
    link_attempted: bool = False
    link_sent_to: str | None = None
    # An invitee in Slack whose DM could not be delivered: retried, never sent to anyone else;
    # when the approvers were told so (decided once, see `link_notice_at`).
    link_overdue_at: datetime | None = None
    # The invitee's Slack id, looked up at approval; they alone may accept from Slack.
    invitee_slack_id: str | None = None
    # Slack did not say whether the invitee is a member (a batch's run could not read its
    # members whole; a lookup before a request's link went failed): asked again before their
    # link goes to the requester, and the approvers told if it is still unsent (`link_notice_at`).
    invitee_unknown: bool = False
    awork_email_skipped: bool = False
    joined_at: datetime | None = None
    followed_at: datetime | None = None  # last looked at while INVITED (joined? lapsed?)
    lapse_reason: str | None = None
    reinvited_as: str | None = None
    reinvite_of: str | None = None
    # A member of a batch: approved with the batch, shown on the batch's message; the run of
    # the batch ("Retry failed" starts another) that last claimed it.
    batch_id: str | None = None
    batch_run: int = 0
    # Asked by a Workflow Builder step run (bot/domain/steps.py), completed with the outcome.
    step: WorkflowStep | None = None

    def step_outcome(self) -> str | None:
        """What the step run that asked is to be completed with, once known and not yet done:
        invited, denied, expired or failed - a failure approvers may still retry too: the
        workflow is not kept waiting on a click that may never come."""
        if self.step is None or self.step.done:
            return None
        if self.status in (Status.INVITED, Status.JOINING, Status.JOINED, Status.LAPSED):
            return "invited"
        if self.status in (Status.DENIED, Status.EXPIRED):
            return self.status.value
        if self.status is Status.FAILED:
            return "failed"
        return None

    def needs_delivery(self) -> bool:
        """Whether Slack has not yet been told everything about this request."""
        if self.step_outcome() is not None:
            return True
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
            return self.pending_news()
        if self.status is Status.INVITING and self.unsure_since is not None:
            return not self.unsure_told
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
        """When the approvers are to hear that the DM to an invitee in Slack (or one Slack has
        not said is a member) has not been delivered yet: INVITE_REMIND_AFTER after the
        invitation, at the latest halfway through its 24 hours. None when that is not (or no
        longer) to be said."""
        if (
            self.status is not Status.INVITED
            or self.link_attempted
            or self.link_overdue_at is not None
            # (a batch's member not known to be in Slack waits on its batch's list instead)
            or (self.invitee_slack_id is None and not (self.invitee_unknown and not self.batch_id))
            or self.result is None
        ):
            return None
        return self.result.issued_at + min(remind_after, LINK_NOTICE_LATEST)

    @property
    def is_open(self) -> bool:
        """Still asked for: a new request for the same address would be a duplicate."""
        return self.status in OPEN_STATUSES

    @property
    def holds_address(self) -> bool:
        """Whether a new request for the same address is pointless: still asked for, or
        invited or joined (awork has the address; a lapsed invitation lets it go)."""
        return self.is_open or self.status in (Status.INVITED, Status.JOINED)

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

    @property
    def link_withheld(self) -> bool:
        """Whether the acceptance link of an invitee who is not in Slack went nowhere: Slack
        refused the requester the DM that was to carry it (handlers/delivery/links.py)."""
        return (
            self.link_attempted
            and self.link_sent_to is None
            and self.invitee_slack_id is None
            and self.result is not None
            and self.result.invitation_code is not None
        )
