"""When an invitation whose answer was lost is looked for again.

A `POST /invitations` that timed out while reading, lost its connection mid-request, got a 5xx
or a 2xx the bot cannot read may have been carried out - or awork may still be carrying it
out. A lookup right after proves nothing, so the request is *unsure*: awork is asked again at
growing intervals (`first`, doubling, at most `longest` apart) until the settle window
(INVITE_SETTLE_SECONDS) has passed; the last look falls on its end. Found means invited; only
awork confirming the person absent after the window lets the invitation be sent again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Settling:
    window: timedelta = timedelta(seconds=120)  # INVITE_SETTLE_SECONDS
    first: timedelta = timedelta(seconds=5)
    longest: timedelta = timedelta(seconds=60)

    def next_check(self, since: datetime, checks: int, now: datetime) -> datetime:
        """When to look next, `checks` looks after the answer was lost at `since`: the
        interval doubles from `first` up to `longest`; within the window never past its end,
        so that the look which may allow a second POST is made as soon as the window ends."""
        step = min(self.longest, self.first * 2 ** min(checks, 20))
        end = since + self.window
        return min(now + step, end) if now < end else now + step

    def over(self, since: datetime, now: datetime) -> bool:
        """Whether the window after an answer lost at `since` has passed: a look now that
        does not find the person confirms they are absent."""
        return now >= since + self.window
