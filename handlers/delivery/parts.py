"""What the Courier's parts share: its attributes, and the methods one part calls on another.

The Courier (courier.py) is made of parts by concern - one request's messages (requests.py),
batches (batches.py), acceptance links (links.py), the App Home (homes.py), private notes
(notes.py), posts not doubled by a slow Slack (posts.py) - each a mixin on this base, so that
each is typed against the whole once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.domain.records import InviteRequest
    from bot.services.batches import BatchService
    from bot.services.invites import InviteService
    from bot.store import Store


class CourierParts:
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
    delivering: threading.local

    if TYPE_CHECKING:  # each provided by the Courier or one of its parts

        def sync(self, request_id: str, wait: float = 10.0) -> Any: ...
        def sync_batch(self, batch_id: str, wait: float = 10.0) -> Any: ...
        def _sync(self, record_id: str, wait: float, deliver: Any, seconds: float = 60) -> Any: ...
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
        def _send_link(self, request: InviteRequest) -> InviteRequest: ...
        def _deliver_member(self, member: InviteRequest) -> InviteRequest: ...
        def _link_news(self, batch_id: str) -> None: ...
        def _posted(
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
