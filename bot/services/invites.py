"""The invite service: the rules of asking, deciding and inviting, apart from Slack.

Exactly one invitation per request:
- `approve` moves a request `pending -> inviting` by compare-and-set and takes a work lease on
  it (store clock); only that caller calls awork, and it renews the lease right before every
  request leaves for awork, to outlive that request (the client's timeouts plus a margin).
  A lost lease stops the call before it is sent.
- A POST that timed out or got a 5xx may have been carried out: before sending it again, awork
  is asked whether the invitee is there now. A connection that failed sent nothing: it is
  simply tried again after a backoff.
- After a crash, the sweep takes over `inviting` requests whose lease has expired - no process
  id is ever consulted - and settles them the same way: found in awork -> invited; not there
  -> invited now. An `already-exist-error` answering an invitation that may have been sent
  before is settled by looking the person up, never reported as "already a member".
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from bot.awork.client import AworkClient
from bot.awork.errors import AworkError, AworkUnavailable
from bot.domain import approval
from bot.domain.awork_models import AworkUser, InvitationResult
from bot.domain.clock import utcnow
from bot.domain.details import InviteDetails, field_label
from bot.domain.records import Failure, InviteRequest, Status
from bot.domain.text import clean_text
from bot.services.catalog import Catalog
from bot.store import Store

log = logging.getLogger(__name__)

# An awork user created this long before our claim is someone who was there already.
CLOCK_SKEW = timedelta(minutes=10)


class Refusal(StrEnum):
    NOT_FOUND = "not_found"
    NOT_APPROVER = "not_approver"
    ALREADY_DECIDED = "already_decided"
    NOT_INVITEE = "not_invitee"
    NOT_REQUESTER = "not_requester"
    ALREADY_APPROVED = "already_approved"  # this approver's approval is in; another is needed
    OWN_REQUEST = "own_request"  # another approver exists to decide it
    ALREADY_RETRIED = "already_retried"  # a batch's "Retry failed" button whose run is over


class AcceptOutcome(StrEnum):
    JOINED = "joined"
    ALREADY_JOINED = "already_joined"
    IN_PROGRESS = "in_progress"
    LAPSED = "lapsed"  # the code's 24 hours are over
    REFUSED = "refused"  # awork would not take the code
    UNAVAILABLE = "unavailable"  # awork did not answer; the button still works
    NO_CODE = "no_code"  # found in awork after a crash: awork's email is the way in


@dataclass(frozen=True)
class Decision:
    """What came of an approve/deny/retry: `request` is as stored after the attempt."""

    request: InviteRequest | None
    refusal: Refusal | None = None

    @property
    def ok(self) -> bool:
        return self.refusal is None


def new_instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class LeaseLost(RuntimeError):
    """This instance's work lease on a record ran out or was taken over: stop, send nothing."""


