"""After the invitation: the invitee joins from Slack (awork's accept, called at most once per
request), or is seen among awork's members, or the 24-hour code lapses and "Invite again" is
offered. An acceptance cut off by a crash is settled by asking awork (`settle_joining`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from bot.awork.client import AworkClient
from bot.awork.errors import AworkError, AworkUnavailable
from bot.domain.clock import utcnow
from bot.domain.records import InviteRequest, Status
from bot.i18n import N_
from bot.services.catalog import Catalog
from bot.services.decisions import Refusal
from bot.services.leases import LeaseLost, Work
from bot.store import Store

log = logging.getLogger(__name__)

# Why an invitation lapsed, stored as `lapse_reason` (English msgids, said in the reader's
# language with `records.said`); awork's own refusal is stored as awork worded it.
HOURS_OVER = N_("The invitation's 24 hours are over.")
RAN_OUT = N_("The 24-hour invitation ran out before it was accepted.")
CODE_REFUSED = N_("awork did not accept the invitation code.")


class AcceptOutcome(StrEnum):
    JOINED = "joined"
    ALREADY_JOINED = "already_joined"
    IN_PROGRESS = "in_progress"
    LAPSED = "lapsed"  # the code's 24 hours are over
    REFUSED = "refused"  # awork would not take the code
    UNAVAILABLE = "unavailable"  # awork did not answer; the button still works
    NO_CODE = "no_code"  # found in awork after a crash: awork's email is the way in


class Joining:
    def __init__(self, store: Store, awork: AworkClient, catalog: Catalog, work: Work) -> None:
        self.store = store
        self.awork = awork
        self.catalog = catalog
        self.work = work

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
            return self._lapse(current, HOURS_OVER, AcceptOutcome.LAPSED)
        ok, claimed = self.store.transition(
            request_id, {Status.INVITED}, Status.JOINING, claim=self.work.claim
        )
        if not ok or claimed is None:
            return self.accept(request_id, user_id)  # someone else moved it; answer for that
        try:
            with self.work.tracked(request_id), self.work.holding(request_id, claimed.claim_id):
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
            reason = exc.description or CODE_REFUSED
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
                _, lapsed = self._lapse(request, RAN_OUT, AcceptOutcome.LAPSED)
                if lapsed is not None and lapsed.status is Status.LAPSED:
                    changed.append(request.id)
        return changed

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
