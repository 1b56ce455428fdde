"""Posts a slow Slack does not double.

Every message the Courier posts for a request or a batch carries Slack message metadata:
`event_type` `awork_invite_request` or `awork_invite_batch`, `event_payload` `{"id": <the
record's id>, "kind": <approval, reminder, outcome_notice, ...>}` - nothing personal (any app in
the workspace may read metadata).

A post whose answer was lost - the client's timeout (`SLACK_TIMEOUT`) ran out, the connection
dropped after the request went out, Slack answered 5xx, `internal_error` or `fatal_error` - may
have been posted all the same. The attempt is kept on the record, in `messages`, as an entry
with an empty ts (its kind, channel and time). An approval message - it has buttons - is noted
so before it is sent, so that a process killed mid-post leaves the note too. Before that kind
is posted again, Slack is asked - `conversations.history`, or `conversations.replies` within a
thread, with `include_all_metadata`, over the minutes around the attempt - once the attempt
cannot still be on its way (`Courier.look_after`: the client's timeout and a few seconds;
until then the post waits for a later sweep). Found: the message is adopted (its ts stored),
not posted again. Found more than once (slack_sdk retried a 5xx that Slack had carried out,
or an earlier copy was posted without looking): the newest copy is adopted, and the older ones
lose their buttons and say that the newer copy is the live one - nothing an admin saw
disappears, the message that stays up to date is the lowest in the channel, and a click on an
old copy before it was retired still decided the same request, once. Not found: posted again.

The token may not read the conversation (it lacks channels:history, groups:history or
im:history; `invite-bot doctor` says so): the post is sent again without looking, with a
warning - the first copy may then show too, with buttons that decide the same request once.
Ephemeral answers are not in any history; they are not looked for.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.domain.batches import InviteBatch
from bot.domain.records import PostedMessage
from bot.ui import copies
from handlers.delivery.parts import CourierParts
from handlers.delivery.slack_errors import (
    PASSING,
    SEND_ERRORS,
    Unsettled,
    ambiguous,
    slack_error,
)

log = logging.getLogger("handlers.delivery.courier")

REQUEST_EVENT = "awork_invite_request"
BATCH_EVENT = "awork_invite_batch"
# How far Slack's clock (a message's ts) and this host's may disagree.
CLOCK_SKEW = timedelta(minutes=2)
PAGE_SIZE = 200  # messages a history page (Slack allows up to 999)
PAGES = 10  # pages read at most: an admin channel does not see 2,000 messages in minutes
HISTORY_SCOPES = ("channels:history", "groups:history", "im:history")
# slack_sdk's retries after an answer that the call may have been carried out all the same.
DOUBLING = {"server_error", "connection"}


def event_type(record: Any) -> str:
    return BATCH_EVENT if isinstance(record, InviteBatch) else REQUEST_EVENT


def metadata(record: Any, kind: str, **more: object) -> dict[str, Any]:
    """The message metadata that names what a post is for: the record and the post's kind."""
    return {
        "event_type": event_type(record),
        "event_payload": {"id": record.id, "kind": kind, **more},
    }


def attempts(record: Any, kind: str) -> list[PostedMessage]:
    """The attempts at posting `kind` whose answer was lost (or is still awaited)."""
    return [m for m in record.messages if m.kind == kind and not m.ts]


def ours(message: dict[str, Any], record: Any, kind: str) -> bool:
    """Whether a message from Slack's history is a live copy of `kind` for `record`."""
    meta = message.get("metadata") or {}
    payload = meta.get("event_payload") or {}
    return (
        meta.get("event_type") == event_type(record)
        and payload.get("id") == record.id
        and payload.get("kind") == kind
        and not payload.get("retired")
    )


class Posted(tuple):
    """Where a post is, (channel, ts); `adopted` when it was found in Slack rather than posted
    now - it may then show an older state than the record's."""

    adopted: bool

    def __new__(cls, channel: str, ts: str, adopted: bool = False) -> Posted:
        where = super().__new__(cls, (channel, ts))
        where.adopted = adopted
        return where


