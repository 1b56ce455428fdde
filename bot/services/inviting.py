"""Inviting exactly once: one `POST /invitations` per request, however many clicks,
retries or instances.

- An approval moves a request `pending -> inviting` by compare-and-set and takes a work lease
  on it (bot/services/decisions.py); only that caller calls awork (`invite`), under the claim
  it took, and it renews the lease right before every request leaves for awork, to outlive
  that request (the client's timeouts plus a margin). A lost lease stops the call before it
  is sent.
- A POST whose answer was lost - a read timeout, a connection lost mid-request, a 5xx, a
  success the bot cannot read - may have been carried out, or awork may still be carrying it
  out: the request is *unsure* (bot/domain/settling.py). Its lease is set to run out at the
  next look, and whoever's sweep comes then (`recover`) asks awork whether the person now
  exists, created since our first attempt: found -> invited, without a code; not yet -> look
  again later, at growing intervals; absent once INVITE_SETTLE_SECONDS have passed -> the POST
  is sent once more; absent after that one's window too -> failed, for an approver to try
  again. A connection that failed sent nothing: it is simply tried again after a backoff.
- After a crash, the sweep takes over `inviting` requests whose lease has expired (`recover`)
  - no process id is ever consulted - and settles them by looking first: found in awork ->
  invited; not there -> invited now (the lease outlived the dead holder's call). An
  `already-exist-error` answering an invitation that may have been sent before is settled by
  looking the person up, never reported as "already a member".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import quote

from bot.awork.client import AworkClient
from bot.awork.errors import AworkError, AworkUnavailable
from bot.domain.awork_models import AworkUser, InvitationResult
from bot.domain.records import InviteRequest, Status
from bot.domain.settling import Settling
from bot.services.failures import describe_failure
from bot.services.leases import LeaseLost, Work
from bot.services.settling import AnswerLost, Unsure, UserListing
from bot.store import Store
from bot.store.leasing import DeliveryLease

log = logging.getLogger(__name__)

# An awork user created this long before our claim is someone who was there already.
CLOCK_SKEW = timedelta(minutes=10)
# What an unsure request carries, cleared once it is settled (a retry starts afresh).
SETTLED = {"unsure_since": None, "unsure_checks": 0, "resent": False}


class Inviting(Unsure):
    def __init__(
        self,
        store: Store,
        awork: AworkClient,
        work: Work,
        accept_url_template: str,
        workspace_id: str | None = None,
        password_url_template: str | None = None,
        skip_email_for_slack_members: bool = True,
        invite_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        settling: Settling | None = None,
    ) -> None:
        self.store = store
        self.settling = settling or Settling()
        self.listing = UserListing(awork, lambda: self.store.now())  # the store's clock
        self.awork = awork
        self.work = work
        self.accept_url_template = accept_url_template
        self.password_url_template = password_url_template
        self.skip_email_for_slack_members = skip_email_for_slack_members
        self.invite_attempts = invite_attempts
        self._sleep = sleep
        self._workspace_id = workspace_id
        self._workspace_lock = threading.Lock()

    def invite(
        self,
        request_id: str,
        claim_id: str | None,
        known: InviteRequest | None = None,
        invitee_slack_id: str | None = None,
        lease: DeliveryLease | None = None,
    ) -> InviteRequest | None:
        """Call awork for a request under the claim `claim_id` that this caller took (status
        INVITING), exactly once. If that claim is not the request's any more - its lease ran
        out before we got here (Slack was slow) and it was taken over, by another instance or
        by this one's sweep - it is left to the new claim, untouched. `known`: the request as
        this caller last wrote it under that claim, instead of a read - a claim lost since is
        found by the lease's renewal before anything leaves for awork (`Work.holding`).
        `invitee_slack_id`: the invitee's Slack account, found (by email) since - stored with
        that renewal, in one write, so that it is on the request before awork is asked.
        `lease`: the delivery lease taken with the request's settling write, for the delivery
        round that follows (`Store.transition`)."""
        request = known if known is not None else self.store.get(request_id)
        if request is None or request.status is not Status.INVITING or claim_id is None:
            return request
        if request.claim_id != claim_id:
            log.info("request %s: taken over meanwhile, left to %s", request_id, request.claimed_by)
            return request
        # An earlier attempt may have reached awork: look before sending again.
        return self.settle(
            request, look_first=request.uncertain, invitee_slack_id=invitee_slack_id, lease=lease
        )

    def recover(
        self, request: InviteRequest, find_invitee: Callable[[str], str | None] | None = None
    ) -> InviteRequest | None:
        """Take over an invitation whose lease ran out - its holder crashed or lost the store,
        or it is unsure and its next look is due - by compare-and-set on the store's clock,
        then settle it, looking in awork first so it is never sent twice. None while the lease
        runs or if another took it. `find_invitee`: the invitee's Slack account by email, asked
        once taken over when none is stored (a holder that crashed before its renewal stored
        none) and written as in `invite`."""
        ok, claimed = self.store.transition(
            request.id,
            {Status.INVITING},
            Status.INVITING,
            # The lease as read: renewed since (a send), it is judged again on a fresh read.
            require={"claim_id": request.claim_id, "claim_until": request.claim_until},
            claim=self.work.claim,
            claim_expired=True,
        )
        if not ok or claimed is None:
            return None
        if claimed.unsure_since is None:
            self.store.record("recovering", request.id, previous_owner=request.claimed_by)
            log.info("request %s: taking over an invitation whose lease expired", request.id)
            if claimed.uncertain:  # the holder was about to POST, or had
                claimed = self._unsure_since_last_send(claimed, request.claim_until)
        invitee = None
        if claimed.invitee_slack_id is None and claimed.batch_id is None and find_invitee:
            invitee = find_invitee(claimed.details.email)  # a member's batch looked it up
        return self.settle(
            claimed, look_first=True, due=request.claim_until, invitee_slack_id=invitee
        )

    def settle(
        self,
        request: InviteRequest,
        look_first: bool,
        due: datetime | None = None,
        invitee_slack_id: str | None = None,
        lease: DeliveryLease | None = None,
    ) -> InviteRequest:
        """Invite a request this instance holds, under its renewed lease; an unsure one is
        looked for in awork (its look was due at `due`) before anything is sent again.
        `invitee_slack_id` (not yet stored) is written with the first renewal."""
        with self.work.tracked(request.id), self.work.holding(request.id, request.claim_id):
            if invitee_slack_id is not None:
                self.work.with_next_renewal(
                    request.id, request.claim_id, invitee_slack_id=invitee_slack_id
                )
                request = request.model_copy(update={"invitee_slack_id": invitee_slack_id})
            try:
                if request.unsure_since is not None:
                    outcome = self._look_again(request, due)
                    if isinstance(outcome, InviteRequest):
                        return outcome  # not settled yet: looked for again later
                    result = outcome
                else:
                    found = self._invited_in_awork(request) if look_first else None
                    result = found if found is not None else self._create(request)
            except LeaseLost:
                log.warning("request %s: lease lost, left to its new holder", request.id)
                return self.store.get(request.id) or request
            except AnswerLost as lost:
                return self._unsure(request, lost.error, lease)
            except AworkError as exc:
                return self._fail(request, exc, lease)
            return self._succeed(request, result, lease)

    def workspace_id(self) -> str:
        """The configured workspace, else the API key's own, asked of awork once and kept."""
        with self._workspace_lock:
            if not self._workspace_id:
                self._workspace_id = self.store.get_meta("workspace_id")
            if not self._workspace_id:
                self._workspace_id = self.awork.workspace_id()
                self.store.set_meta("workspace_id", self._workspace_id)
            return self._workspace_id

    # -- the links a DM carries ----------------------------------------------------------------

    def accept_link(self, request: InviteRequest) -> str | None:
        """The acceptance link; a credential, for DMs only. None without a code."""
        if request.result is None or request.result.invitation_code is None:
            return None
        return self.accept_url_template.format(
            code=quote(request.result.invitation_code.get_secret_value(), safe=""),
            email=quote(request.details.email, safe=""),
        )

    def password_link(self, request: InviteRequest) -> str | None:
        """Where the invitee sets a password; built from awork's password-reset code (DM only)."""
        code = request.result.password_reset_code if request.result else None
        if code is None or self.password_url_template is None:
            return None
        return self.password_url_template.format(
            code=quote(code.get_secret_value(), safe=""),
            email=quote(request.details.email, safe=""),
        )

    # -- one invitation ----------------------------------------------------------------------

    def _bot_delivers(self, request: InviteRequest) -> bool:
        """The invitee is a Slack member and gets the invitation from the bot, not awork's email."""
        return self.skip_email_for_slack_members and request.invitee_slack_id is not None

    def _create(self, request: InviteRequest) -> InvitationResult:
        """One POST (again only after a refused connection, which sent nothing). A lost answer
        raises `AnswerLost`: the caller makes the request unsure, and sends nothing more now."""
        invitation = request.details.to_invitation(
            self.workspace_id(), skip_email=self._bot_delivers(request)
        )
        self._about_to_send(request)
        for attempt in range(1, self.invite_attempts + 1):
            try:
                return self.awork.create_invitation(invitation)
            except AworkUnavailable as exc:
                if exc.ambiguous:
                    raise AnswerLost(exc) from exc
                if exc.code != "connection-failed" or attempt == self.invite_attempts:
                    raise
                self._sleep(min(30.0, max(exc.retry_after or 0.0, 0.5 * 2**attempt)))
            except AworkError as exc:
                if exc.code != "already-exist-error" or not request.uncertain:
                    raise
                # Our own earlier attempt may be what awork found: look the person up.
                found = self._invited_in_awork(request)
                if found is None:
                    raise
                return found
        raise AssertionError("unreachable")  # pragma: no cover

    def _about_to_send(self, request: InviteRequest) -> None:
        """Mark the request `uncertain` before its first POST leaves - with the lease's renewal
        right before it leaves, in one write: whoever takes it over after a crash then knows
        the POST may have reached awork. Until then a takeover may send at once - nothing left
        for awork. A lease lost by then stops the POST (`Work.holding`)."""
        if not request.uncertain:
            self.work.with_next_renewal(request.id, request.claim_id, uncertain=True)

    # -- looking in awork -------------------------------------------------------------------

    def _invited_in_awork(self, request: InviteRequest) -> InvitationResult | None:
        """If awork holds a user with this email created since our claim, our invitation
        went through: return a result without a code. A user from before is a member, which
        is awork's already-exist-error."""
        return self._look(request, None)[0]

    def _look(
        self, request: InviteRequest, seen_after: datetime | None
    ) -> tuple[InvitationResult | None, datetime]:
        """`_invited_in_awork` on a listing of awork's users begun at or after `seen_after`
        (None: read now), and when that listing began."""
        user, seen_at = self.listing.find(request.details.email, seen_after)
        if user is None:
            return None, seen_at
        if not _created_by_us(user, request.invite_started_at):
            raise AworkError(
                "already-exist-error", "The identity is already part of the workspace."
            )
        log.info("request %s: the invitation is in awork already", request.id)
        return InvitationResult(user_id=user.id), seen_at

    def _succeed(
        self, request: InviteRequest, result: InvitationResult, lease: DeliveryLease | None = None
    ) -> InviteRequest:
        ok, stored = self._held(
            request,
            to=Status.INVITED,
            lease=lease,
            result=result,
            outcome_told=False,
            uncertain=False,
            **SETTLED,
            awork_email_skipped=request.details.skip_sending_email or self._bot_delivers(request),
            audit=(  # written with the change
                "invited",
                None,
                {"awork_user": result.user_id, "code_received": result.invitation_code is not None},
            ),
        )
        if not ok:  # taken over meanwhile: its new holder finds the invitation in awork
            log.warning("request %s: invited, but the lease had passed on", request.id)
            return stored or request
        log.info("request %s: invitation created", request.id)
        return stored or request

    def _fail(
        self, request: InviteRequest, exc: AworkError, lease: DeliveryLease | None = None
    ) -> InviteRequest:
        failure = describe_failure(exc, request.details.email)
        log.warning("request %s: awork refused (%s)", request.id, exc.code)
        # If the call may have reached awork, the next attempt looks before it sends.
        uncertain = request.uncertain or (isinstance(exc, AworkUnavailable) and exc.ambiguous)
        ok, stored = self._held(
            request,
            to=Status.FAILED,
            lease=lease,
            failure=failure,
            outcome_told=False,
            uncertain=uncertain,
            **SETTLED,
        )
        if ok:
            self.store.record(
                "invite_failed", request.id, code=exc.code, retryable=failure.retryable
            )
        return stored or request


def _created_by_us(user: AworkUser, started_at: datetime | None) -> bool:
    if user.created_on is None or started_at is None:
        return not (user.status and user.status.invitation_accepted)
    return user.created_on >= started_at - CLOCK_SKEW
