"""One request's part of bringing Slack up to date: its approval message (posted, then kept
in step with its status), the reminder in that message's thread, and the requester's notices -
"waiting" where they asked, later news by DM.

A mixin of `handlers.delivery.courier.Courier`, which holds the Slack client, the store, the
lease loop (`_sync`) and the other deliveries these use (`tell`, `news`, `_posted`,
`refresh_homes`, and the link's `_send_link` and `_deliver_member`).

The approval message and its thread are in INVITE_LANGUAGE (`for_channel`), the requester's
notices in the requester's language (`for_person`), built and sent so: a sweep's thread, or a
listener acting for someone else, speaks nobody's language in particular.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.domain.records import InviteRequest, MessageRef, Status
from bot.runtime.command import installed_command
from bot.store.leasing import DeliveryLease
from bot.ui import approval, notices
from handlers.delivery.parts import CourierParts
from handlers.delivery.slack_errors import (
    SEND_ERRORS,
    slack_error,
)

log = logging.getLogger("handlers.delivery.courier")


class RequestDelivery(CourierParts):
    def sync(
        self,
        request_id: str,
        wait: float = 10.0,
        lease: DeliveryLease | None = None,
        stored: InviteRequest | None = None,
        close_with: Callable[[Callable[[Any], dict[str, Any]]], None] | None = None,
    ) -> InviteRequest | None:
        """Deliver everything Slack has not yet been told about the request; `lease` (from
        `lease_here`) taken with the change that stored the request as `stored`, if it was;
        `close_with`: the caller's next write, to give the lease back with (`_sync`)."""
        return self._sync(
            request_id, wait, self._deliver, taken_with=(lease, stored), close_with=close_with
        )

    def _deliver(self, request: InviteRequest) -> InviteRequest:
        if request.step_outcome() is not None:  # a workflow step run waits for it
            request = self._complete_request_step(request)
        if request.batch_id is not None:
            return self._deliver_member(request)
        if request.approval_message is None:
            request = self._post_approval(request)
        if request.status is Status.INVITED and not request.link_attempted:
            request = self._send_link(request)
        if request.approval_message is not None and request.shown_status is not request.status:
            request = self._update_approval(request)
        if request.status is Status.PENDING and request.reminded_at and not request.reminder_posted:
            request = self._post_reminder(request)
        if request.status is Status.PENDING and not request.waiting_told:
            # The answer to their asking, where they asked - or, for "Invite again" clicked in
            # the DM that brought the lapse, in that DM.
            say = self.news if request.reinvite_of else self.tell
            with self.for_person(request.requester_id):
                where = say(
                    request.requester_id,
                    request.origin_channel,
                    notices.waiting_notice(request),
                    track=(request, "waiting_notice"),
                )
            if where:
                request = self._posted_last(request, "waiting_notice", where, waiting_told=True)
        elif request.status is Status.PENDING and request.reminder_posted:
            if not request.reminder_told:
                request = self.remind_requester(request)
        elif request.status is Status.INVITING and request.unsure_since and not request.unsure_told:
            track = (request, "unsure_notice")
            with self.for_person(request.requester_id):
                text = notices.unsure_notice(request)  # awork is slow: the result comes later
                where = self.news(request.requester_id, request.origin_channel, text, track=track)
            if where:
                request = self._posted_last(request, "unsure_notice", where, unsure_told=True)
        elif self._outcome_due(request):
            command = installed_command(self.store)
            with self.for_person(request.requester_id):
                offer = (
                    notices.invite_again_offer(request, command)
                    if request.status is Status.LAPSED
                    else None
                )
                where = self.news(
                    request.requester_id,
                    request.origin_channel,
                    notices.outcome_notice(request, command),
                    offer,
                    track=(request, "outcome_notice"),
                )
            if where:
                request = self._posted_last(request, "outcome_notice", where, outcome_told=True)
        return request

    @staticmethod
    def _outcome_due(request: InviteRequest) -> bool:
        if (
            request.status in (Status.PENDING, Status.INVITING, Status.JOINING)
            or request.outcome_told
        ):
            return False
        # The requester hears where the link went, so the link goes first - or, for an invitee
        # whose DM Slack keeps refusing, that it has not arrived, when the approvers hear it.
        return (
            request.status is not Status.INVITED
            or request.link_attempted
            or request.link_overdue_at is not None
        )

    def _post_approval(self, request: InviteRequest) -> InviteRequest:
        posted = self.post_approval(request, "request", lambda: approval.approval_message(request))
        if posted is None:
            return request
        self.refresh_homes(request)
        ref = MessageRef(channel=posted[0], ts=posted[1])
        # Found in Slack after its answer was lost, it shows what was then: updated next round.
        shown = {} if posted.adopted else {"shown_status": request.status}
        return self._posted(request, "approval", posted, approval_message=ref, **shown)

    def _post_reminder(self, request: InviteRequest) -> InviteRequest:
        ref = request.approval_message
        if ref is None:
            return request
        try:
            with self.for_channel():
                posted = self.post(
                    request, "reminder", ref.channel, notices.reminder(request), thread_ts=ref.ts
                )
        except SEND_ERRORS as exc:
            log.warning("request %s: could not post the reminder: %s", request.id, slack_error(exc))
            return request
        return self._posted(request, "reminder", posted, reminder_posted=True)

    def _update_approval(self, request: InviteRequest) -> InviteRequest:
        ref = request.approval_message
        try:
            with self.for_channel():
                text, message_blocks = approval.approval_message(request)
                self.client.chat_update(
                    channel=ref.channel, ts=ref.ts, text=text, blocks=message_blocks
                )
        except SEND_ERRORS as exc:
            log.warning(
                "request %s: could not update the approval message: %s",
                request.id,
                slack_error(exc),
            )
            return request
        self.refresh_homes(request)
        return self.note_after_round(request, shown_status=request.status)
