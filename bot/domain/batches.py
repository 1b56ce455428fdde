"""A batch: many people in one request, one approval."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from bot.domain.details import InviteDetails
from bot.domain.records import Decidable, InviteRequest, Schedule, Status

BATCH_LIMIT = 500
ALREADY_MEMBER = "already-exist-error"  # awork's code for someone in the workspace already


class BatchStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"  # approved; invitations are being sent (again, after "Retry failed")
    DONE = "done"  # every member settled; the summary is shown
    DENIED = "denied"
    EXPIRED = "expired"


class Skipped(BaseModel):
    """A person left out of a batch at submission, and why: already in awork, an open
    request, listed twice, on a blocked domain or over the requester's daily limit."""

    email: str
    reason: Literal["member", "open", "repeated", "blocked", "daily_limit"]
    request_id: str | None = None


def new_batch_id() -> str:
    return "bat-" + secrets.token_hex(6)


class InviteBatch(Decidable[BatchStatus]):
    """Up to 500 people asked for at once: one approval, then one invitation per person.

    Members are ordinary requests (`InviteRequest.batch_id`), created when the batch runs with
    ids derived from the batch's (`member_id`), so a resumed or repeated run finds them instead
    of inviting anyone twice."""

    id: str = Field(default_factory=new_batch_id)
    status: BatchStatus = BatchStatus.PENDING
    entries: Annotated[list[InviteDetails], Field(min_length=1, max_length=BATCH_LIMIT)]
    skipped: list[Skipped] = Field(default_factory=list)
    # The current run: 1 after approval, +1 for each "Retry failed"; who runs it is the claim
    # (its lease renewed while it runs).
    run: int = 0
    retrying: int = 0  # how many people a "Retry failed" run retries (its progress counts them)
    # Members whose awork answer was lost, still being settled when the run last paused; its
    # lease then runs to the first one's next look (bot/services/batch_run.py).
    unsure: int = 0
    finished_at: datetime | None = None
    # People awork did not invite (not counting those in awork already), as the last run
    # finished: the lists say "done, N failed" without reading the members.
    failed: int = 0
    # Slack deliveries besides the shared ones: the run the message shows, the links' list.
    shown_run: int = 0
    links_listed: bool = False
    # Bumped (by compare-and-set) when a member's DM to its invitee is overdue or delivered
    # after all, so the summary on the message is shown again; `shown_link_news` is the count
    # the message shows.
    link_news: int = 0
    shown_link_news: int = 0

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
            return self.pending_news()
        if self.status is BatchStatus.DONE:
            return (
                self.shown_run != self.run
                or self.shown_link_news != self.link_news
                or not self.outcome_told
                or not self.links_listed
            )
        return self.status is not BatchStatus.RUNNING and not self.outcome_told


@dataclass
class Prepared:
    """A list checked and ready to store: what will be asked for, and who was left out."""

    entries: list[InviteDetails] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class Summary:
    """Where a batch stands: who was invited, who is a member already, what failed and why."""

    invited: list[InviteRequest] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failed: list[InviteRequest] = field(default_factory=list)
    waiting: int = 0  # not yet (or still being) invited
    retried: int = 0  # settled by the current "Retry failed" run (run 2 on)

    @classmethod
    def of(cls, batch: InviteBatch, members: Iterable[InviteRequest | None]) -> Summary:
        """The summary of `batch` whose members (by index; None: not created yet) are these."""
        summary = cls(already=[s.email for s in batch.skipped if s.reason == "member"])
        for member in members:
            if member is None or member.status in (Status.PENDING, Status.INVITING):
                summary.waiting += 1
                continue
            if batch.run > 1 and member.batch_run == batch.run:
                summary.retried += 1
            if member.status is Status.FAILED:
                if is_member_already(member):
                    summary.already.append(member.details.email)
                else:
                    summary.failed.append(member)
            else:
                summary.invited.append(member)
        return summary

    @property
    def done(self) -> int:
        return len(self.invited) + len(self.already) + len(self.failed)


def is_member_already(member: InviteRequest) -> bool:
    """A member whose invitation awork refused because the person is in the workspace."""
    return member.failure is not None and member.failure.code == ALREADY_MEMBER
