"""The outbox: bringing Slack up to date with requests and batches, now or by a later sweep.

What Slack has been told is kept on the request itself (`approval_message`, `shown_status`,
`waiting_told`, `link_attempted`, `outcome_told`), so delivery is a function of the stored
record: `Courier.sync` does whatever is still missing, once, under a short lease in the store,
and a failed post (Slack down, rate limits past slack_sdk's own retries) is simply done by the
next `sweep` - at start-up and every half minute - backing off for a record Slack keeps refusing.
Nothing a user did is lost to a Slack outage.

What is delivered lives beside this module, each part a mixin of the Courier: one request's
messages (requests.py), a batch's run, message and links (batches.py), the acceptance link
(links.py), the App Home (homes.py), what is said to one person (notes.py), completing the
Workflow Builder step run that asked (steps.py), and posting itself: with metadata, and not
twice when Slack's answer was lost (posts.py).

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
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient

from bot.domain.batches import BatchStatus, InviteBatch
from bot.domain.clock import utcnow
from bot.domain.records import InviteRequest, PostedMessage, Status
from bot.services.batches import BatchService
from bot.services.invites import InviteService
from bot.store.audit_log import Audited
from bot.store.base import FAR_FUTURE
from bot.store.leasing import DeliveryLease, closing
from handlers.delivery.batches import BatchDelivery
from handlers.delivery.homes import HomeTabs
from handlers.delivery.languages import Languages
from handlers.delivery.links import LinkDelivery
from handlers.delivery.notes import PrivateNotes
from handlers.delivery.posts import CLOCK_SKEW, TrackedPosts
from handlers.delivery.remembered import Remembered
from handlers.delivery.requests import RequestDelivery
from handlers.delivery.steps import StepCompletion

log = logging.getLogger(__name__)

ROUND_SECONDS = 60.0  # a delivery round's lease at the least


class Courier(
    RequestDelivery,
    BatchDelivery,
    LinkDelivery,
    HomeTabs,
    PrivateNotes,
    TrackedPosts,
    StepCompletion,
):
    def __init__(
        self,
        client: WebClient,
        service: InviteService,
        admin_channel: str,
        remind_after: timedelta = timedelta(hours=24),
        expire_after: timedelta = timedelta(days=7),
        batches: BatchService | None = None,
        slack_timeout: float = 30.0,
        slack_retries: int = 2,
        languages: Languages | None = None,
    ) -> None:
        self.client = client
        # Whose language each message is in: a person's Slack locale, INVITE_LANGUAGE for a
        # channel (`speaking(self.languages.of(user))`, `speaking(self.languages.channel)`).
        self.languages = languages or Languages(client)
        # Each person's DM channel with the bot, as conversations.open gave it: the same for as
        # long as both exist, so asked for once a day rather than before every DM (an approval
        # DMs its requester and the invitee). Forgotten when Slack refuses a post to it; asked
        # again after a day anyway, as conversations.open says when a person was deactivated
        # and a post to their old channel would not (notes.py).
        self.dm_channels: Remembered[str] = Remembered()
        # A post whose answer was lost is looked for in Slack once it can no longer be on its
        # way (the client's timeout, and a few seconds for Slack's history to show it), over
        # the minutes around the attempt (the clocks' skew and the client's whole budget).
        self.wall_clock = utcnow
        self.look_after = slack_timeout + min(5.0, slack_timeout)
        self.look_back = CLOCK_SKEW + timedelta(seconds=slack_timeout * (slack_retries + 1))
        # A delivery's lease outlives a few slow Slack calls in one round, and is renewed
        # right before each post (`TrackedPosts.post`): one that ran out posts nothing more.
        self.delivery_lease = 4 * slack_timeout
        # Renewed no sooner than this after it was taken or renewed: it runs nearly as long.
        self.fresh_for = 2.0
        # This thread's delivery lease, (id, owner, seconds), what its round noted, and when it
        # was last renewed with the record as this thread last stored it (posts.py).
        self.delivering = threading.local()
        self.service = service
        self.batches = batches or BatchService(service)
        self.progress_every = 2.0  # seconds between progress updates of a batch's message
        self.progress_clock = time.monotonic  # what those seconds are counted on
        self._progress_at: dict[str, float | None] = {}  # None: an update is being sent
        self._progress_lock = threading.Lock()
        self.store = service.store
        self.step_tokens = {}  # a Workflow Builder run's own token, while it runs (steps.py)
        self.step_tokens_lock = threading.Lock()
        self.admin_channel = admin_channel
        self.remind_after = remind_after
        self.expire_after = expire_after

    # -- keeping Slack in step with a record, under a lease ----------------------------------

    def lease_here(self) -> DeliveryLease:
        """A delivery lease for this thread's next round, to be taken with the change that
        round shows (`Store.transition(lease=...)`) and handed to `sync` with its record."""
        return DeliveryLease(self._owner(), max(ROUND_SECONDS, self.delivery_lease))

    def _owner(self) -> str:
        return f"{self.service.instance_id}:{threading.get_ident()}"

    def _sync(
        self,
        record_id: str,
        wait: float,
        deliver: Any,
        seconds: float = ROUND_SECONDS,
        taken_with: tuple[DeliveryLease | None, Any] | None = None,
        close_with: Callable[[Callable[[Any], dict[str, Any]]], None] | None = None,
    ) -> Any:
        """Under a short lease on the record (a request or a batch), `deliver` until Slack has
        caught up or nothing more can be delivered now. `taken_with`: (a lease, the record as
        stored by the change that took it) - used when that write took it so recently that
        it runs nearly its whole length, instead of a write of its own. `close_with`: a write
        of the caller's that follows at once, handed the round's closing (changes made from the
        record as stored: the lease given back while it is still this thread's, with what the
        last round noted while the record is as the round left it) when nothing more is to
        be delivered, instead of a write of its own. A round inside another's (a batch's
        message while one of its members is delivered) leaves the outer one's state as it was;
        inside one on the same record, it does nothing (the outer one goes round again)."""
        under_way = getattr(self.delivering, "lease", None)
        if under_way is not None and under_way[0] == record_id:
            return None  # this thread's round on it is under way, and goes round for the change
        owner = self._owner()
        seconds = max(seconds, self.delivery_lease)
        taken = time.monotonic()  # before the write: the lease runs at least `seconds` from it
        deadline = taken + wait
        lease, record = taken_with or (None, None)
        if self._took(lease, record, record_id, owner, seconds):
            taken = lease.sent  # type: ignore[union-attr]
        else:
            # The record as stored with the lease (no read after it); None: not had.
            while (record := self.store.leased(record_id, owner, seconds=seconds)) is None:
                if time.monotonic() >= deadline:
                    return None  # another thread or instance is delivering; a sweep catches up
                time.sleep(0.02)
                taken = time.monotonic()
        outer = _round_state(self.delivering)
        self.delivering.lease = (record_id, owner, seconds)
        self._renewed(taken, record)
        stored = held = True  # `record` is as stored (not as a delivery left it); lease held
        try:
            # The state may move on while we post; go round until Slack has caught up.
            for _ in range(4):
                if record is None or not record.needs_delivery():
                    break
                before = record.version
                self.delivering.noted, self.delivering.placed = {}, None
                record, stored = deliver(record), False
                noted, self.delivering.noted = self.delivering.noted, {}
                placed, self.delivering.placed = self.delivering.placed, None
                if record.version == before and not noted and placed is None:
                    break  # nothing could be delivered now; a later sweep retries
                shown = record.model_copy(update=noted) if noted else record
                if close_with is not None and placed is None and not shown.needs_delivery():
                    close_with(closing(owner, noted, record.version))
                    record, stored, held = shown, True, False  # as that write will store it
                    break
                # Renewed for another round if the record as stored needs one, else given back;
                # with what the round noted (`note_after_round`).
                taken = time.monotonic()
                after = self.store.renew_or_release(
                    record_id,
                    owner,
                    seconds,
                    more=lambda r: r.needs_delivery(),
                    noted=noted,
                    seen=record.version,  # as the round last wrote or read it
                    # Where its last post went (`_posted_last`), whatever the version.
                    placed=placed[0] if placed else None,
                    audit=placed[1] if placed else None,
                )
                if after is None:  # no longer ours: where the last post went is kept all the same
                    if placed is not None:
                        self.store.revise(record_id, placed[0], audit=placed[1])
                    break
                record, stored, held = after, True, after.lease_owner == owner
                if held:
                    self._renewed(taken, record)
            return self._schedule_retry(record, stored)
        finally:
            _restore_round_state(self.delivering, outer)
            if held:
                self.store.release(record_id, owner)

    def _took(
        self, lease: DeliveryLease | None, record: Any, record_id: str, owner: str, seconds: float
    ) -> bool:
        """Whether the write that stored `record` took this thread's delivery `lease` on it,
        at least `seconds` long, less than `fresh_for` ago."""
        return (
            lease is not None
            and lease.sent is not None
            and record is not None
            and record.id == record_id
            and record.lease_owner == lease.owner == owner
            and lease.seconds >= seconds
            and time.monotonic() - lease.sent < self.fresh_for
        )

    def _schedule_retry(self, record: Any, stored: bool = False) -> Any:
        """Back off between sweeps for a record Slack keeps refusing (30 s doubling to 1 h),
        so a deactivated requester or a long outage does not mean a post every half minute.
        `stored`: `record` is as stored, with every attempt noted this round."""
        if record is None:
            return None
        if not stored:
            record = self.store.read(record.id) or record  # with every attempt noted
        busy = record.status in (Status.INVITING, Status.JOINING, BatchStatus.RUNNING)
        if record.needs_delivery() and not busy:
            failures = record.delivery_failures + 1
            wait = timedelta(seconds=min(3600, 30 * 2 ** (failures - 1)))
            at = utcnow() + wait
            lost = [m.at for m in record.messages if not m.ts]  # posts whose answer was lost
            if lost:  # look for them as soon as their answer can no longer be on its way
                at = min(at, max(lost) + timedelta(seconds=self.look_after + 1))
            return self.store.update(record.id, delivery_failures=failures, next_delivery_at=at)
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
        self.finish_steps()  # workflow runs that made no request, whose completion is due
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
                # A holder that crashed before its POST's renewal had not stored the invitee's
                # account yet (actions.invite_approved): looked up again once taken over.
                recovered = self.service.recover(request, self.slack_user)  # None: lease runs
                if recovered is not None:  # a delivery lease its holder left runs out first
                    self.sync(recovered.id, wait=0)
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

    def _posted(self, request: Any, kind: str, where: tuple[str, str], **changes: object) -> Any:
        """Keep the posted message's place with the request, in the audit log too; the
        attempts at it whose answer was lost (handlers/delivery/posts.py) are settled."""
        placed, audit = _placement(kind, where, changes)
        updated = self.store.revise(request.id, placed, audit=audit)
        return self._stored(updated) or request

    def _posted_last(
        self, request: Any, kind: str, where: tuple[str, str], **changes: object
    ) -> Any:
        """`_posted` for a post after which its round sends nothing more to Slack: its place
        is written by the round's closing write (`_sync`) when this thread holds the record's
        delivery lease - a crash before it is a crash before a write of its own would have
        been - else at once. The request with it, as that write will store it."""
        held = getattr(self.delivering, "lease", None)
        pending = getattr(self.delivering, "placed", None)
        if held is None or held[0] != request.id or pending is not None:
            return self._posted(request, kind, where, **changes)
        self.delivering.placed = placement = _placement(kind, where, changes)
        # At the version this thread stored last: the post's own renewal may have written it.
        renewed = getattr(self.delivering, "renewed", None)
        last = renewed[1] if renewed is not None and renewed[1].id == request.id else request
        version = max(request.version, last.version)
        return request.model_copy(update={**placement[0](request), "version": version})


ROUND_STATE = ("lease", "renewed", "noted", "placed")  # a thread's round (`Courier.delivering`)


def _round_state(delivering: threading.local) -> tuple[Any, ...]:
    return tuple(getattr(delivering, name, None) for name in ROUND_STATE)


def _restore_round_state(delivering: threading.local, state: tuple[Any, ...]) -> None:
    for name, value in zip(ROUND_STATE, state, strict=True):
        setattr(delivering, name, value)


def _placement(
    kind: str, where: tuple[str, str], changes: dict[str, object]
) -> tuple[Callable[[Any], dict[str, object]], Audited]:
    """Where a post went, as changes made from the record as stored, and its audit event."""
    channel, ts = where
    message = PostedMessage(kind=kind, channel=channel, ts=ts)

    def placed(current: Any) -> dict[str, object]:  # on the record as stored
        kept = [m for m in current.messages if m.ts or m.kind.split(":", 1)[0] != kind]
        return {"messages": [*kept, message], **changes}

    return placed, ("message_posted", None, {"kind": kind, "channel": channel, "ts": ts})
