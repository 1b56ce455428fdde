"""Bringing Slack up to date with a request: the approval message, notices and the link DM.

What Slack has been told is kept on the request itself (`approval_message`, `shown_status`,
`waiting_told`, `link_attempted`, `outcome_told`), so delivery is a function of the stored
request: `Courier.sync` does whatever is still missing, once, under a short lease in the store,
and a failed post (Slack down, rate limits past slack_sdk's own retries) is simply done by the
next `sweep` - at start-up and every half minute. Nothing a user did is lost to a Slack outage.

A sweep reads only what is due (the store's due-time index), claimed so that with several
replicas each due record is swept by one of them; the work itself is then taken by leases and
compare-and-set as everywhere else.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks, bulk_blocks
from bot.bulk import BatchService, Summary
from bot.models import (
    BatchStatus,
    InviteBatch,
    InviteRequest,
    MessageRef,
    PostedMessage,
    Status,
    utcnow,
)
from bot.service import InviteService
from bot.store import Record, StoreClosed
from bot.store.base import FAR_FUTURE

log = logging.getLogger(__name__)

SEND_ERRORS = (SlackApiError, OSError)
# Slack errors that mean the configuration is wrong, with what the admin should do.
ADMIN_CHANNEL_HINTS = {
    "channel_not_found": "check INVITE_ADMIN_CHANNEL (a channel id like C0123…); for a private channel, add the bot to it",
    "not_in_channel": "add the bot to the INVITE_ADMIN_CHANNEL channel",
    "is_archived": "INVITE_ADMIN_CHANNEL is archived; set another channel",
    "invalid_auth": "check SLACK_BOT_TOKEN",
    "missing_scope": "reinstall the app from manifest.yml so it has every scope",
}


def slack_error(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error", "unknown"))
    return type(exc).__name__


class Courier:
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
        """A private note: ephemeral in `channel` when the bot can post there, else a DM."""
        if channel:
            try:
                posted = self.client.chat_postEphemeral(
                    channel=channel, user=user_id, text=text, blocks=blocks
                )
                return channel, str(posted.get("message_ts") or "")
            except SEND_ERRORS as exc:
                log.info(
                    "ephemeral to %s in %s failed (%s); DMing", user_id, channel, slack_error(exc)
                )
        return self.dm(user_id, text, blocks)

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
        view = blocks.home_view(
            sorted(waiting, key=lambda item: item.created_at),
            sorted(mine, key=lambda item: item.created_at, reverse=True),
            approver=self.service.is_approver(user_id),
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
                    target=self._resume, args=(claimed.id,), name="batch-resume", daemon=True
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

    # -- batches ------------------------------------------------------------------------------

    def run_batch(self, batch_id: str) -> InviteBatch | None:
        """Run a batch this process claimed, showing progress, then the summary and links."""

        def started() -> None:
            self.sync_batch(batch_id)  # "Approved by @x, inviting: 0 of N"
            with self._progress_lock:  # an update too: the next comes 2 s later at the soonest
                self._progress_at[batch_id] = time.monotonic()

        # Slack's part runs under the run's renewed lease: users.list may take long.
        batch = self.batches.run(
            batch_id,
            self.slack_directory,
            on_progress=lambda done: self.batch_progress(batch_id, done),
            on_start=started,
        )
        self.sync_batch(batch_id)
        if batch is not None and batch.status is BatchStatus.DONE:
            for member in self.batches.members(batch):
                if member is not None and member.needs_delivery():
                    self.sync(member.id, wait=0)  # the invitee's DM with its Accept button
        return self.store.get_batch(batch_id)

    def _resume(self, batch_id: str) -> None:
        with contextlib.suppress(StoreClosed):  # stopping: the next start resumes it again
            self.run_batch(batch_id)

    def slack_directory(self) -> dict[str, str]:
        """Every active member's email -> Slack id, read once per batch with users.list
        (one paged call instead of a lookupByEmail per person, which Slack rate-limits)."""
        found: dict[str, str] = {}
        try:
            for page in self.client.users_list(limit=200):
                for user in page.get("members") or []:
                    email = (user.get("profile") or {}).get("email")
                    if email and not user.get("deleted") and not user.get("is_bot"):
                        found[str(email).lower()] = user["id"]
        except SEND_ERRORS as exc:
            log.warning("users.list failed (%s): links go to the requester", slack_error(exc))
        return found

    def batch_progress(self, batch_id: str, done: int) -> None:
        """Show a running batch's progress on its message, at most every `progress_every` s."""
        with self._progress_lock:
            last = self._progress_at.get(batch_id, 0.0)
            if last is None or time.monotonic() - last < self.progress_every:
                return  # one is being sent, or one went out less than 2 s ago
            self._progress_at[batch_id] = None
        try:
            batch = self.store.get_batch(batch_id)
            if batch is None or batch.approval_message is None:
                return
            # The count from the run itself: no reading of every member while awork is called.
            text, message_blocks = bulk_blocks.batch_approval_message(batch, done=done)
            ref = batch.approval_message
            try:
                self.client.chat_update(
                    channel=ref.channel, ts=ref.ts, text=text, blocks=message_blocks
                )
            except SEND_ERRORS as exc:
                log.info("batch %s: progress not shown (%s)", batch_id, slack_error(exc))
        finally:
            with self._progress_lock:  # counted from when Slack has it: arrivals 2 s apart
                self._progress_at[batch_id] = time.monotonic()

    def sync_batch(self, batch_id: str, wait: float = 10.0) -> InviteBatch | None:
        """Deliver everything Slack has not yet been told about a batch (as `sync`)."""
        return self._sync(batch_id, wait, self._deliver_batch, seconds=120)

    def _deliver_batch(self, batch: InviteBatch) -> InviteBatch:
        summary = self.batches.summary(batch) if batch.status is BatchStatus.DONE else None
        text, message_blocks = bulk_blocks.batch_approval_message(batch, summary)
        shown = {"shown_status": batch.status, "shown_run": batch.run}
        if batch.approval_message is None:
            try:
                posted = self.client.chat_postMessage(
                    channel=self.admin_channel, text=text, blocks=message_blocks
                )
            except SEND_ERRORS as exc:
                error = slack_error(exc)
                log.error(
                    "batch %s: could not post the approval message (%s): %s",
                    batch.id,
                    error,
                    ADMIN_CHANNEL_HINTS.get(error, "it is retried"),
                )
                return batch
            ref = MessageRef(channel=posted["channel"], ts=posted["ts"])
            batch = self._posted(
                batch, "approval", (ref.channel, ref.ts), approval_message=ref, **shown
            )
            self.refresh_homes(batch)
        elif batch.shown_status is not batch.status or batch.shown_run != batch.run:
            ref = batch.approval_message
            try:
                self.client.chat_update(
                    channel=ref.channel, ts=ref.ts, text=text, blocks=message_blocks
                )
            except SEND_ERRORS as exc:
                log.warning(
                    "batch %s: could not update its message: %s", batch.id, slack_error(exc)
                )
                return batch
            batch = self.store.update(batch.id, **shown) or batch
            self.refresh_homes(batch)
        if batch.status is BatchStatus.PENDING:
            if batch.reminded_at and not batch.reminder_posted and batch.approval_message:
                try:
                    posted = self.client.chat_postMessage(
                        channel=batch.approval_message.channel,
                        thread_ts=batch.approval_message.ts,
                        text=bulk_blocks.batch_reminder(batch),
                    )
                    batch = self._posted(
                        batch, "reminder", (posted["channel"], posted["ts"]), reminder_posted=True
                    )
                except SEND_ERRORS as exc:
                    log.warning("batch %s: reminder not posted: %s", batch.id, slack_error(exc))
            if not batch.waiting_told:
                where = self.tell(
                    batch.requester_id,
                    batch.origin_channel,
                    bulk_blocks.batch_waiting_notice(batch),
                )
                if where:
                    batch = self._posted(batch, "waiting_notice", where, waiting_told=True)
            return batch
        if batch.status is BatchStatus.DONE and not batch.links_listed:
            batch = self._list_links(batch, summary or self.batches.summary(batch))
        if batch.status is not BatchStatus.RUNNING and not batch.outcome_told:
            notice = bulk_blocks.batch_outcome_notice(batch, summary or self.batches.summary(batch))
            where = self.tell(batch.requester_id, batch.origin_channel, notice)
            if where:
                batch = self._posted(batch, "outcome_notice", where, outcome_told=True)
        return batch

    def _list_links(self, batch: InviteBatch, summary: Summary) -> InviteBatch:
        """The links of invitees who are not in Slack, to the requester by DM, 50 a message;
        each member is marked once its message is out, so a retry sends only the rest.
        `summary`: the members as just read for the message (not read again)."""
        due = [
            member
            for member in summary.invited
            if member.status is Status.INVITED
            and not member.link_attempted
            and member.invitee_slack_id is None
        ]
        with_links = [(m, self.service.accept_link(m)) for m in due]
        for member, link in with_links:
            if link is None:  # found in awork after a crash: awork's own email has the link
                self.store.update(member.id, link_attempted=True)
        pairs = [(m, link) for m, link in with_links if link is not None]
        size = bulk_blocks.LINKS_PER_MESSAGE
        chunks = [pairs[i : i + size] for i in range(0, len(pairs), size)]
        for number, chunk in enumerate(chunks, start=1):
            text = bulk_blocks.batch_links(
                batch, [(m.details.email, link) for m, link in chunk], number, len(chunks)
            )
            where = self.dm(batch.requester_id, text)
            if where is None:
                return batch  # the rest go at the next sweep
            for member, _ in chunk:
                self.store.update(member.id, link_attempted=True, link_sent_to=batch.requester_id)
            batch = self._posted(batch, "link_list", where)
        return self.store.update(batch.id, links_listed=True) or batch

    def _deliver(self, request: InviteRequest) -> InviteRequest:
        if request.approval_message is None:
            request = self._post_approval(request)
        if request.status is Status.INVITED and not request.link_attempted:
            request = self._send_link(request)
        if request.approval_message is not None and request.shown_status is not request.status:
            request = self._update_approval(request)
        if request.status is Status.PENDING and request.reminded_at and not request.reminder_posted:
            request = self._post_reminder(request)
        if request.status is Status.PENDING and not request.waiting_told:
            where = self.tell(
                request.requester_id, request.origin_channel, blocks.waiting_notice(request)
            )
            if where:
                request = self._posted(request, "waiting_notice", where, waiting_told=True)
        elif self._outcome_due(request):
            offer = blocks.invite_again_offer(request) if request.status is Status.LAPSED else None
            where = self.tell(
                request.requester_id, request.origin_channel, blocks.outcome_notice(request), offer
            )
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
        # The requester hears where the link went, so the link goes first.
        return request.status is not Status.INVITED or request.link_attempted

    def _post_approval(self, request: InviteRequest) -> InviteRequest:
        text, message_blocks = blocks.approval_message(request)
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
                channel=ref.channel, thread_ts=ref.ts, text=blocks.reminder(request)
            )
        except SEND_ERRORS as exc:
            log.warning("request %s: could not post the reminder: %s", request.id, slack_error(exc))
            return request
        return self._posted(
            request, "reminder", (posted["channel"], posted["ts"]), reminder_posted=True
        )

    def _update_approval(self, request: InviteRequest) -> InviteRequest:
        text, message_blocks = blocks.approval_message(request)
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

    def _send_link(self, request: InviteRequest) -> InviteRequest:
        """DM the acceptance link: to the invitee if they are in Slack, else to the requester."""
        link = self.service.accept_link(request)
        if link is None:  # found in awork after a crash: awork's own email carries the link
            return self.store.update(request.id, link_attempted=True) or request
        invitee = request.invitee_slack_id
        if invitee:  # in Slack: a DM with an Accept button; the code stays in the store
            text, dm_blocks = blocks.invitee_dm(request)
            where = self.dm(invitee, text, dm_blocks)
            if where:
                changes = {"link_attempted": True, "link_sent_to": invitee, "shown_status": None}
                return self._posted(request, "invitee_dm", where, **changes)
        where = self.dm(request.requester_id, blocks.link_message(request, link))
        if where:
            # shown_status=None: the approval message then says where the link went.
            changes = {
                "link_attempted": True,
                "link_sent_to": request.requester_id,
                "shown_status": None,
            }
            return self._posted(request, "link_dm", where, **changes)
        return request

    def _posted(self, request: Any, kind: str, where: tuple[str, str], **changes: object) -> Any:
        """Keep the posted message's place with the request, in the audit log too."""
        channel, ts = where
        current = self.store.read(request.id) or request
        message = PostedMessage(kind=kind, channel=channel, ts=ts)
        updated = self.store.update(request.id, messages=[*current.messages, message], **changes)
        self.store.record("message_posted", request.id, kind=kind, channel=channel, ts=ts)
        return updated or request
