"""What the Courier's parts share: its attributes, and the methods one part calls on another.

The Courier (courier.py) is made of parts by concern - one request's messages (requests.py),
batches (batches.py), acceptance links (links.py), the App Home (homes.py), private notes
(notes.py), posts not doubled by a slow Slack (posts.py) - each a mixin on this base, so that
each is typed against the whole once.

Every message is built and sent in its reader's language, never the caller's: what goes to a
channel (the approvers' or a route's) in INVITE_LANGUAGE (`for_channel`), what goes to one
person - a DM, an ephemeral, their App Home - in theirs (`for_person`). The sandbox label is
added as the message is sent (bot/runtime/slack_clients.py), so the send is inside too."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.i18n import speaking
from bot.ui import notices
from handlers.delivery.slack_errors import (
    ADMIN_CHANNEL_HINTS,
    SEND_ERRORS,
    failure_level,
    slack_error,
)

log = logging.getLogger("handlers.delivery.courier")

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.domain.records import InviteRequest
    from bot.runtime.deps import Deliveries
    from bot.services.batches import BatchService
    from bot.services.invites import InviteService
    from bot.store import Store
    from handlers.delivery.languages import Languages
    from handlers.delivery.remembered import Remembered

    # What the listeners ask of the Courier (`sync`, `sync_batch`, ...), its parts call too.
    _Courier = Deliveries
else:
    _Courier = object


class CourierParts(_Courier):
    client: WebClient
    service: InviteService
    batches: BatchService
    store: Store
    admin_channel: str
    remind_after: timedelta
    expire_after: timedelta
    progress_every: float
    progress_clock: Callable[[], float]
    _progress_at: dict[str, float | None]
    _progress_lock: threading.Lock
    wall_clock: Callable[[], datetime]
    look_after: float
    look_back: timedelta
    delivery_lease: float
    fresh_for: float
    delivering: threading.local
    languages: Languages
    dm_channels: Remembered[str]  # each person's DM channel, kept a day (notes.py)

    def note_after_round(self, record: Any, **changes: Any) -> Any:
        """`changes` that need not be stored the moment they are true (what a message shows
        now: a crash before they are only means Slack is told once more), written with the
        delivery round's lease renewal or release when this thread holds the record's lease
        (`Courier._sync`), else at once. The record with them."""
        held = getattr(self.delivering, "lease", None)
        if held is None or held[0] != record.id:
            return self.store.update(record.id, **changes) or record
        self.delivering.noted.update(changes)
        return record.model_copy(update=changes)

    def _renewed(self, taken: float, record: Any) -> Any:
        """This thread's delivery lease on `record` was taken or renewed by a write that left
        at `taken` (monotonic); `record` is as that write stored it."""
        self.delivering.renewed = (taken, record)
        return record

    def _stored(self, record: Any) -> Any:
        """`record` as this thread has just stored it, while it holds its delivery lease: what
        `_hold_delivery` answers with until the lease is renewed again."""
        renewed = getattr(self.delivering, "renewed", None)
        if renewed is not None and record is not None and renewed[1].id == record.id:
            self.delivering.renewed = (renewed[0], record)
        return record

    @contextmanager
    def for_channel(self) -> Iterator[str]:
        """Texts built and sent inside are for a channel: in INVITE_LANGUAGE."""
        with speaking(self.languages.channel) as language:
            yield language

    @contextmanager
    def for_person(self, user_id: str | None) -> Iterator[str]:
        """Texts built and sent inside are for `user_id` alone: in their language (their Slack
        locale, looked up once a day; English when it is not one we have)."""
        with speaking(self.languages.of(user_id)) as language:
            yield language

    def post_approval(self, record: Any, noun: str, build: Callable[[], tuple[str, list]]) -> Any:
        """A request's or a batch's approval message, built by `build()` and posted in its
        channel (a route's, else INVITE_ADMIN_CHANNEL), in INVITE_LANGUAGE; None when Slack
        refused it (logged with what to fix; the next round tries again)."""
        try:
            with self.for_channel():
                text, blocks = build()
                return self.post(
                    record,
                    "approval",
                    record.route_channel or self.admin_channel,  # a route of INVITE_POLICY
                    text,
                    blocks,
                    announce=True,
                )
        except SEND_ERRORS as exc:
            error = slack_error(exc)
            log.log(
                failure_level(exc),
                "%s %s: could not post the approval message (%s): %s",
                noun,
                record.id,
                error,
                ADMIN_CHANNEL_HINTS.get(error, "it is retried"),
            )
            return None

    def remind_requester(self, record: Any) -> Any:
        """The requester's DM that their request or batch still waits, and when it expires;
        the record with `reminder_told` once it went."""
        expires = record.created_at + self.expire_after
        with self.for_person(record.requester_id):
            where = self.news(
                record.requester_id,
                record.origin_channel,
                notices.requester_reminder(record, expires),
                track=(record, "reminder_notice"),
            )
        return (
            self._posted(record, "reminder_notice", where, reminder_told=True) if where else record
        )

    if TYPE_CHECKING:  # each provided by the Courier or one of its parts

        def _sync(
            self,
            record_id: str,
            wait: float,
            deliver: Any,
            seconds: float = 60,
            taken_with: tuple[Any, Any] | None = None,
            close_with: Any = None,
        ) -> Any: ...
        def tell(
            self,
            user_id: str,
            channel: str | None,
            text: str,
            blocks: list | None = None,
            track: tuple[Any, str] | None = None,
        ) -> Any: ...
        def news(
            self,
            user_id: str,
            channel: str | None,
            text: str,
            blocks: list | None = None,
            track: tuple[Any, str] | None = None,
        ) -> Any: ...
        def dm(
            self,
            user_id: str,
            text: str,
            blocks: list | None = None,
            track: tuple[Any, str] | None = None,
        ) -> Any: ...
        def direct(
            self,
            user_id: str,
            text: str,
            blocks: list | None = None,
            track: tuple[Any, str] | None = None,
        ) -> Any: ...
        def refresh_homes(self, request: Any) -> None: ...
        def slack_member(self, address: str) -> str | None: ...
        def _send_link(self, request: InviteRequest) -> InviteRequest: ...
        def _deliver_member(self, member: InviteRequest) -> InviteRequest: ...
        def _link_news(self, batch_id: str) -> None: ...
        def _posted(
            self, request: Any, kind: str, where: tuple[str, str], **changes: object
        ) -> Any: ...
        def _posted_last(
            self, request: Any, kind: str, where: tuple[str, str], **changes: object
        ) -> Any: ...
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
        ) -> Any: ...
