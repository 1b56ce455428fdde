"""Dates as Slack shows them: a `<!date^…>` token that each reader sees in their own time zone
and language, with a fallback in the language being spoken for clients that cannot."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.i18n import _, current


def fallback(when: datetime, language: str | None = None) -> str:
    """`5 Dec 2026, 14:03 UTC` / `05.12.2026, 14:03 UTC`: Babel's medium date and short time
    for the language (English: unambiguous day-month-year)."""
    from babel.dates import format_date, format_time  # the first date shown pays for Babel

    language = language or current()
    when = when.astimezone(UTC)
    locale = "en_GB" if language == "en" else language
    day = format_date(when, "medium", locale=locale)
    hour = format_time(when, "HH:mm", tzinfo=UTC, locale=locale)
    return f"{day}, {hour} UTC"


def slack_date(when: datetime) -> str:
    """A date Slack shows in each reader's own time zone, worded by Slack in the reader's
    language; the fallback in the language being spoken."""
    stamp = int(when.timestamp())
    # Slack fills in the braces (not str.format: no values are given to `_`).
    token = _("{date_short_pretty} at {time}")
    return f"<!date^{stamp}^{token}|{fallback(when)}>"
