"""What settling an unsure invitation needs besides the invite service itself: the lost answer
as an exception, and awork's user list shared by the looks that are due together.

An invitation whose answer was lost is looked for in awork at growing intervals (the timing is
bot/domain/settling.py, the state on the request, the looks in bot/services/inviting.py). A
look asks whether a person exists; answering it reads awork's whole user list (paged). When
many are due together - a batch's members whose answers were all lost while awork was slow,
swept together - one listing answers all of them: a look due at `t` may use any listing begun
at or after `t`, which saw whatever awork had by then.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from bot.awork.client import AworkClient
from bot.awork.errors import AworkUnavailable
from bot.domain.awork_models import AworkUser


class AnswerLost(Exception):
    """A POST's answer was lost (`AworkUnavailable.ambiguous`): awork may have carried it
    out, or may still be doing so. Nothing more is sent until awork has been asked."""

    def __init__(self, error: AworkUnavailable) -> None:
        super().__init__(str(error))
        self.error = error


class UserListing:
    """awork's users as last listed, by address, and when that listing began (the store's
    clock, `clock`). `find` lists them again only when the last listing began before the
    look was due; callers wait for a listing being read rather than read their own."""

    def __init__(self, awork: AworkClient, clock: Callable[[], datetime]) -> None:
        self.awork = awork
        self.clock = clock
        self._lock = threading.Lock()
        self._began: datetime | None = None
        self._by_address: dict[str, AworkUser] = {}

    def find(self, address: str, seen_after: datetime | None) -> tuple[AworkUser | None, datetime]:
        """The user with this address in a listing begun at or after `seen_after` (None: a
        listing read now), and when that listing began."""
        with self._lock:
            if seen_after is None or self._began is None or self._began < seen_after:
                began = self.clock()
                by_address: dict[str, AworkUser] = {}
                for user in self.awork.users():
                    for email in user.emails:
                        by_address.setdefault(email, user)
                self._began, self._by_address = began, by_address
            return self._by_address.get(address.lower()), self._began