class InviteService:
    def __init__(
        self,
        store: Store,
        awork: AworkClient,
        catalog: Catalog,
        approvers: frozenset[str] | Callable[[], frozenset[str]],
        accept_url_template: str,
        workspace_id: str | None = None,
        password_url_template: str | None = None,
        skip_email_for_slack_members: bool = True,
        invite_attempts: int = 3,
        lease_margin: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        instance_id: str | None = None,
    ) -> None:
        self.store = store
        self.awork = awork
        self.catalog = catalog
        self._approvers = approvers
        self.accept_url_template = accept_url_template
        self.password_url_template = password_url_template
        self.skip_email_for_slack_members = skip_email_for_slack_members
        self.instance_id = instance_id or new_instance_id()
        self.invite_attempts = invite_attempts
        # A work lease outlives the longest one awork request can take after it is sent.
        self.work_lease = awork.longest_attempt() + lease_margin
        self._sleep = sleep
        self._workspace_id = workspace_id
        self._workspace_lock = threading.Lock()
        self._in_flight = 0
        self._active: set[str] = set()
        self._idle = threading.Condition()

    @property
    def approvers(self) -> frozenset[str]:
        """Who may approve now: fixed ids, or the current answer of a directory (user groups)."""
        return self._approvers() if callable(self._approvers) else self._approvers

    def is_approver(self, user_id: str) -> bool:
        return user_id in self.approvers

    # -- asking ------------------------------------------------------------------------------

    def duplicate_of(self, details: InviteDetails) -> tuple[str, Any] | None:
        """Why asking the admins would be pointless: ("member", None) when awork has the address
        already, ("open", request or batch) when one for it is still open. None otherwise."""
        if self.catalog.is_member(details.email):
            return "member", None
        open_id = self.store.open_addresses([details.email]).get(details.email.lower())
        existing = self.store.read(open_id) if open_id else None
        return ("open", existing) if existing is not None else None

    def submit(
        self, details: InviteDetails, requester_id: str, origin_channel: str | None
    ) -> InviteRequest:
        """Store a new pending request. Nothing else happens before it is stored."""
        if details.uses_advanced() and not self.is_approver(requester_id):
            raise PermissionError("only approvers may use the advanced fields")
        role = self.catalog.role(details.role_id)
        request = InviteRequest(
            requester_id=requester_id,
            origin_channel=origin_channel,
            details=details,
            role_name=role.name if role else None,
            role_is_admin=bool(role and role.is_admin_role),
            # Two for an admin role; whether one decides alone is settled at approval time.
            approvals_needed=2 if role and role.is_admin_role else 1,
            team_names=self.catalog.team_names(details.team_ids),
        )
        self.store.add(request)
        self.store.record(
            "submitted", request.id, requester_id, email=details.email, role=request.role_name
        )
        log.info("request %s stored (requester %s)", request.id, requester_id)
        return request

    def autofill(self, request_id: str) -> InviteRequest | None:
        """Fill in a pending request's missing first and last name (and gender) from awork's
        guess for its address, before the approvers see it. Anything typed stays as it was;
        no answer from awork leaves the request as it is."""
        request = self.store.get(request_id)
        details = request.details if request else None
        if details is None or (details.first_name and details.last_name):
            return request
        try:
            guess = self.awork.autofill(details.email)
        except AworkError as exc:
            log.info("request %s: no name suggestion from awork (%s)", request_id, exc.code)
            return request
        if not guess:
            return request
        changes = {
            name: value.strip()
            for name, value in (
                ("first_name", guess.get("firstName")),
                ("last_name", guess.get("lastName")),
                ("gender", guess.get("gender")),
            )
            if isinstance(value, str) and value.strip() and getattr(details, name) is None
        }
        if changes.get("gender") not in (None, "male", "female", "other"):
            changes.pop("gender")
        try:
            filled = details.model_copy(update=changes)
            filled = InviteDetails.model_validate(filled.model_dump(by_alias=True))
        except ValueError:
            return request  # e.g. a name longer than the form allows: keep the request as asked
        ok, updated = self.store.transition(
            request_id,
            {Status.PENDING},
            Status.PENDING,
            require={"approval_message": None, "details": details},
            details=filled,
        )
        if ok:
            self.store.record("autofilled", request_id, fields=sorted(changes))
        return updated

    # -- deciding ----------------------------------------------------------------------------

    def approve(self, request_id: str, approver_id: str, own_allowed: bool = False) -> Decision:
        """Record an approval; with enough of them, claim the request for inviting. Exactly
        one caller ever gets `ok` for a request (again only after a retryable failure).
        `ok` with status still PENDING means a first of two approvals was recorded. Whether
        an admin role needs that second one is decided here, against the approvers of now
        (`bot.approval`), and stored with the approvals by compare-and-set."""
        for _ in range(5):  # a concurrent approval changed the list: read again and retry
            current = self.store.get(request_id)
            if current is None:
                return Decision(None, Refusal.NOT_FOUND)
            if not self.is_approver(approver_id):
                return Decision(current, Refusal.NOT_APPROVER)
            if current.batch_id is not None:  # decided with its batch, never on its own
                return Decision(current, Refusal.ALREADY_DECIDED)
            verdict = None
            if current.status is Status.PENDING:
                verdict = approval.decide(current, approver_id, self.approvers, own_allowed)
                if verdict.refusal is not None:
                    return Decision(current, Refusal(verdict.refusal))
                if not verdict.complete:
                    ok, request = self.store.transition(
                        request_id,
                        {Status.PENDING},
                        Status.PENDING,
                        require={"approvals": current.approvals},
                        approvals=list(verdict.approvals),
                        approval_rule=verdict.rule,
                        shown_status=None,
                    )
                    if ok:
                        self.store.record(
                            "approved", request_id, approver_id, of=current.approvals_needed
                        )
                        return Decision(request)
                    continue
            decision = self._claim(current, approver_id, verdict)
            if decision.refusal is not Refusal.ALREADY_DECIDED or decision.request is None:
                return decision
            if decision.request.status is not Status.PENDING:
                return decision
        return Decision(self.store.get(request_id), Refusal.ALREADY_DECIDED)

    def _claim(
        self, current: InviteRequest, approver_id: str, verdict: approval.Verdict | None = None
    ) -> Decision:
        """Claim the request for inviting: the approval that completes it (`verdict`), or a
        retry after a retryable failure."""
        expected = {Status.PENDING}
        if current.status is Status.FAILED and current.failure and current.failure.retryable:
            expected.add(Status.FAILED)
        now = utcnow()
        changes: dict[str, object] = {
            "failure": None,
            "attempts": current.attempts + 1,
            "invite_started_at": current.invite_started_at or now,
            "outcome_told": False,
        }
        require = None
        if current.status is Status.PENDING and verdict is not None:
            changes.update(
                decided_by=approver_id,
                decided_at=now,
                approvals=list(verdict.approvals),
                approval_rule=verdict.rule,
            )
            require = {"approvals": current.approvals}
        ok, request = self.store.transition(
            current.id,
            expected,
            Status.INVITING,
            require=require,
            claim=(self.instance_id, self.work_lease),
            **changes,
        )
        if not ok:
            return Decision(request, Refusal.ALREADY_DECIDED)
        event = "approved" if current.status is Status.PENDING else "retried"
        rule = {"rule": str(verdict.rule)} if verdict is not None and verdict.rule else {}
        self.store.record(event, current.id, approver_id, **rule)
        log.info("request %s %s by %s", current.id, event, approver_id)
        return Decision(request)

    def can_deny(self, request_id: str, approver_id: str) -> Decision:
        """Whether a deny may start (the reason is asked for before anything is changed)."""
        current = self.store.get(request_id)
        if current is None:
            return Decision(None, Refusal.NOT_FOUND)
        if not self.is_approver(approver_id):
            return Decision(current, Refusal.NOT_APPROVER)
        if current.status is not Status.PENDING:
            return Decision(current, Refusal.ALREADY_DECIDED)
        return Decision(current)

    def deny(self, request_id: str, approver_id: str, reason: str) -> Decision:
        reason = clean_text(reason, multiline=True)  # the audit log gets it clean too
        decision = self.can_deny(request_id, approver_id)
        if not decision.ok:
            return decision
        ok, request = self.store.transition(
            request_id,
            {Status.PENDING},
            Status.DENIED,
            decided_by=approver_id,
            decided_at=utcnow(),
            deny_reason=reason,
        )
        if not ok:
            return Decision(request, Refusal.ALREADY_DECIDED)
        self.store.record("denied", request_id, approver_id, reason=reason)
        log.info("request %s denied by %s", request_id, approver_id)
        return Decision(request)

    # -- inviting ----------------------------------------------------------------------------

    def invite(self, request_id: str, claim_id: str | None) -> InviteRequest | None:
        """Call awork for a request under the claim `claim_id` that this caller took (status
        INVITING), exactly once. If that claim is not the request's any more - its lease ran
        out before we got here (Slack was slow) and it was taken over, by another instance or
        by this one's sweep - it is left to the new claim, untouched."""
        request = self.store.get(request_id)
        if request is None or request.status is not Status.INVITING or claim_id is None:
            return request
        if request.claim_id != claim_id:
            log.info("request %s: taken over meanwhile, left to %s", request_id, request.claimed_by)
            return request
        # An earlier attempt may have reached awork: look before sending again.
        return self._settle(request, look_first=request.uncertain)

    def _settle(self, request: InviteRequest, look_first: bool) -> InviteRequest:
        """Invite a request this instance holds, under its renewed lease."""
        with self._tracked(request.id), self._holding(request.id, request.claim_id):
            try:
                found = self._invited_in_awork(request) if look_first else None
                result = found if found is not None else self._create(request)
            except LeaseLost:
                log.warning("request %s: lease lost, left to its new holder", request.id)
                return self.store.get(request.id) or request
            except AworkError as exc:
                return self._fail(request, exc)
            return self._succeed(request, result)

    @contextmanager
    def _holding(self, record_id: str, claim_id: str | None) -> Iterator[None]:
        """Renew the lease of the claim `claim_id` on `record_id` right before each awork
        request leaves; a lease that cannot be renewed (expired and taken over, a later claim,
        or the store unreachable) stops the request from being sent."""

        def renew() -> None:
            try:
                held = self.store.renew(record_id, claim_id, self.work_lease)
            except Exception as exc:
                raise LeaseLost(f"{record_id}: could not renew the lease") from exc
            if not held:
                raise LeaseLost(f"{record_id}: the lease is held by another instance")

        with self.awork.before_each_send(renew):
            yield

    def set_invitee(self, request_id: str, slack_user_id: str | None) -> None:
        """Remember the invitee's Slack account (found by email), before awork is called."""
        self.store.update(request_id, invitee_slack_id=slack_user_id)

    def _bot_delivers(self, request: InviteRequest) -> bool:
        """The invitee is a Slack member and gets the invitation from the bot, not awork's email."""
        return self.skip_email_for_slack_members and request.invitee_slack_id is not None

    def _create(self, request: InviteRequest) -> InvitationResult:
        invitation = request.details.to_invitation(
            self.workspace_id(), skip_email=self._bot_delivers(request)
        )
        maybe_sent = request.uncertain  # an earlier attempt may have reached awork
        for attempt in range(1, self.invite_attempts + 1):
            try:
                return self.awork.create_invitation(invitation)
            except AworkUnavailable as exc:
                if exc.ambiguous:
                    maybe_sent = True
                    log.warning(
                        "request %s: awork answer unclear (%s), checking", request.id, exc.code
                    )
                    found = self._invited_in_awork(request)
                    if found is not None:
                        return found
                elif exc.code != "connection-failed":
                    raise
                if attempt == self.invite_attempts:
                    raise
                self._sleep(min(30.0, max(exc.retry_after or 0.0, 0.5 * 2**attempt)))
            except AworkError as exc:
                if exc.code != "already-exist-error" or not maybe_sent:
                    raise
                # Our own earlier attempt may be what awork found: look the person up.
                found = self._invited_in_awork(request)
                if found is None:
                    raise
                return found
        raise AssertionError("unreachable")  # pragma: no cover

    def _invited_in_awork(self, request: InviteRequest) -> InvitationResult | None:
        """If awork holds a user with this email created since our claim, our invitation
        went through: return a result without a code. A user from before is a member, which
        is awork's already-exist-error."""
        user = self.awork.find_user_by_email(request.details.email)
        if user is None:
            return None
        if not self._created_by_us(user, request.invite_started_at):
            raise AworkError(
                "already-exist-error", "The identity is already part of the workspace."
            )
        log.info("request %s: the invitation is in awork already", request.id)
        return InvitationResult(user_id=user.id)

    @staticmethod
    def _created_by_us(user: AworkUser, started_at: datetime | None) -> bool:
        if user.created_on is None or started_at is None:
            return not (user.status and user.status.invitation_accepted)
        return user.created_on >= started_at - CLOCK_SKEW

    def _succeed(self, request: InviteRequest, result: InvitationResult) -> InviteRequest:
        ok, stored = self.store.transition(
            request.id,
            {Status.INVITING},
            Status.INVITED,
            require={"claim_id": request.claim_id},  # only while the claim is still ours
            result=result,
            outcome_told=False,
            uncertain=False,
            awork_email_skipped=request.details.skip_sending_email or self._bot_delivers(request),
        )
        if not ok:  # taken over meanwhile: its new holder finds the invitation in awork
            log.warning("request %s: invited, but the lease had passed on", request.id)
            return stored or request
        self.store.record(
            "invited",
            request.id,
            awork_user=result.user_id,
            code_received=result.invitation_code is not None,
        )
        log.info("request %s: invitation created", request.id)
        return stored or request

    def _fail(self, request: InviteRequest, exc: AworkError) -> InviteRequest:
        failure = describe_failure(exc, request.details.email)
        log.warning("request %s: awork refused (%s)", request.id, exc.code)
        # If the call may have reached awork, the next attempt looks before it sends.
        uncertain = request.uncertain or (isinstance(exc, AworkUnavailable) and exc.ambiguous)
        ok, stored = self.store.transition(
            request.id,
            {Status.INVITING},
            Status.FAILED,
            require={"claim_id": request.claim_id},  # only while the claim is still ours
            failure=failure,
            outcome_told=False,
            uncertain=uncertain,
        )
        if ok:
            self.store.record(
                "invite_failed", request.id, code=exc.code, retryable=failure.retryable
            )
        return stored or request

    # -- lists ------------------------------------------------------------------------------------

    def waiting_for(
        self, approver_id: str, requests: Iterable[InviteRequest] | None = None
    ) -> list[InviteRequest]:
        """Requests an approver can act on, oldest first (empty for anyone else)."""
        if not self.is_approver(approver_id):
            return []
        candidates = self._approvable() if requests is None else requests
        actionable = [
            r
            for r in candidates
            if r.batch_id is None  # a batch's members are decided with the batch
            and (
                r.status is Status.PENDING
                or (r.status is Status.FAILED and r.failure is not None and r.failure.retryable)
            )
        ]
        return sorted(actionable, key=lambda r: r.created_at)

    def requests_of(
        self, requester_id: str, requests: Iterable[InviteRequest] | None = None
    ) -> list[InviteRequest]:
        """A requester's own requests, newest first."""
        if requests is None:
            requests = [r for r in self.store.listed(requester_id) if isinstance(r, InviteRequest)]
        candidates = requests
        mine = [r for r in candidates if r.requester_id == requester_id and r.batch_id is None]
        return sorted(mine, key=lambda r: r.created_at, reverse=True)

    def _approvable(self) -> list[InviteRequest]:
        return [r for r in self.store.approvable() if isinstance(r, InviteRequest)]

    def visible_request(self, request_id: str, user_id: str) -> InviteRequest | None:
        """A request, if this user may see it: its requester, invitee or an approver."""
        request = self.store.get(request_id)
        if request is None:
            return None
        allowed = {request.requester_id, request.invitee_slack_id} | set(self.approvers)
        return request if user_id in allowed else None

    # -- reminders and expiry ------------------------------------------------------------------

    def remind_and_expire(
        self, requests: Iterable[InviteRequest], remind_after: timedelta, expire_after: timedelta
    ) -> list[str]:
        """Decide, once each (times are stored), on reminders and expiry of pending requests.
        Returns the ids whose Slack messages now need bringing up to date."""
        now, changed = utcnow(), []
        for request in requests:
            if request.status is not Status.PENDING:
                continue
            age = now - request.created_at
            if age >= expire_after:
                ok, _ = self.store.transition(
                    request.id, {Status.PENDING}, Status.EXPIRED, decided_at=now, outcome_told=False
                )
                if ok:
                    self.store.record(
                        "expired", request.id, after_days=round(age.total_seconds() / 86400, 1)
                    )
                    changed.append(request.id)
            elif age >= remind_after and request.reminded_at is None:
                ok, _ = self.store.transition(
                    request.id,
                    {Status.PENDING},
                    Status.PENDING,
                    require={"reminded_at": None},
                    reminded_at=now,
                )
                if ok:
                    self.store.record("reminded", request.id)
                    changed.append(request.id)
        return changed

    def follow_invitations(self, requests: Iterable[InviteRequest]) -> list[str]:
        """Invited requests whose invitee has since joined (seen in awork's member list), or
        whose 24-hour code ran out unaccepted. Returns the ids whose messages need updating."""
        seen_at, changed = self.catalog.members_seen_at, []
        for request in requests:
            if request.status is not Status.INVITED or request.result is None:
                continue
            if seen_at is None or not (
                self.catalog.has_accepted(request.details.email)
                or seen_at >= request.result.expires_at
            ):
                # Nothing new: looked at again after INVITE_CATALOG_REFRESH_SECONDS (the due
                # index says when), not at every sweep.
                self.store.transition(
                    request.id, {Status.INVITED}, Status.INVITED, followed_at=utcnow()
                )
                continue
            if self.catalog.has_accepted(request.details.email):
                changes = {"joined_at": seen_at, "outcome_told": False, "shown_status": None}
                ok, _ = self.store.transition(
                    request.id, {Status.INVITED}, Status.JOINED, **changes
                )
                if ok:
                    self.store.record("joined", request.id, seen_in="awork members")
                    changed.append(request.id)
            elif seen_at >= request.result.expires_at:  # a look at awork after the code ran out
                _, lapsed = self._lapse(
                    request,
                    "The 24-hour invitation ran out before it was accepted.",
                    AcceptOutcome.LAPSED,
                )
                if lapsed is not None and lapsed.status is Status.LAPSED:
                    changed.append(request.id)
        return changed

    # -- joining from Slack -------------------------------------------------------------------

    def accept(
        self, request_id: str, user_id: str
    ) -> tuple[AcceptOutcome | Refusal, InviteRequest | None]:
        """The invitee accepts from Slack: awork's accept is called at most once per request."""
        current = self.store.get(request_id)
        if current is None:
            return Refusal.NOT_FOUND, None
        if user_id != current.invitee_slack_id:
            return Refusal.NOT_INVITEE, current
        settled = {
            Status.JOINED: AcceptOutcome.ALREADY_JOINED,
            Status.JOINING: AcceptOutcome.IN_PROGRESS,
            Status.LAPSED: AcceptOutcome.LAPSED,
        }
        if current.status in settled:
            return settled[current.status], current
        if current.status is not Status.INVITED:
            return Refusal.NOT_FOUND, current
        if current.result is None or current.result.invitation_code is None:
            return AcceptOutcome.NO_CODE, current
        if current.accept_link_expired:
            return self._lapse(current, "The invitation's 24 hours are over.", AcceptOutcome.LAPSED)
        ok, claimed = self.store.transition(
            request_id, {Status.INVITED}, Status.JOINING, claim=(self.instance_id, self.work_lease)
        )
        if not ok or claimed is None:
            return self.accept(request_id, user_id)  # someone else moved it; answer for that
        try:
            with self._tracked(request_id), self._holding(request_id, claimed.claim_id):
                self.awork.accept_invitation(claimed.result.invitation_code.get_secret_value())
        except LeaseLost:
            return AcceptOutcome.IN_PROGRESS, self.store.get(request_id)
        except AworkUnavailable as exc:
            # A timed-out or 5xx accept may have gone through: ask awork before offering a retry.
            settled = self.settle_joining(claimed, own=True) if exc.ambiguous else None
            if settled is not None and settled.status is Status.JOINED:
                return AcceptOutcome.JOINED, settled
            self.store.transition(
                request_id,
                {Status.JOINING},
                Status.INVITED,
                require={"claim_id": claimed.claim_id},
            )
            return AcceptOutcome.UNAVAILABLE, self.store.get(request_id)
        except AworkError as exc:
            log.warning("request %s: awork refused the acceptance (%s)", request_id, exc.code)
            reason = exc.description or "awork did not accept the invitation code."
            return self._lapse(claimed, reason, AcceptOutcome.REFUSED, expected=Status.JOINING)
        ok, joined = self.store.transition(
            request_id,
            {Status.JOINING},
            Status.JOINED,
            require={"claim_id": claimed.claim_id},
            joined_at=utcnow(),
            outcome_told=False,
            shown_status=None,
        )
        if ok:
            self.store.record("joined", request_id, user_id)
        log.info("request %s: the invitee joined", request_id)
        return AcceptOutcome.JOINED, joined

    def _lapse(
        self,
        request: InviteRequest,
        reason: str,
        outcome: AcceptOutcome,
        expected: Status = Status.INVITED,
    ) -> tuple[AcceptOutcome, InviteRequest | None]:
        ok, lapsed = self.store.transition(
            request.id, {expected}, Status.LAPSED, lapse_reason=reason, outcome_told=False
        )
        if ok:
            self.store.record("lapsed", request.id, reason=reason)
        return outcome, lapsed

    def invite_again(self, request_id: str, user_id: str) -> Decision:
        """A fresh request with the same details, through the usual approval; once."""
        current = self.store.get(request_id)
        if current is None:
            return Decision(None, Refusal.NOT_FOUND)
        if user_id != current.requester_id and not self.is_approver(user_id):
            return Decision(current, Refusal.NOT_REQUESTER)
        if current.status is not Status.LAPSED or current.reinvited_as:
            return Decision(current, Refusal.ALREADY_DECIDED)
        fresh = InviteRequest(
            requester_id=current.requester_id,
            origin_channel=current.origin_channel,
            details=current.details,
            role_name=current.role_name,
            role_is_admin=current.role_is_admin,
            approvals_needed=current.approvals_needed,
            team_names=current.team_names,
            reinvite_of=current.id,
        )
        ok, _ = self.store.transition(
            request_id,
            {Status.LAPSED},
            Status.LAPSED,
            require={"reinvited_as": None},
            reinvited_as=fresh.id,
        )
        if not ok:
            return Decision(self.store.get(request_id), Refusal.ALREADY_DECIDED)
        self.store.add(fresh)
        self.store.record(
            "submitted", fresh.id, user_id, email=current.details.email, again_for=current.id
        )
        return Decision(fresh)

    def password_link(self, request: InviteRequest) -> str | None:
        """Where the invitee sets a password; built from awork's password-reset code (DM only)."""
        code = request.result.password_reset_code if request.result else None
        if code is None or self.password_url_template is None:
            return None
        return self.password_url_template.format(
            code=quote(code.get_secret_value(), safe=""),
            email=quote(request.details.email, safe=""),
        )

    def settle_joining(self, request: InviteRequest, own: bool = False) -> InviteRequest | None:
        """Ask awork whether an interrupted acceptance went through: joined, or clickable again.
        Someone else's (`own` false) only once its lease has expired: a crash cut it off."""
        try:
            user = self.awork.find_user_by_email(request.details.email)
        except AworkError:
            return None  # awork down: the next sweep asks again
        accepted = bool(user and user.status and user.status.invitation_accepted)
        target = Status.JOINED if accepted else Status.INVITED
        changes = (
            {"joined_at": utcnow(), "outcome_told": False, "shown_status": None} if accepted else {}
        )
        guard: dict[str, Any] = {"require": {"claim_id": request.claim_id}}
        if not own:
            guard["claim_expired"] = True
        ok, settled = self.store.transition(
            request.id, {Status.JOINING}, target, **guard, **changes
        )
        if ok and accepted:
            self.store.record("joined", request.id, request.invitee_slack_id, recovered=True)
        return settled if ok else None

    # -- after a crash -----------------------------------------------------------------------

    def recover(self, request: InviteRequest) -> InviteRequest | None:
        """Settle an invitation whose holder's lease expired (it crashed, or lost the store):
        take it over by compare-and-set on the store's clock, then finish it, checking awork
        first so it is never sent twice. None while the lease runs or if another took it."""
        ok, claimed = self.store.transition(
            request.id,
            {Status.INVITING},
            Status.INVITING,
            require={"claim_id": request.claim_id},
            claim=(self.instance_id, self.work_lease),
            claim_expired=True,
            uncertain=True,
        )
        if not ok or claimed is None:
            return None
        self.store.record("recovering", request.id, previous_owner=request.claimed_by)
        log.info("request %s: taking over an invitation whose lease expired", request.id)
        return self._settle(claimed, look_first=True)

    # -- stopping ----------------------------------------------------------------------------

    @contextmanager
    def _tracked(self, record_id: str) -> Iterator[None]:
        """Work on `record_id` in this process: counted for a graceful stop, and known to the
        sweep, which takes over this process's own expired leases only when nobody works on
        them here any more (a thread that died)."""
        with self._idle:
            self._in_flight += 1
            self._active.add(record_id)
        try:
            yield
        finally:
            with self._idle:
                self._in_flight -= 1
                self._active.discard(record_id)
                self._idle.notify_all()

    def is_active(self, record_id: str) -> bool:
        with self._idle:
            return record_id in self._active

    def wait_idle(self, timeout: float) -> bool:
        """Wait (bounded) for in-flight awork invitations to finish; True if none is left."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout)

    # -- helpers -----------------------------------------------------------------------------

    def workspace_id(self) -> str:
        """The configured workspace, else the API key's own, asked of awork once and kept."""
        with self._workspace_lock:
            if not self._workspace_id:
                self._workspace_id = self.store.get_meta("workspace_id")
            if not self._workspace_id:
                self._workspace_id = self.awork.workspace_id()
                self.store.set_meta("workspace_id", self._workspace_id)
            return self._workspace_id

    def accept_link(self, request: InviteRequest) -> str | None:
        """The acceptance link; a credential, for DMs only. None without a code."""
        if request.result is None or request.result.invitation_code is None:
            return None
        return self.accept_url_template.format(
            code=quote(request.result.invitation_code.get_secret_value(), safe=""),
            email=quote(request.details.email, safe=""),
        )


