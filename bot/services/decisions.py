"""One decision path for single requests and batches: approve, deny, expire, by
compare-and-set.

A record is decided by approvers only (`Approvers`), while it is pending. An approval is
checked against the approval rule of now (`bot.domain.approval`) and stored with the
approvals it requires unchanged, so concurrent clicks never both count; the approval that
completes it claims the work in the same write (`Work.claim`): inviting a request, or the
first run of a batch. Exactly one caller ever gets `ok` for that. A deny is checked first
(`can_deny`, before the reason is asked for) and then made the same way. What differs
between a request and a batch - how it is read, what the completing approval starts, the
states and the audit events' names - is said by `RequestDecisions` and `BatchDecisions`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar

from bot.domain import approval
from bot.domain.batches import BatchStatus, InviteBatch
from bot.domain.clock import utcnow
from bot.domain.records import Decidable, InviteRequest, Status
from bot.domain.text import clean_text
from bot.services.leases import Work
from bot.store import Store
from bot.store.leasing import DeliveryLease

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Decidable)


class Refusal(StrEnum):
    NOT_FOUND = "not_found"
    NOT_APPROVER = "not_approver"
    ALREADY_DECIDED = "already_decided"
    NOT_INVITEE = "not_invitee"
    NOT_REQUESTER = "not_requester"
    ALREADY_APPROVED = "already_approved"  # this approver's approval is in; another is needed
    OWN_REQUEST = "own_request"  # another approver exists to decide it
    ALREADY_RETRIED = "already_retried"  # a batch's "Retry failed" button whose run is over


@dataclass(frozen=True)
class Decision(Generic[R]):
    """What came of an approve/deny/retry: `request` (a request or a batch) is as stored after
    the attempt."""

    request: R | None
    refusal: Refusal | None = None

    @property
    def ok(self) -> bool:
        return self.refusal is None


class Approvers:
    """Who may decide: fixed ids, or the current answer of a directory (user groups); a
    request on a route of the policy (INVITE_POLICY) is decided by that route's approvers."""

    def __init__(
        self,
        source: frozenset[str] | Callable[[], frozenset[str]],
        resolve: Callable[[Iterable[str]], frozenset[str]] | None = None,
        on_routes: Callable[[], frozenset[str]] | None = None,
    ) -> None:
        self._source = source
        self._resolve = resolve or (lambda ids: frozenset(ids))
        self._on_routes = on_routes or frozenset

    def now(self) -> frozenset[str]:
        """The default approvers (INVITE_APPROVERS)."""
        return self._source() if callable(self._source) else self._source

    def of(self, record: Any) -> frozenset[str]:
        """Who decides `record` (a request, a batch, or either as listed): its route's
        approvers, else the default ones - and the default ones too when nobody on the route
        but its requester could decide it (nobody approves their own request alone)."""
        if not record.route_approvers:
            return self.now()
        route = self._resolve(record.route_approvers)
        return route if route - {record.requester_id} else route | self.now()

    def anyone(self) -> frozenset[str]:
        """Everyone who decides something: the default approvers and every route's."""
        return self.now() | self._on_routes()

    def __contains__(self, user_id: object) -> bool:
        return user_id in self.anyone()


