"""A batch's part of bringing Slack up to date: its run with progress on the approval
message, the summary, the requester's list of links, and its notices.

A mixin of `handlers.delivery.courier.Courier`, which holds the Slack client, the store and the request
deliveries these use (`tell`, `news`, `dm`, `_sync`, `_posted`, `refresh_homes`): the
requester's "waiting" answer is ephemeral where they asked; later news goes by DM.

The batch's message, its progress and its reminder are in INVITE_LANGUAGE (`for_channel`);
what the requester reads - notices, the list of links - in theirs (`for_person`).

The list of links goes in parts that each stay under Slack's recommended 4,000 characters
(`link_parts`): 50 links with awork's acceptance URLs run to some 7,500. Where a part ends is
worked out from the addresses and links alone - not from the words around them, which differ
by language, nor from the part's number - so that the parts of what is still to send are the
same parts after a crash or a lost answer: a part keeps its kind (its first member), is looked
for and adopted, and its members are marked as the part is out, never a link twice or cut.
"""

from __future__ import annotations

import contextlib
import logging

from bot.domain.batches import BatchStatus, InviteBatch, Summary
from bot.domain.records import InviteRequest, MessageRef, Status
from bot.store import StoreClosed
from bot.ui import bulk_blocks, bulk_notices, notices
from bot.ui.mrkdwn import escape
from handlers.delivery.parts import CourierParts
from handlers.delivery.slack_errors import (
    SEND_ERRORS,
    refused,
    slack_error,
)

log = logging.getLogger("handlers.delivery.courier")
SLACKBOT = "USLACKBOT"  # a member without an email, in every workspace

MESSAGE_CHARS = 4000  # Slack's recommended most for a message's text
# What a part of the list may hold besides its links' lines: its first sentence in any language
# (the batch's id, "1 of 3") and the sandbox label; and each line besides its address and link:
# the bullet, the markup and the link's words ("accept the invitation", translated).
HEAD_CHARS = 600
LINE_CHARS = 64


def link_parts(pairs: list[tuple[InviteRequest, str]]) -> list[list[tuple[InviteRequest, str]]]:
    """The members and their links in parts of the requester's list: in order, as many to a
    part as fit in MESSAGE_CHARS (at most LINKS_PER_MESSAGE), each part starting where the one
    before ended - the same parts for the same members whatever was sent before them."""
    budget = MESSAGE_CHARS - HEAD_CHARS
    parts: list[list[tuple[InviteRequest, str]]] = []
    used = 0
    for member, link in pairs:
        size = LINE_CHARS + len(escape(member.details.email)) + len(link)
        if not parts or used + size > budget or len(parts[-1]) >= bulk_blocks.LINKS_PER_MESSAGE:
            parts.append([])  # a link longer than a message goes alone, whole
            used = 0
        parts[-1].append((member, link))
        used += size
    return parts