def invitations_gone(exc: AworkError) -> bool:
    """awork answered `POST /invitations` with 404 or 405 about the endpoint itself (not about
    a workspace it could not find): this awork no longer takes invitations by API."""
    if exc.endpoint != "POST /invitations" or exc.status not in (404, 405):
        return False
    return exc.status == 405 or "workspace" not in exc.description.lower()


def invitations_gone_reason(status: int | None) -> str:
    """Why nobody can be invited when awork no longer offers `POST /invitations` (the doctor
    says it too)."""
    return (
        f"awork no longer offers invitations by API (POST /invitations answered {status}; "
        "awork's current published API no longer lists that endpoint)"
    )


def describe_failure(exc: AworkError, email: str) -> Failure:
    """awork's error in words an admin acts on. Never includes a key or a code."""
    props = " ".join(item["property"].lower() for item in exc.validation_errors)
    text = f"{exc.description} {' '.join(exc.details)}".lower()
    if exc.retryable:
        message = "awork is not answering right now, so nobody was invited. Try again shortly."
        return Failure(code=exc.code, message=message, retryable=True)
    if exc.code == "already-exist-error":
        message = f"{email} is already in the awork workspace."
    elif exc.code == "insufficient-seats":
        message = "awork has no free seats left. Book more seats in awork, then ask again."
    elif exc.code == "unauthorized" or exc.status == 401:
        message = "awork refused the bot's API key. An admin needs to check AWORK_API_KEY."
    elif "role" in props or "team" in props or "role" in text or "team" in text:
        message = "The chosen role or a team is not valid in awork any more. Ask again with a current one."
    elif invitations_gone(exc):
        message = f"{invitations_gone_reason(exc.status)}, so nobody was invited. Invite people in awork itself meanwhile."
    elif exc.code == "not-found" or exc.status == 404:
        message = "awork could not find the workspace, role or team for this invitation."
    elif exc.code in ("validation-failed", "invalid-model") and exc.validation_errors:
        reasons = "; ".join(
            f"{field_label(item['property'], item['property'])}: {item['message']}".strip(": ")
            for item in exc.validation_errors
        )
        message = f"awork did not accept the invitation: {reasons}"
    else:
        message = f"awork refused the invitation ({exc.code}) {exc.description}".strip()
    return Failure(code=exc.code, message=message, retryable=False)
