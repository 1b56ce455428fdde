"""A fake catalog that proves no visible text bypasses gettext.

    with marked():
        view = build_modal(...)
    assert unmarked_texts(view, allowed=["Ada Lovelace"]) == []

Inside `marked()` every `_()`, `ngettext()` and `pgettext()` (in any language) answers with its
msgid wrapped in «…», placeholders filled in as usual. `unmarked_texts` collects the visible
texts of blocks, a view or a message and returns those that still have letters outside «…» once
the `allowed` values (what people typed, awork's names - raw and mrkdwn-escaped) and Slack's
mention tokens (`<@U1>`, `<#C1>`, `<!date…>`) are taken out.
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import bot.i18n

OPEN, CLOSE = "«", "»"


class Wrapping(gettext.NullTranslations):
    """A catalog that answers every text with its msgid between `before` and `after`: «…»
    marks what went through gettext, `[de]…` which language a text was built in."""

    def __init__(self, before: str, after: str = "") -> None:
        super().__init__()
        self.before, self.after = before, after

    def gettext(self, message: str) -> str:
        return f"{self.before}{message}{self.after}"

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return self.gettext(msgid1 if n == 1 else msgid2)

    def pgettext(self, context: str, message: str) -> str:
        return self.gettext(message)

    def npgettext(self, context: str, msgid1: str, msgid2: str, n: int) -> str:
        return self.ngettext(msgid1, msgid2, n)


@contextmanager
def marked() -> Iterator[Wrapping]:
    """Every translation inside answers «msgid» (in every language, the source one too)."""
    fake = Wrapping(OPEN, CLOSE)
    original = bot.i18n.translations
    bot.i18n.translations = lambda language: fake  # type: ignore[assignment]
    try:
        yield fake
    finally:
        bot.i18n.translations = original  # type: ignore[assignment]


def visible_texts(payload: Any) -> list[str]:
    """Every string a person may read in blocks, a view or a message: each `text` (text objects,
    a message's fallback, rich text), `alt_text`, and nothing that is an id or a value."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("text", "alt_text") and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item)

    walk(payload)
    return found


_SLACK_TOKEN = re.compile(r"<[@#!][^>]*>")
_LINK = re.compile(r"<(?:https?|mailto):[^>|]*(?:\|([^>]*))?>")
_INNERMOST = re.compile(f"{OPEN}[^{OPEN}{CLOSE}]*{CLOSE}")


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def outside_marks(text: str, allowed: Iterable[str] = ()) -> str:
    """What is left of `text` once marked parts, allowed values and Slack tokens are removed."""
    for value in sorted({v for a in allowed if a for v in (a, _escaped(a))}, key=len, reverse=True):
        text = text.replace(value, "")
    text = _SLACK_TOKEN.sub("", text)
    text = _LINK.sub(lambda m: m.group(1) or "", text)
    while True:
        shorter = _INNERMOST.sub("", text)
        if shorter == text:
            break
        text = shorter
    if OPEN in text:  # a marked text cut off at Slack's length limit
        text = text[: text.index(OPEN)]
    return text


def unmarked_texts(blocks_or_view: Any, allowed: Iterable[str] = ()) -> list[str]:
    """The visible texts with letters outside «…» (after removing `allowed` values): each one
    bypassed the catalog."""
    allowed = list(allowed)
    return [
        text
        for text in visible_texts(blocks_or_view)
        if any(ch.isalpha() for ch in outside_marks(text, allowed))
    ]