class Decisions(Generic[R]):
    """Deciding one kind of record; the subclasses say what differs."""

    noun: str  # in log lines
    kind: type  # the records it decides
    events: str  # the audit events' prefix
    pending: StrEnum
    claimed: StrEnum  # where the approval that completes it moves it, with a work lease
    denied: StrEnum
    expired: StrEnum

    def __init__(self, store: Store, approvers: Approvers, work: Work) -> None:
        self.store = store
        self.approvers = approvers
        self.work = work

    def read(self, record_id: str) -> R | None:
        raise NotImplementedError

    def started(self, current: R, now: datetime) -> dict[str, object]:
        """What the approval that completes `current` sets besides the decision."""
        raise NotImplementedError

    def on_its_own(self, current: R) -> bool:
        """Whether `current` is decided by itself (a batch's member goes with its batch)."""
        return True

    # -- checks ------------------------------------------------------------------------------

    def decidable(self, record_id: str, user_id: str, status: StrEnum | None = None) -> Decision[R]:
        """The record, if it exists, `user_id` is an approver and it is (on its own) in
        `status` (pending unless said); else why not."""
        return self._check(self.read(record_id), user_id, status)

    def _guess(self, record_id: str) -> tuple[R | None, bool]:
        """The record as this process saw it last, when the store keeps that (its version is
        then required by the compare-and-set that follows), else as read now: (the record,
        whether it is that guess)."""
        record, guessed = self.store.recent(record_id)
        return (record if isinstance(record, self.kind) else None), guessed

    def _check(self, current: R | None, user_id: str, status: StrEnum | None = None) -> Decision[R]:
        if current is None:
            return Decision(None, Refusal.NOT_FOUND)
        if user_id not in self.approvers.of(current):
            return Decision(current, Refusal.NOT_APPROVER)
        if not self.on_its_own(current) or current.status is not (status or self.pending):
            return Decision(current, Refusal.ALREADY_DECIDED)
        return Decision(current)

    def can_deny(self, record_id: str, approver_id: str) -> Decision[R]:
        """Whether a deny may start (the reason is asked for before anything is changed)."""
        return self.decidable(record_id, approver_id)

    # -- deciding ----------------------------------------------------------------------------

    def approve(
        self,
        record_id: str,
        approver_id: str,
        own_allowed: bool = False,
        lease: DeliveryLease | None = None,
    ) -> Decision[R]:
        """Record an approval; the one that completes the record claims its work. `ok` with
        the record still pending means a first of two approvals was recorded. Whether an
        admin role needs that second one is decided here, against the approvers of now, and
        stored with the approvals by compare-and-set - with `lease`, the delivery lease of the
        round that shows it, taken in the same write.

        Decided first on the version this process saw last (`Store.recent`), written only if
        the record is still that version; a refusal, or a change since, is decided again on the
        record as stored."""
        current, guessed = self._guess(record_id)
        for _ in range(5):  # a concurrent approval changed the list: again, on the stored one
            checked = self._check(current, approver_id)
            verdict = None
            if current is not None and checked.ok:
                approvers = self.approvers.of(current)
                verdict = approval.decide(current, approver_id, approvers, own_allowed)
            if guessed and (verdict is None or verdict.refusal is not None):
                current, guessed = self.read(record_id), False  # refused on a guess: read
                continue
            if current is None or not checked.ok or verdict is None:
                return checked
            if verdict.refusal is not None:
                return Decision(current, Refusal(verdict.refusal))
            changes: dict[str, object] = {
                "approvals": list(verdict.approvals),
                "approval_rule": verdict.rule,
            }
            if verdict.complete:
                now = utcnow()
                target, claim = self.claimed, self.work.claim
                changes.update(decided_by=approver_id, decided_at=now, **self.started(current, now))
            else:
                target, claim = self.pending, None
                changes.update(shown_status=None)
            detail = (
                {"rule": str(verdict.rule)}
                if verdict.complete and verdict.rule
                else {"of": current.approvals_needed}
            )
            # On a guess, the very version decided on; else the approvals (delivery bookkeeping
            # may change a record at any time without changing the decision).
            require = {"version": current.version} if guessed else {"approvals": current.approvals}
            ok, record = self.store.transition(
                record_id,
                {self.pending},
                target,
                require=require,
                claim=claim,
                audit=(f"{self.events}approved", approver_id, detail),  # in the same write
                lease=lease,
                **changes,
            )
            if ok:
                log.info("%s %s approved by %s", self.noun, record_id, approver_id)
                return Decision(record)
            # As stored (read again if it was archived since the guess: only live ones are changed)
            current = record if isinstance(record, self.kind) else self.read(record_id)
            guessed = False
        return Decision(self.read(record_id), Refusal.ALREADY_DECIDED)

    def deny(self, record_id: str, approver_id: str, reason: str) -> Decision[R]:
        reason = clean_text(reason, multiline=True)  # the audit log gets it clean too
        decision = self.can_deny(record_id, approver_id)
        if not decision.ok:
            return decision
        ok, record = self.store.transition(
            record_id,
            {self.pending},
            self.denied,
            audit=(f"{self.events}denied", approver_id, {"reason": reason}),  # in the same write
            decided_by=approver_id,
            decided_at=utcnow(),
            deny_reason=reason,
        )
        if not ok:
            return Decision(record, Refusal.ALREADY_DECIDED)
        log.info("%s %s denied by %s", self.noun, record_id, approver_id)
        return Decision(record)

    def remind_and_expire(
        self, records: Iterable[Any], remind_after: timedelta, expire_after: timedelta
    ) -> list[str]:
        """Decide, once each (times are stored), on reminders and expiry of pending records.
        Returns the ids whose Slack messages now need bringing up to date."""
        now, changed = utcnow(), []
        for record in records:
            if record.status is not self.pending:
                continue
            age = now - record.created_at
            if age >= expire_after:
                ok, _ = self.store.transition(
                    record.id, {self.pending}, self.expired, decided_at=now, outcome_told=False
                )
                event = f"{self.events}expired"
                detail = {"after_days": round(age.total_seconds() / 86400, 1)}
            elif age >= remind_after and record.reminded_at is None:
                ok, _ = self.store.transition(
                    record.id,
                    {self.pending},
                    self.pending,
                    require={"reminded_at": None},
                    reminded_at=now,
                )
                event, detail = "reminded", {}
            else:
                continue
            if ok:
                self.store.record(event, record.id, **detail)
                changed.append(record.id)
        return changed


