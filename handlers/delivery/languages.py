"""Each person's language, from their Slack locale (`users.info` with `include_locale`).

Looked up the first time a person is spoken to and kept for a day, so that after the first
time no ack waits on Slack for it; a lookup Slack does not answer gives English (or
`INVITE_LANGUAGE` for nobody in particular) and is tried again after a few minutes. What goes
to a channel is in `INVITE_LANGUAGE` (`channel`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from slack_sdk import WebClient

from bot.i18n import SOURCE, language_of
from handlers.delivery.slack_errors import SEND_ERRORS, slack_error

log = logging.getLogger(__name__)

DAY = 24 * 3600.0
RETRY_AFTER = 300.0  # a lookup that failed is tried again after five minutes
KEPT = 20_000  # people remembered (least recently spoken to are forgotten first)


class Languages:
    def __init__(
        self,
        client: WebClient,
        channel: str = SOURCE,
        keep_seconds: float = DAY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.channel = channel  # INVITE_LANGUAGE
        self.keep_seconds = keep_seconds
        self.clock = clock
        self._known: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def known(self, user_id: str | None) -> str | None:
        """The person's language if it was looked up within the day (never calls Slack)."""
        if not user_id:
            return None
        with self._lock:
            entry = self._known.get(user_id)
            if entry is None or entry[1] <= self.clock():
                return None
            self._known.move_to_end(user_id)
            return entry[0]

    def of(self, user_id: str | None, client: WebClient | None = None) -> str:
        """The person's language: remembered, else asked of Slack now (with `client`, e.g. the
        listeners' short-timeout one), else English."""
        language = self.known(user_id)
        if language is not None or not user_id:
            return language or SOURCE
        return self.look_up(user_id, client or self.client)

    def look_up(self, user_id: str, client: WebClient) -> str:
        """Ask Slack for the person's locale and remember the language it gives."""
        try:
            user = client.users_info(user=user_id, include_locale=True)["user"]
        except SEND_ERRORS as exc:
            log.warning("users.info for a locale failed: %s", slack_error(exc))
            self._remember(user_id, SOURCE, RETRY_AFTER)
            return SOURCE
        language = language_of(user.get("locale"))
        self._remember(user_id, language, self.keep_seconds)
        return language

    def _remember(self, user_id: str, language: str, seconds: float) -> None:
        with self._lock:
            self._known[user_id] = (language, self.clock() + seconds)
            self._known.move_to_end(user_id)
            while len(self._known) > KEPT:
                self._known.popitem(last=False)
