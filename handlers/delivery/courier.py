"""Bringing Slack up to date with a request: the approval message, notices and the link DM
(whose rules are in handlers/delivery/links.py).

What Slack has been told is kept on the request itself (`approval_message`, `shown_status`,
`waiting_told`, `link_attempted`, `outcome_told`), so delivery is a function of the stored
request: `Courier.sync` does whatever is still missing, once, under a short lease in the store,
and a failed post (Slack down, rate limits past slack_sdk's own retries) is simply done by the
next `sweep` - at start-up and every half minute. Nothing a user did is lost to a Slack outage.

The requester's news that comes later - a decision, the invitation's result, the reminder, a
join, a lapse, the expiry - goes by DM (`news`), naming the channel where they asked; only the
answer to their own action ("waiting for an approver") is ephemeral where they acted (`tell`).

A sweep reads only what is due (the store's due-time index), claimed so that with several
replicas each due record is swept by one of them; the work itself is then taken by leases and
compare-and-set as everywhere else.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient

from bot.domain.batches import BatchStatus, InviteBatch
from bot.domain.clock import utcnow
from bot.domain.records import InviteRequest, MessageRef, PostedMessage, Status
from bot.runtime.command import installed_command
from bot.services.batches import BatchService
from bot.services.invites import InviteService
from bot.store import Record
from bot.store.base import FAR_FUTURE
from bot.ui import approval, lists, notices
from handlers.delivery.batches import BatchDelivery
from handlers.delivery.links import LinkDelivery
from handlers.delivery.slack_errors import ADMIN_CHANNEL_HINTS, SEND_ERRORS, slack_error

log = logging.getLogger(__name__)


class Courier(BatchDelivery, LinkDelivery):
    def __init__(
        self,
        client: WebClient,
        service: InviteService,
        admin_channel: str,
        remind_after: timedelta = timedelta(hours=24),
        expire_after: timedelta = timedelta(days=7),
        batches: BatchService | None = None,
    ) -> None:
        self.client = client
        self.service = service
        self.batches = batches or BatchService(service)
        self.progress_every = 2.0  # seconds between progress updates of a batch's message
        self._progress_at: dict[str, float | None] = {}  # None: an update is being sent
        self._progress_lock = threading.Lock()
        self.store = service.store
        self.admin_channel = admin_channel
        self.remind_after = remind_after
        self.expire_after = expire_after

    # -- one-off private notes ----------------------------------------------------------------

    def dm(self, user_id: str, text: str, blocks: list | None = None) -> tuple[str, str] | None:
        """A direct message from the bot; returns (channel, ts) or None if it failed."""
        try:
            channel = self.client.conversations_open(users=user_id)["channel"]["id"]
            posted = self.client.chat_postMessage(
                channel=channel, text=text, blocks=blocks, unfurl_links=False
            )
            return posted["channel"], posted["ts"]
        except SEND_ERRORS as exc:
            log.warning("could not DM %s: %s", user_id, slack_error(exc))
            return None

    def tell(
        self, user_id: str, channel: str | None, text: str, blocks: list | None = None
    ) -> tuple[str, str] | None:
        """The immediate answer to what someone just did (a refusal, "nothing changed", "your
        request waits"): ephemeral in `channel` when the bot can post there, else a DM."""
        if channel:
            where = self._ephemeral(user_id, channel, text, blocks)
            if where is not None:
                return where
        return self.dm(user_id, text, blocks)

    def news(
        self, user_id: str, channel: str | None, text: str, blocks: list | None = None
    ) -> tuple[str, str] | None:
        """Later news for a requester - a decision, an invitation's result, a reminder, a
        lapse, an expiry: a DM, which stays and notifies (an ephemeral shows only while they
        are in that channel, and is gone on reload). The text names the channel where they
        asked. Only if Slack refuses the DM, the ephemeral there; failing both, a sweep retries."""
        where = self.dm(user_id, text, blocks)
        if where is None and channel:
            where = self._ephemeral(user_id, channel, text, blocks)
        return where

    def _ephemeral(
        self, user_id: str, channel: str, text: str, blocks: list | None
    ) -> tuple[str, str] | None:
        try:
            posted = self.client.chat_postEphemeral(
                channel=channel, user=user_id, text=text, blocks=blocks
            )
            return channel, str(posted.get("message_ts") or "")
        except SEND_ERRORS as exc:
            log.info("ephemeral to %s in %s failed: %s", user_id, channel, slack_error(exc))
            return None

    def replace(self, channel: str, ts: str, text: str, blocks: list | None = None) -> bool:
        """Rewrite a message the bot posted (a DM whose button has done its work)."""
        try:
            self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks or [])
            return True
        except SEND_ERRORS as exc:
            log.warning("could not update message %s in %s: %s", ts, channel, slack_error(exc))
            return False

    def slack_user(self, address: str) -> str | None:
        """The Slack member with this email, if there is one (needs users:read.email)."""
        try:
            user = self.client.users_lookupByEmail(email=address)["user"]
        except SEND_ERRORS as exc:
            if slack_error(exc) != "users_not_found":
                log.warning("users.lookupByEmail failed: %s", slack_error(exc))
            return None
        if user.get("deleted") or user.get("is_bot"):
            return None
        return user.get("id")

    # -- App Home ---------------------------------------------------------------------------------

    def publish_home(
        self,
        user_id: str,
        remember: bool = False,
        approvable: list[Record] | None = None,
    ) -> None:
        """Publish a user's App Home; `remember` marks them as someone who looks at it.
        `approvable`: the approvers' list when the caller has looked it up already."""
        if not user_id:
            return
        if remember and user_id not in self.store.get_meta("home_users", []):
            self.store.add_to_meta_set("home_users", user_id)
        waiting: list[Any] = []
        if self.service.is_approver(user_id):
            listed = self.store.approvable() if approvable is None else approvable
            requests = [r for r in listed if isinstance(r, InviteRequest)]
            waiting = self.service.waiting_for(user_id, requests)
            waiting += self.batches.waiting_for(
                user_id, [b for b in listed if isinstance(b, InviteBatch)]
            )
        own = self.store.listed(user_id)
        mine: list[Any] = self.service.requests_of(
            user_id, [r for r in own if isinstance(r, InviteRequest)]
        )
        mine += self.batches.batches_of(user_id, [b for b in own if isinstance(b, InviteBatch)])
        view = lists.home_view(
            sorted(waiting, key=lambda item: item.created_at),
            sorted(mine, key=lambda item: item.created_at, reverse=True),
            approver=self.service.is_approver(user_id),
            command=installed_command(self.store),
        )
        try:
            self.client.views_publish(user_id=user_id, view=view)
        except SEND_ERRORS as exc:
            log.warning("could not publish the App Home of %s: %s", user_id, slack_error(exc))

    def refresh_homes(self, request: InviteRequest | InviteBatch) -> None:
        """After a request's state shows anew: the homes of its requester and the approvers,
        for those who have opened the App Home at least once."""
        watchers = set(self.store.get_meta("home_users", []))
        viewers = sorted(({request.requester_id} | set(self.service.approvers)) & watchers)
        if not viewers:
            return
        approvable = self.store.approvable()  # one lookup for all of them
        for user_id in viewers:
            self.publish_home(user_id, approvable=approvable)

    # -- keeping Slack in step with a request -------------------------------------------------

    def sync(self, request_id: str, wait: float = 10.0) -> InviteRequest | None:
        """Deliver everything Slack has not yet been told about the request."""
        return self._sync(request_id, wait, self._deliver)

    def _sync(self, record_id: str, wait: float, deliver: Any, seconds: float = 60) -> Any:
        """Under a short lease on the record (a request or a batch), `deliver` until Slack has
        caught up or nothing more can be delivered now."""
        owner = f"{self.service.instance_id}:{threading.get_ident()}"
        deadline = time.monotonic() + wait
        while not self.store.lease(record_id, owner, seconds=seconds):
            if time.monotonic() >= deadline:
                return None  # another thread or instance is delivering; a sweep catches up
            time.sleep(0.02)
        try:
            record = self.store.read(record_id)
            # The state may move on while we post; go round until Slack has caught up.
            for _ in range(4):
                if record is None or not record.needs_delivery():
                    break
                before = record.version
                record = deliver(record)
                if record.version == before:
                    break  # nothing could be delivered now; a later sweep retries
                if not self.store.lease(record_id, owner, seconds=seconds):
                    break  # renewed for the next round, or no longer ours
            return self._schedule_retry(record)
        finally:
            self.store.release(record_id, owner)

    def _schedule_retry(self, record: Any) -> Any:
        """Back off between sweeps for a record Slack keeps refusing (30 s doubling to 1 h),
        so a deactivated requester or a long outage does not mean a post every half minute."""
        if record is None:
            return None
        busy = record.status in (Status.INVITING, Status.JOINING, BatchStatus.RUNNING)
        if record.needs_delivery() and not busy:
            failures = record.delivery_failures + 1
            wait = timedelta(seconds=min(3600, 30 * 2 ** (failures - 1)))
            return self.store.update(
                record.id, delivery_failures=failures, next_delivery_at=utcnow() + wait
            )
        if record.delivery_failures:
            return self.store.update(record.id, delivery_failures=0, next_delivery_at=None)
        return record

    def sweep(self, force: bool = False, limit: int = 200) -> int:
        """Do the work that is due, as the store's due-time index says: take over invitations,
        acceptances and bulk runs whose lease expired, remind and expire pending requests,
        follow invitations to joined or lapsed, and redo deliveries that failed (all of them
        with `force`, as at start-up, however far their back-off). Each due record is claimed
        for the sweep, so several replicas share the work. Returns how many were looked at."""
        owner = self.service.instance_id
        horizon = FAR_FUTURE if force else None
        swept: list[str] = []
        try:
            while True:  # held ones are not claimed again: each due record once per sweep
                due = self.store.claim_due(owner, hold=60.0, limit=limit, horizon=horizon)
                swept += [record.id for record in due]
                self._sweep_requests([r for r in due if isinstance(r, InviteRequest)], force)
                self._sweep_batches([b for b in due if isinstance(b, InviteBatch)], force)
                if len(due) < limit:
                    return len(swept)
        finally:
            self.store.release_due(owner, swept)

    def _sweep_requests(self, due: list[InviteRequest], force: bool) -> None:
        for request in due:
            if request.status is Status.INVITING and not self.service.is_active(request.id):
                recovered = self.service.recover(request)  # None while its lease runs
                if recovered is not None:
                    self.sync(recovered.id)
            elif request.status is Status.JOINING and not self.service.is_active(request.id):
                settled = self.service.settle_joining(request)
                if settled is not None:
                    self.sync(settled.id)
        changed = self.service.remind_and_expire(due, self.remind_after, self.expire_after)
        for request_id in changed + self.service.follow_invitations(due):
            self.sync(request_id, wait=0)
        now = utcnow()
        for request in due:
            ready = force or request.next_delivery_at is None or request.next_delivery_at <= now
            notice = request.link_notice_at(self.remind_after)  # due whatever the back-off
            ready = ready or (notice is not None and notice <= now)
            busy = request.status in (Status.INVITING, Status.JOINING)
            if ready and not busy and request.needs_delivery() and request.id not in changed:
                self.sync(request.id, wait=0)

    def _sweep_batches(self, due: list[InviteBatch], force: bool) -> None:
        """Batches: take over runs whose lease expired, remind/expire, redo deliveries."""
        for batch in due:
            if batch.status is not BatchStatus.RUNNING:
                continue
            if self.service.is_active(batch.id):
                continue  # run here, its lease renewed
            claimed = self.batches.take_over(batch)
            if claimed is not None:
                log.info("batch %s: resuming a run whose lease expired", claimed.id)
                threading.Thread(
                    target=self._resume,
                    args=(claimed.id, claimed.claim_id),
                    name="batch-resume",
                    daemon=True,
                ).start()
        changed = self.batches.remind_and_expire(due, self.remind_after, self.expire_after)
        for batch_id in changed:
            self.sync_batch(batch_id, wait=0)
        now = utcnow()
        for batch in due:
            ready = force or batch.next_delivery_at is None or batch.next_delivery_at <= now
            running = batch.status is BatchStatus.RUNNING
            if ready and not running and batch.needs_delivery() and batch.id not in changed:
                self.sync_batch(batch.id, wait=0)

    def _deliver(self, request: InviteRequest) -> InviteRequest:
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
            where = say(
                request.requester_id, request.origin_channel, notices.waiting_notice(request)
            )
            if where:
                request = self._posted(request, "waiting_notice", where, waiting_told=True)
        elif request.status is Status.PENDING and request.reminder_posted:
            if not request.reminder_told:
                expires = request.created_at + self.expire_after
                text = notices.requester_reminder(request, expires)
                where = self.news(request.requester_id, request.origin_channel, text)
                if where:
                    request = self._posted(request, "reminder_notice", where, reminder_told=True)
        elif self._outcome_due(request):
            command = installed_command(self.store)
            offer = (
                notices.invite_again_offer(request, command)
                if request.status is Status.LAPSED
                else None
            )
            notice = notices.outcome_notice(request, command)
            where = self.news(request.requester_id, request.origin_channel, notice, offer)
            if where:
                request = self._posted(request, "outcome_notice", where, outcome_told=True)
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
        text, message_blocks = approval.approval_message(request)
        try:
            posted = self.client.chat_postMessage(
                channel=self.admin_channel, text=text, blocks=message_blocks
            )
        except SEND_ERRORS as exc:
            error = slack_error(exc)
            hint = ADMIN_CHANNEL_HINTS.get(error, "it is retried")
            log.error(
                "request %s: could not post the approval message (%s): %s", request.id, error, hint
            )
            return request
        self.refresh_homes(request)
        ref = MessageRef(channel=posted["channel"], ts=posted["ts"])
        return self._posted(
            request,
            "approval",
            (ref.channel, ref.ts),
            approval_message=ref,
            shown_status=request.status,
        )

    def _post_reminder(self, request: InviteRequest) -> InviteRequest:
        ref = request.approval_message
        if ref is None:
            return request
        try:
            posted = self.client.chat_postMessage(
                channel=ref.channel, thread_ts=ref.ts, text=notices.reminder(request)
            )
        except SEND_ERRORS as exc:
            log.warning("request %s: could not post the reminder: %s", request.id, slack_error(exc))
            return request
        return self._posted(
            request, "reminder", (posted["channel"], posted["ts"]), reminder_posted=True
        )

    def _update_approval(self, request: InviteRequest) -> InviteRequest:
        text, message_blocks = approval.approval_message(request)
        ref = request.approval_message
        try:
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
        return self.store.update(request.id, shown_status=request.status) or request

    def _posted(self, request: Any, kind: str, where: tuple[str, str], **changes: object) -> Any:
        """Keep the posted message's place with the request, in the audit log too."""
        channel, ts = where
        current = self.store.read(request.id) or request
        message = PostedMessage(kind=kind, channel=channel, ts=ts)
        updated = self.store.update(request.id, messages=[*current.messages, message], **changes)
        self.store.record("message_posted", request.id, kind=kind, channel=channel, ts=ts)
        return updated or request
