"""Asking for one person: the policy (INVITE_POLICY) and duplicates are checked first, then a
new request is stored before anything else happens - pending for its approvers, or, on an
approved domain, approved by the policy and held for inviting; names awork suggests are filled
in before the approvers see it; a lapsed invitation is asked for again. And the lists people
see: what waits for an approver, what a requester asked for."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.awork.client import AworkClient
from bot.awork.errors import AworkError
from bot.domain.clock import utcnow
from bot.domain.details import InviteDetails
from bot.domain.listing import Listed
from bot.domain.policy import Ruling
from bot.domain.records import ApprovalRule, AuditEvent, InviteRequest, Status
from bot.services.catalog import Catalog
from bot.services.decisions import Approvers, Decision, Refusal
from bot.services.leases import Work
from bot.services.policy import PolicyGate, count, resets_at
from bot.store import Store
from bot.store.base import AddressOpen, LimitReached

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Turned:
    """Why nothing was stored for an ask: `why` is one of not_requester, member, open,
    blocked_domain, role_not_on_route, daily_limit; `field` the form field it concerns."""

    why: str
    field: str = "email"
    rule: str | None = None  # the policy's rule, when it was the policy
    existing: Any = None  # the open request or batch (open), the invited one (member)
    entry: str | None = None  # the blocked domain, the role not on the route
    resets_at: datetime | None = None  # daily_limit: when the requester may ask again
    ask_instead: frozenset[str] = dataclasses.field(default_factory=frozenset)
    roles: tuple[str, ...] = ()  # role_not_on_route: the roles its route allows


@dataclass(frozen=True)
class Asked:
    """What came of an ask: the stored request, or why there is none."""

    request: InviteRequest | None = None
    turned: Turned | None = None


class Asking:
    def __init__(
        self,
        store: Store,
        awork: AworkClient,
        catalog: Catalog,
        approvers: Approvers,
        gate: PolicyGate,
        work: Work,
    ) -> None:
        self.store = store
        self.awork = awork
        self.catalog = catalog
        self.approvers = approvers
        self.gate = gate
        self.work = work

    def ask(
        self,
        details: InviteDetails,
        requester_id: str,
        origin_channel: str | None,
        **fields: Any,
    ) -> Asked:
        """One person asked for, from any door (the form, `/invite` with an address, a
        workflow step): who may ask, the policy's domain rules and route, duplicates, the
        daily limit - then the request is stored, and nothing before that. `fields`: more of
        the new request (a workflow step's run and the id derived from it). With an id of its
        own, duplicates come first: the same run delivered again finds its request whatever
        the policy says by then."""
        duplicate = self.duplicate_of(details) if "id" in fields else None
        if duplicate is not None:
            return Asked(turned=Turned(duplicate[0], existing=duplicate[1]))
        if not self.gate.may_ask(requester_id):
            return Asked(turned=Turned("not_requester", ask_instead=self.approvers.now()))
        ruling = self.judge(details, origin_channel)
        if ruling.outcome == "refused":
            self.gate.refused(requester_id, ruling.rule, people=1)
            return Asked(turned=refused(ruling))
        if "id" not in fields and self.catalog.is_member(details.email):
            return Asked(turned=Turned("member"))
        try:  # the daily limit and an open request for the address checked as it is stored
            counted = self.gate.counter(requester_id)
            request = self.submit(details, requester_id, origin_channel, ruling, counted, **fields)
            return Asked(request)
        except AddressOpen as held:
            existing = self.store.read(held.target)
            why = "member" if existing is not None and not existing.is_open else "open"
            return Asked(turned=Turned(why, existing=existing))
        except LimitReached:
            count("daily_limit", "refused")
            self.gate.refused(requester_id, "daily_limit", people=1)
            return Asked(turned=Turned("daily_limit", rule="daily_limit", resets_at=resets_at()))

    def judge(self, details: InviteDetails, origin_channel: str | None) -> Ruling:
        """The policy's ruling; an admin role or the advanced fields (a new workspace, seats)
        always need an approver, whatever the domain."""
        role = self.catalog.role(details.role_id)
        return self.gate.judge(
            details.email,
            role.name if role else None,
            bool(role and role.is_admin_role) or details.uses_advanced(),
            self.catalog.team_names(details.team_ids),
            origin_channel,
        )

    def duplicate_of(self, details: InviteDetails) -> tuple[str, Any] | None:
        """Why asking the admins would be pointless: ("member", None) when awork has the address
        already, ("member", request) when one of ours invited it (or it joined) and did not
        lapse, ("open", request or batch) when one for it is still open. None otherwise."""
        if self.catalog.is_member(details.email):
            return "member", None
        open_id = self.store.open_addresses([details.email]).get(details.email.lower())
        existing = self.store.read(open_id) if open_id else None
        if existing is None:
            return None
        return ("open" if existing.is_open else "member"), existing

    def submit(
        self,
        details: InviteDetails,
        requester_id: str,
        origin_channel: str | None,
        ruling: Ruling | None = None,
        counted: tuple[str, int] | None = None,
        **fields: Any,
    ) -> InviteRequest:
        """Store a new request: pending for its approvers, or - approved by the policy -
        already claimed for inviting, under this process's lease (a crash leaves it to the
        sweep's takeover). Nothing else happens before it is stored. `counted`: the daily
        limit's counter (LimitReached: nothing stored)."""
        if details.uses_advanced() and requester_id not in self.approvers.now():
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
            **routed(ruling),
            **fields,
        )
        auto = ruling is not None and ruling.outcome == "approved"
        if auto:
            now = utcnow()
            decided = approved_by_policy(now, Status.INVITING, invite_started_at=now, attempts=1)
            request = request.model_copy(update=decided)
        policy = {"policy": request.policy_rule} if request.policy_rule else {}
        audit = [
            AuditEvent(
                event="submitted",
                request_id=request.id,
                actor=requester_id,
                detail={"email": details.email, "role": request.role_name, **policy},
            )
        ]
        if auto:
            detail = {"rule": "policy", "policy": request.policy_rule}
            audit.append(AuditEvent(event="approved", request_id=request.id, detail=detail))
        # One round trip: the request, its index entries and its audit lines - unless a
        # request for the address is open already (AddressOpen). A request with an id of its
        # own (a workflow step's) was checked for duplicates before.
        request = self.store.add(
            request,
            claim=self.work.claim if auto else None,
            counted=counted,
            audit=audit,
            unless_open=() if "id" in fields else (details.email,),
        )
        log.info("request %s stored (requester %s)", request.id, requester_id)
        return request

    def autofill(self, request: InviteRequest) -> InviteRequest | None:
        """Fill in a pending request's missing first and last name (and gender) from awork's
        guess for its address, before the approvers see it: `request` as `submit` stored it
        (not read again; the change requires the details it has and no approval message yet).
        Anything typed stays as it was; no answer from awork leaves the request as it is."""
        request_id, details = request.id, request.details
        if details.first_name and details.last_name:
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

    def invite_again(self, request_id: str, user_id: str) -> Decision[InviteRequest]:
        """After a lapse: a fresh request with the same details, through the usual approval;
        once."""
        current = self.store.get(request_id)
        if current is None:
            return Decision(None, Refusal.NOT_FOUND)
        if user_id != current.requester_id and user_id not in self.approvers.of(current):
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
            policy_rule=current.policy_rule if current.route else None,
            route=current.route,
            route_channel=current.route_channel,
            route_approvers=current.route_approvers,
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

    # -- lists -------------------------------------------------------------------------------

    def waiting(self, approver_id: str, listing: list[Listed] | None = None) -> list[Listed]:
        """Everything an approver can act on, oldest first (empty for anyone else): requests
        and batches waiting for a decision, and failures they may retry - each on its route's
        approvers' list. `listing`: the store's, when the caller has read it already."""
        if approver_id not in self.approvers:
            return []
        if listing is None:
            listing = self.store.approvable_listing()
        return [item for item in listing if approver_id in self.approvers.of(item)]

    def own(self, requester_id: str, page: int = 1, size: int = 40) -> tuple[list[Any], int, int]:
        """A requester's own requests and batches, newest first, a page at a time (pages past
        the last show the last): (that page, its number, how many there are in all)."""
        total = self.store.count_listed(requester_id)
        pages = max(1, -(-total // size))
        page = min(max(page, 1), pages)
        return self.store.listed(requester_id, limit=size, offset=(page - 1) * size), page, total

    def visible_request(self, request_id: str, user_id: str) -> InviteRequest | None:
        """A request, if this user may see it: its requester, invitee or an approver."""
        request = self.store.get(request_id)
        if request is None:
            return None
        allowed = {request.requester_id, request.invitee_slack_id} | self.approvers.of(request)
        return request if user_id in allowed else None


def refused(ruling: Ruling) -> Turned:
    """A refusal of the policy's domain rules or routes, as the asker is told it."""
    on_role = ruling.why == "role_not_on_route"
    roles = tuple(ruling.route.roles) if on_role and ruling.route else ()
    return Turned(
        str(ruling.why),
        "roleId" if on_role else "email",
        ruling.rule,
        entry=ruling.entry,
        roles=roles,
    )


def routed(ruling: Ruling | None) -> dict[str, Any]:
    """What a request or batch keeps of the policy's ruling: the rule, and its route."""
    if ruling is None:
        return {}
    route = ruling.route
    return {
        "policy_rule": ruling.rule,
        "route": route.name if route else None,
        "route_channel": route.admin_channel if route else None,
        "route_approvers": list(route.approvers) if route else [],
    }


def approved_by_policy(now: datetime, status: Any, **started: Any) -> dict[str, Any]:
    """The decision an approved domain takes for a new request or batch: `status` (inviting,
    running) and what its work starts with."""
    return {"status": status, "approval_rule": ApprovalRule.POLICY, "decided_at": now, **started}
