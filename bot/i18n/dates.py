"""Dates as Slack shows them: a `<!date^…>` token that each reader sees in their own time zone
and language, with a fallback in the language being spoken for clients that cannot."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.i18n import _


def fallback(when: datetime) -> str:
    """The date and time in UTC as the language being spoken writes them: `2026-12-05 14:03
    UTC`, `05.12.2026, 14:03 UTC`. Numbers only, so a strftime pattern from the catalog is all
    a language needs (no locale data loaded: Babel's costs 5 MiB)."""
    # i18n: a strftime pattern for a date and time in UTC; numbers only (%d %m %Y %H %M).
    return when.astimezone(UTC).strftime(_("%Y-%m-%d %H:%M UTC"))


def slack_date(when: datetime) -> str:
    """A date Slack shows in each reader's own time zone, worded by Slack in the reader's
    language; the fallback in the language being spoken."""
    stamp = int(when.timestamp())
    # Slack fills in the braces (not str.format: no values are given to `_`).
    token = _("{date_short_pretty} at {time}")
    return f"<!date^{stamp}^{token}|{fallback(when)}>"