class BatchDelivery(CourierParts):
    # -- batches ------------------------------------------------------------------------------

    def run_batch(self, batch_id: str, claim_id: str | None) -> InviteBatch | None:
        """Run a batch under the claim `claim_id` this process took, showing progress, then
        the summary and links."""

        def started() -> None:
            self.sync_batch(batch_id)  # "Approved by @x, inviting: 0 of N"
            with self._progress_lock:  # an update too: the next comes 2 s later at the soonest
                self._progress_at[batch_id] = self.progress_clock()

        # Slack's part runs under the run's renewed lease: users.list may take long.
        batch = self.batches.run(
            batch_id,
            claim_id,
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

    def _resume(self, batch_id: str, claim_id: str | None) -> None:
        with contextlib.suppress(StoreClosed):  # stopping: the next start resumes it again
            self.run_batch(batch_id, claim_id)

    def slack_directory(self) -> dict[str, str] | None:
        """Every active member's email -> Slack id, read once per batch with users.list
        (one paged call instead of a lookupByEmail per person, which Slack rate-limits); None
        when Slack did not answer every page, or showed no one's email (the users:read.email
        scope missing): whom it would have named is not known."""
        found: dict[str, str] = {}
        people = 0
        try:
            for page in self.client.users_list(limit=200):
                for user in page.get("members") or []:
                    if user.get("deleted") or user.get("is_bot") or user.get("id") == SLACKBOT:
                        continue
                    people += 1
                    email = (user.get("profile") or {}).get("email")
                    if email:
                        found[str(email).lower()] = user["id"]
        except SEND_ERRORS as exc:
            log.warning(
                "users.list failed (%s): who is in Slack is asked again before links go out",
                slack_error(exc),
            )
            return None
        if people and not found:
            log.warning("users.list shows no email addresses: is users:read.email granted?")
            return None
        return found

    def batch_progress(self, batch_id: str, done: int) -> None:
        """Show a running batch's progress on its message, at most every `progress_every` s."""
        with self._progress_lock:
            last = self._progress_at.get(batch_id, 0.0)
            if last is None or self.progress_clock() - last < self.progress_every:
                return  # one is being sent, or one went out less than 2 s ago
            self._progress_at[batch_id] = None
        try:
            batch = self.store.get_batch(batch_id)
            if batch is None or batch.approval_message is None:
                return
            ref = batch.approval_message
            try:
                with self.for_channel():
                    # The count from the run itself: no reading of every member while awork
                    # is called.
                    text, message_blocks = bulk_blocks.batch_approval_message(batch, done=done)
                    self.client.chat_update(
                        channel=ref.channel, ts=ref.ts, text=text, blocks=message_blocks
                    )
            except SEND_ERRORS as exc:
                log.info("batch %s: progress not shown (%s)", batch_id, slack_error(exc))
        finally:
            with self._progress_lock:  # counted from when Slack has it: arrivals 2 s apart
                self._progress_at[batch_id] = self.progress_clock()

    def sync_batch(self, batch_id: str, wait: float = 10.0) -> InviteBatch | None:
        """Deliver everything Slack has not yet been told about a batch (as `sync`)."""
        return self._sync(batch_id, wait, self._deliver_batch, seconds=120)

    def _deliver_batch(self, batch: InviteBatch) -> InviteBatch:
        # A run paused for members whose answer was lost shows its count from the members.
        done = batch.status is BatchStatus.DONE or batch.unsure
        summary = self.batches.summary(batch) if done else None
        with self.for_channel():
            text, message_blocks = bulk_blocks.batch_approval_message(batch, summary)
        # What the message shows; `link_news` as read before the summary, so a member's news
        # that comes later is shown by another round.
        shown = {
            "shown_status": batch.status,
            "shown_run": batch.run,
            "shown_link_news": batch.link_news,
        }
        if batch.approval_message is None:
            posted = self.post_approval(batch, "batch", lambda: (text, message_blocks))
            if posted is None:
                return batch
            ref = MessageRef(channel=posted[0], ts=posted[1])
            # Found in Slack after its answer was lost, it shows what was then: updated next round.
            batch = self._posted(
                batch, "approval", posted, approval_message=ref, **({} if posted.adopted else shown)
            )
            self.refresh_homes(batch)
        elif (
            batch.shown_status is not batch.status
            or batch.shown_run != batch.run
            or batch.shown_link_news != batch.link_news
        ):
            ref = batch.approval_message
            try:
                with self.for_channel():
                    self.client.chat_update(
                        channel=ref.channel, ts=ref.ts, text=text, blocks=message_blocks
                    )
            except SEND_ERRORS as exc:
                log.warning(
                    "batch %s: could not update its message: %s", batch.id, slack_error(exc)
                )
                return batch
            batch = self.note_after_round(batch, **shown)
            self.refresh_homes(batch)
        if batch.status is BatchStatus.PENDING:
            if batch.reminded_at and not batch.reminder_posted and batch.approval_message:
                try:
                    with self.for_channel():
                        posted = self.post(
                            batch,
                            "reminder",
                            batch.approval_message.channel,
                            bulk_notices.batch_reminder(batch),
                            thread_ts=batch.approval_message.ts,
                        )
                    batch = self._posted(batch, "reminder", posted, reminder_posted=True)
                except SEND_ERRORS as exc:
                    log.warning("batch %s: reminder not posted: %s", batch.id, slack_error(exc))
            if not batch.waiting_told:
                with self.for_person(batch.requester_id):
                    where = self.tell(
                        batch.requester_id,
                        batch.origin_channel,
                        bulk_notices.batch_waiting_notice(batch),
                        track=(batch, "waiting_notice"),
                    )
                if where:
                    batch = self._posted(batch, "waiting_notice", where, waiting_told=True)
            if batch.waiting_told and batch.reminder_posted and not batch.reminder_told:
                batch = self.remind_requester(batch)
            return batch
        if batch.status is BatchStatus.DONE and not batch.links_listed:
            batch, refused_dm = self._list_links(batch, summary or self.batches.summary(batch))
            if refused_dm:
                summary = None  # read again below, for the outcome to count them
        if batch.status is not BatchStatus.RUNNING and not batch.outcome_told:
            summary = summary or self.batches.summary(batch)
            withheld = [m for m in summary.invited if m.link_withheld]
            with self.for_person(batch.requester_id):
                notice = bulk_notices.batch_outcome_notice(batch, summary)
                if withheld:  # Slack refused them the DM with these links
                    skipped = any(m.awork_email_skipped for m in withheld)
                    notice += "\n" + notices.withheld_links(skipped, len(withheld))
                where = self.news(
                    batch.requester_id,
                    batch.origin_channel,
                    notice,
                    track=(batch, "outcome_notice"),
                )
            if where:
                batch = self._posted(batch, "outcome_notice", where, outcome_told=True)
        return batch

    def _list_links(self, batch: InviteBatch, summary: Summary) -> tuple[InviteBatch, bool]:
        """The links of invitees who are not in Slack, to the requester by DM, in parts under
        4,000 characters (`link_parts`; an invitee in Slack gets their own DM, retried, never
        the requester's list); each member is marked once its part is out, so a retry sends
        only the rest, in the same parts.
        `summary`: the members as just read for the message (not read again). Returns the
        batch and whether Slack refused the requester the DM, so that the links were withheld."""
        due = [
            member
            for member in summary.invited
            if member.status is Status.INVITED
            and not member.link_attempted
            and member.invitee_slack_id is None
        ]
        unknown = [m for m in due if m.invitee_unknown]
        if unknown:  # the run could not read who is in Slack: asked again before any goes
            directory = self.slack_directory()
            if directory is None:  # still not known: a sweep asks again (until they lapse)
                return batch, False
            in_slack = set()
            for member in unknown:
                found = directory.get(member.details.email.lower())
                self.store.update(member.id, invitee_unknown=False, invitee_slack_id=found)
                if found is not None:  # their own DM (a sweep's), never the requester's list
                    in_slack.add(member.id)
            due = [m for m in due if m.id not in in_slack]
            self._link_news(batch.id)  # the message says where their links went: now known
            batch = self.store.get_batch(batch.id) or batch
        with_links = [(m, self.service.accept_link(m)) for m in due]
        for member, link in with_links:
            if link is None:  # found in awork after a crash: awork's own email has the link
                self.store.update(member.id, link_attempted=True)
        chunks = link_parts([(m, link) for m, link in with_links if link is not None])
        for number, chunk in enumerate(chunks, start=1):
            # One list in parts: each part is known by its first member, so that a part whose
            # answer was lost is looked for, not sent again (handlers/delivery/posts.py).
            part = f"link_list:{chunk[0][0].id}"
            try:
                with self.for_person(batch.requester_id):
                    links = [(m.details.email, link) for m, link in chunk]
                    text = bulk_notices.batch_links(batch, links, number, len(chunks))
                    if len(text) >= MESSAGE_CHARS:  # HEAD_CHARS did not cover a translation
                        log.warning(
                            "batch %s: a list of links runs to %d characters", batch.id, len(text)
                        )
                    where = self.direct(batch.requester_id, text, track=(batch, part))
            except SEND_ERRORS as exc:
                if refused(exc):  # never to the channel: withheld, the outcome says so
                    rest = [m for c in chunks[number - 1 :] for m, _ in c]
                    return self._withhold_links(batch, rest), True
                return batch, False  # Slack's passing trouble: the rest go at the next sweep
            for member, _ in chunk:
                self.store.update(member.id, link_attempted=True, link_sent_to=batch.requester_id)
            batch = self._posted(batch, "link_list", where)
        return self.store.update(batch.id, links_listed=True) or batch, False

    def _withhold_links(self, batch: InviteBatch, members: list[InviteRequest]) -> InviteBatch:
        """Slack refused the requester the DM with the links: they go nowhere else. Each
        member is marked as tried without a recipient, which the batch's outcome - by `news`,
        so where they asked - counts."""
        log.warning(
            "batch %s: Slack refused %s the DM with acceptance links (%d); they are withheld",
            batch.id,
            batch.requester_id,
            len(members),
        )
        for member in members:
            self.store.update(member.id, link_attempted=True)
        self.store.record(
            "link_withheld", batch.id, requester=batch.requester_id, links=len(members)
        )
        batch = self.store.update(batch.id, links_listed=True) or batch
        self._link_news(batch.id)  # the message says where the links went: now nowhere
        return self.store.get_batch(batch.id) or batch
