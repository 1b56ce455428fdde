"""What settling an unsure invitation needs besides the invite service itself: the lost answer
as an exception, and awork's user list shared by the looks that are due together.

An invitation whose answer was lost is looked for in awork at growing intervals (the timing is
bot/domain/settling.py, the state on the request, the looks in `Unsure` below). A
look asks whether a person exists; answering it reads awork's whole user list (paged). When
many are due together - a batch's members whose answers were all lost while awork was slow,
swept together - one listing answers all of them: a look due at `t` may use any listing begun
at or after `t`, which saw whatever awork had by then.

`Unsure` is the part of `Inviting` that holds a request unsure, looks again when a look is
due, and sends once more only after the window: its methods use the invite service's store,
settling schedule, work lease and its POST (`_create`) and look (`_look`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.awork.client import AworkClient
from bot.awork.errors import AworkUnavailable
from bot.domain.awork_models import AworkUser, InvitationResult
from bot.domain.records import InviteRequest, Status
from bot.domain.settling import Settling
from bot.services.leases import LeaseLost, Work
from bot.store import Store
from bot.store.leasing import DeliveryLease

log = logging.getLogger("bot.services.inviting")  # one logger for inviting, unsure or not


class AnswerLost(Exception):
    """A POST's answer was lost (`AworkUnavailable.ambiguous`): awork may have carried it
    out, or may still be doing so. Nothing more is sent until awork has been asked."""

    def __init__(self, error: AworkUnavailable) -> None:
        super().__init__(str(error))
        self.error = error


class UserListing:
    """awork's users as last listed, by address, and when that listing began (the store's
    clock, `clock`). `find` lists them again only when the last listing began before the
    look was due; callers wait for a listing being read rather than read their own."""

    def __init__(self, awork: AworkClient, clock: Callable[[], datetime]) -> None:
        self.awork = awork
        self.clock = clock
        self._lock = threading.Lock()
        self._began: datetime | None = None
        self._by_address: dict[str, AworkUser] = {}

    def find(self, address: str, seen_after: datetime | None) -> tuple[AworkUser | None, datetime]:
        """The user with this address in a listing begun at or after `seen_after` (None: a
        listing read now), and when that listing began."""
        with self._lock:
            if seen_after is None or self._began is None or self._began < seen_after:
                began = self.clock()
                by_address: dict[str, AworkUser] = {}
                for user in self.awork.users():
                    for email in user.emails:
                        by_address.setdefault(email, user)
                self._began, self._by_address = began, by_address
            return self._by_address.get(address.lower()), self._began


class Unsure:
    """The unsure part of `Inviting` (bot/services/inviting.py), which provides `store`,
    `settling`, `work`, `_create` and `_look`."""

    store: Store
    settling: Settling
    work: Work

    def _held(
        self, request: InviteRequest, to: Status = Status.INVITING, **changes: object
    ) -> tuple[bool, InviteRequest | None]:
        """Change an inviting request - moving it `to`, with `changes` - by compare-and-set,
        only while the claim this caller holds on it is still the request's."""
        return self.store.transition(  # type: ignore[return-value]
            request.id, {Status.INVITING}, to, require={"claim_id": request.claim_id}, **changes
        )

    def _unsure_since_last_send(
        self, request: InviteRequest, lease_ended: datetime | None
    ) -> InviteRequest:
        """A holder that died with its POST perhaps on the way: that answer is lost, so the
        request is unsure from the last moment a request of its could leave - its lease's last
        renewal, one lease before the lease ended. Long ago, the window is over and one look
        decides; just now, it is looked for until the window ends before anything is sent."""
        if lease_ended is None:
            return request
        ok, stored = self._held(
            request,
            unsure_since=lease_ended - timedelta(seconds=self.work.lease),
            unsure_checks=0,
        )
        return stored if ok and stored is not None else request

    def _unsure(
        self, request: InviteRequest, exc: AworkUnavailable, lease: DeliveryLease | None = None
    ) -> InviteRequest:
        """The POST's answer was lost: hold the request, unsure, with its lease running to
        the first look (any instance's sweep makes it), and send nothing more for now."""
        now = self.store.now()
        first = self.settling.next_check(now, 0, now)
        ok, stored = self._held(
            request,
            lease=lease,
            unsure_since=now,
            unsure_checks=0,
            uncertain=True,
            claim_until=first,
            shown_status=None,  # the approval message says awork is slow to answer
        )
        if ok and stored is not None:
            self.store.record("invite_unsure", request.id, code=exc.code, resent=stored.resent)
            log.warning(
                "request %s: awork's answer was lost (%s); asking awork whether it went "
                "through, for %ds, before anything is sent again",
                request.id,
                exc.code,
                self.settling.window.total_seconds(),
            )
            self._wake(first, now)
        return stored or request

    def _look_again(
        self, request: InviteRequest, due: datetime | None
    ) -> InviteRequest | InvitationResult:
        """An unsure request's look in awork: the invitation found (a result without a
        code), the request held for a later look, or - absent once the window has passed -
        the result of the one POST that is then sent again."""
        since = request.unsure_since
        assert since is not None
        now = self.store.now()
        # A listing of awork's users begun after the look was due answers it; one that is
        # to confirm an absence must have begun after the window.
        over = self.settling.over(since, now)
        seen_after = since + self.settling.window if over else min(due or now, now)
        try:
            found, seen_at = self._look(request, seen_after)
        except AworkUnavailable as exc:
            log.warning(
                "request %s: awork could not be asked (%s); asking later", request.id, exc.code
            )
            return self._look_later(request, now)
        if found is not None:
            return found
        if not self.settling.over(since, seen_at):
            return self._look_later(request, now)
        if request.resent:  # absent after the window twice: nobody was invited
            raise AworkUnavailable("answer-lost", "awork did not create the invitation")
        ok, resending = self._held(
            request,
            resent=True,
            unsure_since=now,  # if this answer is lost too (or we crash), settled from here
            unsure_checks=0,
        )
        if not ok or resending is None:
            raise LeaseLost(f"{request.id}: the lease passed on before sending again")
        self.store.record("invite_resent", request.id)
        log.info(
            "request %s: awork has no such person after %ds; sending it once more",
            request.id,
            self.settling.window.total_seconds(),
        )
        return self._create(resending)

    def _look_later(self, request: InviteRequest, now: datetime) -> InviteRequest:
        """Still unsure: the lease runs to the next look, a longer while away."""
        since = request.unsure_since or now
        checks = request.unsure_checks + 1
        at = self.settling.next_check(since, checks, now)
        ok, stored = self._held(
            request,
            unsure_checks=checks,
            claim_until=at,
        )
        if ok:
            self._wake(at, now)
        return stored or request

    def _wake(self, at: datetime, now: datetime) -> None:
        """Bring this process's sweep back when the next look is due."""
        self.work.alarm.set((at - now).total_seconds() + 0.05)