class RequestDecisions(Decisions[InviteRequest]):
    noun = "request"
    kind = InviteRequest
    events = ""
    pending = Status.PENDING
    claimed = Status.INVITING
    denied = Status.DENIED
    expired = Status.EXPIRED

    def read(self, record_id: str) -> InviteRequest | None:
        return self.store.get(record_id)

    def started(self, current: InviteRequest, now: datetime) -> dict[str, object]:
        """The next attempt at inviting."""
        return {
            "failure": None,
            "attempts": current.attempts + 1,
            "invite_started_at": current.invite_started_at or now,
            "outcome_told": False,
        }

    def on_its_own(self, current: InviteRequest) -> bool:
        return current.batch_id is None

    def approve(
        self,
        record_id: str,
        approver_id: str,
        own_allowed: bool = False,
        lease: DeliveryLease | None = None,
    ) -> Decision[InviteRequest]:
        """As for any record; and a request whose invitation failed in a way worth retrying
        is claimed for inviting again by an approver's click (once however many click)."""
        decision = super().approve(record_id, approver_id, own_allowed, lease)
        current = decision.request
        if (
            decision.refusal is not Refusal.ALREADY_DECIDED
            or current is None
            or current.status is not Status.FAILED
            or not current.approvable
        ):
            return decision
        ok, request = self.store.transition(
            record_id,
            {Status.FAILED},
            Status.INVITING,
            require={"version": current.version},  # `attempts` counted on it
            claim=self.work.claim,
            lease=lease,
            **self.started(current, utcnow()),
        )
        if not ok:
            return Decision(request, Refusal.ALREADY_DECIDED)
        self.store.record("retried", record_id, approver_id)
        log.info("request %s retried by %s", record_id, approver_id)
        return Decision(request)


class BatchDecisions(Decisions[InviteBatch]):
    noun = "batch"
    kind = InviteBatch
    events = "batch_"
    pending = BatchStatus.PENDING
    claimed = BatchStatus.RUNNING
    denied = BatchStatus.DENIED
    expired = BatchStatus.EXPIRED

    def read(self, record_id: str) -> InviteBatch | None:
        return self.store.get_batch(record_id)

    def started(self, current: InviteBatch, now: datetime) -> dict[str, object]:
        """The first run."""
        return {"run": 1}
