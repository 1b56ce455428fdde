"""The acceptance link's part of bringing Slack up to date: who gets it, and what happens
when Slack will not carry it.

An invitee who is in Slack gets a DM with an Accept button (the code stays in the store), and
only they do: a failed `conversations.open` or post leaves the request undelivered, so the
outbox (the Courier's sweep, backing off 30 s to 1 h) tries again until the code's 24 hours
are over. The link is never rerouted to the requester. When the DM has still not arrived
INVITE_REMIND_AFTER after the invitation (at the latest halfway through its 24 hours, see
`InviteRequest.link_notice_at`), that is decided once, by compare-and-set, and the approval
message - the batch's, for a batch member - tells the approvers, without the link.

An invitee who is not in Slack has the link DM'd to the requester, to pass on privately - not
in Slack as Slack says, asked again just before: while it does not answer, the link goes to
nobody and a sweep asks again (awork's own email, not skipped, has reached them). If
Slack refuses the requester that DM (deactivated, not taking the bot's messages), the link is
withheld: never posted where they asked. Their outcome, which goes there instead, and the
approval message say only that it could not be sent; awork's own email carries it.

A mixin of `handlers.delivery.courier.Courier`, which holds the Slack client, the store and the
deliveries these use (`dm`, `direct`, `_posted`, `sync_batch`).

Each DM is in its reader's language (`for_person`): the invitee's Accept DM in the invitee's
Slack locale, the link passed on to the requester in the requester's.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.domain.clock import utcnow
from bot.domain.records import InviteRequest, Status
from bot.ui import notices
from handlers.delivery.parts import CourierParts
from handlers.delivery.slack_errors import SEND_ERRORS, NotKnown, refused

log = logging.getLogger("handlers.delivery.courier")


class LinkDelivery(CourierParts):
    def _deliver_member(self, member: InviteRequest) -> InviteRequest:
        """A batch member: the batch's message speaks for it, so only its invitee's DM (an
        invitee in Slack; the others' links go to the requester as the batch's list)."""
        if (
            member.status is Status.INVITED
            and not member.link_attempted
            and member.invitee_slack_id is not None
        ):
            return self._send_link(member)
        return member

    def _send_link(self, request: InviteRequest) -> InviteRequest:
        """DM the acceptance link: to the invitee if they are in Slack (only to them, retried
        until it is delivered), else to the requester."""
        link = self.service.accept_link(request)
        if link is None:  # found in awork after its answer was lost: the bot has no code
            if request.invitee_slack_id:  # told what to do instead, once; no Accept button
                track = (request, "answer_lost_dm")
                with self.for_person(request.invitee_slack_id):
                    self.dm(request.invitee_slack_id, notices.answer_lost_dm(request), track=track)
            return self.store.update(request.id, link_attempted=True) or request
        invitee = request.invitee_slack_id
        if invitee:  # in Slack: a DM with an Accept button; the code stays in the store
            if request.accept_link_expired:
                return request  # too late: following the invitation lapses it ("Invite again")
            with self.for_person(invitee):
                text, dm_blocks = notices.invitee_dm(request)
                where = self.dm(invitee, text, dm_blocks, track=(request, "invitee_dm"))
            if where is None:  # the sweep tries again; never anyone else
                return self._note_overdue(request)
            changes = {"link_attempted": True, "link_sent_to": invitee, "shown_status": None}
            delivered = self._posted(request, "invitee_dm", where, **changes)
            if request.link_overdue_at is not None:
                self.store.record("link_delivered_late", request.id, invitee=invitee)
                if request.batch_id is not None:
                    self._link_news(request.batch_id)  # the batch's summary drops the warning
            return delivered
        try:  # not in Slack, as looked up at approval: asked again before another gets it
            found = self.slack_member(request.details.email)
        except NotKnown:  # a sweep asks again until the invitation lapses; the approvers are
            # told once it is overdue, as for an invitee's undelivered DM (awork's own email
            # has reached the invitee, unless it was skipped)
            if not request.invitee_unknown:  # the approval message says the link waits
                changes = {"invitee_unknown": True, "shown_status": None}
                request = self.store.update(request.id, **changes) or request
            return self._note_overdue(request)
        if request.invitee_unknown or found is not None:  # known now: said as it is
            changes = {"invitee_unknown": False, "invitee_slack_id": found, "shown_status": None}
            request = self.store.update(request.id, **changes) or request
        if found is not None:  # in Slack after all: their own DM, never the requester's
            return self._send_link(request)
        try:
            with self.for_person(request.requester_id):
                where = self.direct(
                    request.requester_id,
                    notices.link_message(request, link),
                    track=(request, "link_dm"),
                )
        except SEND_ERRORS as exc:
            if refused(exc):  # never to the channel: the link is withheld, the outcome told
                return self._withhold_link(request)
            return request  # Slack's passing trouble: the sweep tries again
        # shown_status=None: the approval message then says where the link went.
        changes = {
            "link_attempted": True,
            "link_sent_to": request.requester_id,
            "shown_status": None,
        }
        return self._posted(request, "link_dm", where, **changes)

    def _withhold_link(self, request: InviteRequest) -> InviteRequest:
        """Slack refused the requester the DM that was to carry the link of an invitee who is
        not in Slack: the link goes nowhere else. The approval message says it could not be
        sent, and the requester's outcome - by `news`, so where they asked - says so too."""
        log.warning(
            "request %s: Slack refused %s the DM with the acceptance link; it is withheld",
            request.id,
            request.requester_id,
        )
        self.store.record("link_withheld", request.id, requester=request.requester_id)
        return self.store.update(request.id, link_attempted=True, shown_status=None) or request

    def _note_overdue(self, request: InviteRequest) -> InviteRequest:
        """Once the invitee's DM is overdue, decide (once, by compare-and-set) that the
        approvers are told: the request's approval message shows it, or its batch's."""
        due = request.link_notice_at(self.remind_after)
        now = utcnow()
        if due is None or now < due:
            return request
        changes: dict[str, Any] = {"link_overdue_at": now}
        if request.batch_id is None:
            # The approval message says so, and the requester hears the outcome with it.
            changes["shown_status"] = None
        ok, noted = self.store.transition(
            request.id,
            {Status.INVITED},
            Status.INVITED,
            require={"link_attempted": False, "link_overdue_at": None},
            **changes,
        )
        if not ok:
            return noted or request
        self.store.record("link_undelivered", request.id, invitee=request.invitee_slack_id)
        log.warning(
            "request %s: the link to %s is still undelivered; the approvers are told",
            request.id,
            request.invitee_slack_id or "an invitee Slack did not say is a member",
        )
        if request.batch_id is not None:
            self._link_news(request.batch_id)
        return noted or request

    def _link_news(self, batch_id: str) -> None:
        """A member's link delivery changed what its batch's summary says: count it on the
        batch (compare-and-set), so its message is shown again, now or by a sweep."""
        for _ in range(10):
            batch = self.store.get_batch(batch_id)
            if batch is None:
                return
            ok, _ = self.store.transition(
                batch_id,
                {batch.status},
                batch.status,
                require={"link_news": batch.link_news},
                link_news=batch.link_news + 1,
            )
            if ok:
                self.sync_batch(batch_id, wait=0)
                return
        log.warning("batch %s: could not note a member's link delivery", batch_id)