class TrackedPosts(CourierParts):
    def post(
        self,
        record: Any,
        kind: str,
        channel: str,
        text: str,
        blocks: list | None = None,
        *,
        thread_ts: str | None = None,
        announce: bool = False,
        **options: Any,
    ) -> Posted:
        """Post `kind` for `record` in `channel` (in the thread `thread_ts`), with metadata -
        once. An earlier attempt whose answer was lost is looked for first, and adopted when
        found. `announce`: the attempt is noted on the record before it is sent (a message
        with buttons). Raises what the post raised, or `Unsettled` while an earlier attempt
        cannot be settled yet."""
        # The attempts as stored: the record in hand may predate one noted earlier this round.
        # The delivery lease renewed before the post leaves answers with the record as stored;
        # with `announce` and no earlier attempt, the renewal notes this one too (one write).
        started = self.wall_clock()
        note = PostedMessage(kind=kind, channel=channel, ts="", at=started)
        held = self._hold_delivery(record.id, note if announce else None)
        earlier = attempts(held or self.store.read(record.id) or record, kind)
        noted = announce and note in earlier
        if noted:
            earlier.remove(note)
        looked = True
        if earlier:
            if self.wall_clock() < max(a.at for a in earlier) + timedelta(seconds=self.look_after):
                raise Unsettled(f"{record.id}: an earlier {kind} post may still reach Slack")
            since = min(a.at for a in earlier)
            channels = list(dict.fromkeys(a.channel for a in earlier))
            found = self._look(record, kind, channels, thread_ts, since, self.wall_clock())
            if found:
                return self._adopt(record, kind, found)
            looked = found is not None
            self._hold_delivery(record.id)  # again: the look took a while
            started = self.wall_clock()
        if announce and not noted:
            self._note_attempt(record.id, kind, channel, started)
        try:
            posted = self.client.chat_postMessage(
                channel=channel,
                text=text,
                blocks=blocks,
                thread_ts=thread_ts,
                metadata=metadata(record, kind),
                **options,
            )
        except SEND_ERRORS as exc:
            return self._failed(record, kind, channel, thread_ts, started, announce, exc)
        where = Posted(posted["channel"], posted["ts"])
        if DOUBLING & set(getattr(self.client, "retried", tuple)()):
            # slack_sdk sent it again after an answer it may have carried out: a copy may
            # stand beside this one.
            self._retire_others(record, kind, where, thread_ts, started)
        if earlier:
            self.store.record("message_reposted", record.id, kind=kind, looked=looked)
        return where

    def _hold_delivery(self, record_id: str, note: PostedMessage | None = None) -> Any:
        """Renew this thread's delivery lease on the record right before a post leaves; one
        that ran out (a round of slow Slack calls) may be another's now: post nothing more.
        `note`: an attempt kept on the record in the same write, unless one of its kind is
        there already (that one is looked for first). The record as stored with the renewed
        lease; None when this thread holds none.

        A lease taken or renewed less than `fresh_for` seconds ago (on this host's monotonic
        clock, from before that write left) is not renewed again for a post without a note:
        it still runs nearly its whole length, as a renewal would make it. The record is then
        as this thread last stored it under the lease - only the lease's holder changes the
        posts noted on it (`messages`), and every such change of this thread's is kept
        (`_stored`)."""
        held = getattr(self.delivering, "lease", None)
        if held is None or held[0] != record_id:
            return None
        _, owner, seconds = held
        renewed = getattr(self.delivering, "renewed", None)
        fresh = renewed is not None and time.monotonic() - renewed[0] < self.fresh_for
        if note is None and fresh and renewed[1].id == record_id:
            return renewed[1]

        def noted(current: Any) -> dict[str, Any]:
            if note is None or attempts(current, note.kind):
                return {}
            return {"messages": [*current.messages, note]}

        taken = time.monotonic()
        record = self.store.leased(record_id, owner, seconds=seconds, also=noted)
        if record is None:
            raise Unsettled(f"{record_id}: the delivery lease passed on; left to its holder")
        return self._renewed(taken, record)

    def _failed(
        self,
        record: Any,
        kind: str,
        channel: str,
        thread_ts: str | None,
        started: datetime,
        announce: bool,
        exc: Exception,
    ) -> Posted:
        """After a failed post: adopt it if Slack carried it out all the same, else raise
        `exc` - keeping the attempt on the record while that cannot be known yet."""
        noted = started if announce else None
        if not ambiguous(exc):  # refused, or never sent: nothing to look for
            if announce:
                self._forget_attempt(record.id, kind, started)
            raise exc
        if not isinstance(exc, SlackApiError):  # no answer: it may still be on its way
            log.warning(
                "%s: the answer to its %s post was lost (%s); Slack is asked before it is "
                "posted again",
                record.id,
                kind,
                slack_error(exc),
            )
            self._note_attempt(record.id, kind, channel, self.wall_clock(), noted)
            raise exc
        # Slack answered that it failed midway: whatever it did is done, and can be seen now.
        try:
            found = self._look(record, kind, [channel], thread_ts, started, self.wall_clock())
        except Unsettled:
            self._note_attempt(record.id, kind, channel, self.wall_clock(), noted)
            raise exc from None
        if found:
            return self._adopt(record, kind, found)
        if announce:
            self._forget_attempt(record.id, kind, started)
        raise exc

    # -- the attempts kept on the record -------------------------------------------------------

    def _note_attempt(
        self,
        record_id: str,
        kind: str,
        channel: str,
        at: datetime,
        replacing: datetime | None = None,
    ) -> None:
        """Keep an attempt on the record (an entry without ts); `replacing` the note made
        before it was sent, whose time it moves on to when its answer was given up on."""
        current = self.store.read(record_id)
        if current is None:
            return
        kept = [m for m in current.messages if m.ts or m.kind != kind or m.at != replacing]
        attempt = PostedMessage(kind=kind, channel=channel, ts="", at=at)
        self._stored(self.store.update(record_id, messages=[*kept, attempt]))

    def _forget_attempt(self, record_id: str, kind: str, at: datetime) -> None:
        """The post was refused, or is known not to have happened: its note goes."""
        current = self.store.read(record_id)
        if current is not None:
            kept = [m for m in current.messages if m.ts or m.kind != kind or m.at != at]
            self._stored(self.store.update(record_id, messages=kept))

    # -- looking in Slack ----------------------------------------------------------------------

    def _look(
        self,
        record: Any,
        kind: str,
        channels: list[str],
        thread_ts: str | None,
        since: datetime,
        until: datetime,
    ) -> list[tuple[str, dict[str, Any]]] | None:
        """The live copies of `kind` for `record` that Slack has in `channels` from around
        `since` to `until`; None when the token may not look (it is then posted without
        looking). Raises `Unsettled` when Slack cannot answer now."""
        found: list[tuple[str, dict[str, Any]]] = []
        for channel in channels:
            try:
                messages = self._history(
                    channel, thread_ts, since - self.look_back, until + self.look_back
                )
            except SlackApiError as exc:
                error = slack_error(exc)
                status = getattr(exc.response, "status_code", 200)
                if error in PASSING or status >= 500 or status == 429:
                    raise Unsettled(f"{record.id}: Slack's history is not there ({error})") from exc
                # Not allowed (a missing scope, most likely) or not understood: never stuck.
                log.warning(
                    "%s: cannot look in Slack for its %s post whose answer was lost (%s; the "
                    "token needs %s - see invite-bot doctor); it is posted again and may show "
                    "twice",
                    record.id,
                    kind,
                    error,
                    ", ".join(HISTORY_SCOPES),
                )
                return None
            except SEND_ERRORS as exc:
                raise Unsettled(f"{record.id}: Slack's history is not there ({exc!r})") from exc
            found += [(channel, m) for m in messages if ours(m, record, kind)]
        return found

    def _history(
        self, channel: str, thread_ts: str | None, oldest: datetime, latest: datetime
    ) -> list[dict[str, Any]]:
        """The messages of `channel` (or of the thread `thread_ts`) between `oldest` and
        `latest`, with their metadata, page by page."""
        args: dict[str, Any] = {
            "channel": channel,
            "oldest": f"{oldest.timestamp():.6f}",
            "latest": f"{latest.timestamp():.6f}",
            "inclusive": True,
            "include_all_metadata": True,
            "limit": PAGE_SIZE,
        }
        if thread_ts:
            args["ts"] = thread_ts
        read = self.client.conversations_replies if thread_ts else self.client.conversations_history
        messages: list[dict[str, Any]] = []
        cursor = None
        for _ in range(PAGES):
            page = read(**args, **({"cursor": cursor} if cursor else {}))
            messages += page.get("messages") or []
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return messages
        log.warning(
            "%s: more than %d messages to look through; the older ones are not",
            channel,
            len(messages),
        )
        return messages

    # -- what was found ------------------------------------------------------------------------

    def _retire_others(
        self, record: Any, kind: str, where: Posted, thread_ts: str | None, since: datetime
    ) -> None:
        """Copies of a post standing beside `where` (slack_sdk sent it twice) lose their
        buttons; `where` is the newest, and the one kept."""
        try:
            found = self._look(record, kind, [where[0]], thread_ts, since, self.wall_clock())
        except Unsettled as exc:
            log.warning("%s: could not look for copies of its %s post: %s", record.id, kind, exc)
            return
        for channel, message in found or []:
            if message["ts"] != where[1]:
                self._retire(record, kind, channel, message)

    def _adopt(self, record: Any, kind: str, found: list[tuple[str, dict[str, Any]]]) -> Posted:
        """The newest copy is the one kept; older ones lose their buttons."""
        found.sort(key=lambda copy: float(copy[1]["ts"]))
        channel, kept = found[-1]
        for where, older in found[:-1]:
            self._retire(record, kind, where, older)
        self.store.record(
            "message_adopted",
            record.id,
            kind=kind,
            channel=channel,
            ts=kept["ts"],
            copies=len(found),
        )
        log.info(
            "%s: its %s post whose answer was lost is in Slack; adopted, not posted again",
            record.id,
            kind,
        )
        return Posted(channel, str(kept["ts"]), adopted=True)

    def _retire(self, record: Any, kind: str, channel: str, message: dict[str, Any]) -> None:
        """An older copy with buttons: the same text without them, saying the newer copy is
        the live one. A copy without buttons is left as it is: there is nothing to click."""
        blocks = message.get("blocks") or []
        if not copies.has_buttons(blocks):
            return
        text, plain = copies.retired(str(message.get("text") or ""), blocks)
        try:
            self.client.chat_update(
                channel=channel,
                ts=message["ts"],
                text=text,
                blocks=plain,
                metadata=metadata(record, kind, retired=True),
            )
        except SEND_ERRORS as exc:
            log.warning(
                "%s: could not take the buttons off an older copy of its %s message (%s); "
                "they decide the same request, once",
                record.id,
                kind,
                slack_error(exc),
            )
            return
        self.store.record(
            "message_retired", record.id, kind=kind, channel=channel, ts=message["ts"]
        )
