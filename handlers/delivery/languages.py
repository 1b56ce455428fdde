"""Each person's language, from their Slack locale (`users.info` with `include_locale`).

Looked up the first time a person is spoken to and kept for a day, so that after the first
time no ack waits on Slack for it. On that first time an ack waits a quarter of a second at
most (`of(user, wait=…)`): English if Slack is slower, and the lookup, finishing on its own,
serves the next request. Once the day is over an ack does not wait either: it speaks the
language it knew while Slack is asked again; messages sent after the ack wait for that answer
(10 s at most). A lookup Slack does not answer keeps the language known (English for someone
new) and is tried again after a few minutes. What goes to a channel is in `INVITE_LANGUAGE`
(`channel`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from slack_sdk import WebClient

from bot.i18n import SOURCE, language_of
from handlers.delivery.remembered import DAY, Remembered
from handlers.delivery.slack_errors import SEND_ERRORS, slack_error

log = logging.getLogger(__name__)

RETRY_AFTER = 300.0  # a lookup that failed is tried again after five minutes
# Lookups an ack did not wait for finish here (a person's first contact while Slack is slow).
LOOKUPS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="locale")
JOINED_WAIT = 10.0  # seconds a message waits for a lookup another started, at most


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
        self.clock = clock  # read at each use: a test may set it afterwards
        self._known: Remembered[str] = Remembered(keep_seconds, clock=lambda: self.clock())
        self._asking: dict[str, Future] = {}  # lookups under way, one per person
        self._lock = threading.Lock()

    def known(self, user_id: str | None) -> str | None:
        """The person's language if it was looked up within the day (never calls Slack)."""
        return self._known.get(user_id) if user_id else None

    def of(self, user_id: str | None, wait: float | None = None) -> str:
        """The person's language: remembered, else asked of Slack. An ack cannot wait long:
        with `wait`, the language known before if the day is over (Slack is asked again
        meanwhile), else English if Slack has not answered within that many seconds - the
        lookup goes on and is remembered for the person's next request."""
        language = self.known(user_id)
        if language is not None or not user_id:
            return language or SOURCE
        with self._lock:
            language = self._known.get(user_id)
            if language is not None:
                return language  # looked up meanwhile
            before = self._known.last(user_id)  # out of date, or None for someone new
            lookup = self._asking.get(user_id)
            mine = lookup is None
            if mine:
                lookup = self._asking[user_id] = Future()
        if mine and wait is None:
            self._look_up(user_id, lookup)
        elif mine:
            try:
                LOOKUPS.submit(self._look_up, user_id, lookup)
            except RuntimeError:  # shutting down: English, asked again next time
                self._look_up_done(user_id, lookup, SOURCE)
        known = before or SOURCE
        if before is not None and wait is not None:
            return known  # the ack need not wait for Slack for it
        try:  # another's lookup under way (a first request's, on LOOKUPS): not forever
            return lookup.result(timeout=wait if wait is not None else JOINED_WAIT)
        except TimeoutError:
            return known

    def _look_up(self, user_id: str, lookup: Future) -> None:
        """Ask Slack for the person's locale; remember the language it gives for a day, or,
        when Slack does not answer, the language known before (English if none) for a few
        minutes."""
        language, keep = self._known.last(user_id) or SOURCE, RETRY_AFTER
        try:
            user = self.client.users_info(user=user_id, include_locale=True)["user"]
            language, keep = language_of(user.get("locale")), self._known.keep_seconds
        except SEND_ERRORS as exc:
            log.warning("users.info for a locale failed: %s", slack_error(exc))
        except (KeyError, TypeError, AttributeError):  # an answer without a user: English
            log.warning("users.info for a locale gave no user")
        finally:
            self._remember(user_id, language, keep)
            self._look_up_done(user_id, lookup, language)

    def _look_up_done(self, user_id: str, lookup: Future, language: str) -> None:
        with self._lock:
            self._asking.pop(user_id, None)
        lookup.set_result(language)

    def _remember(self, user_id: str, language: str, seconds: float) -> None:
        self._known.put(user_id, language, seconds)
