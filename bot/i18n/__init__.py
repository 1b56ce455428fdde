"""Every text a person reads, in their language: gettext catalogs (English is the source, each
other language one `locale/<lang>/LC_MESSAGES/invitebot.po`, compiled to `.mo` beside it).

    from bot.i18n import _, N_, ngettext, speaking

    _("Waiting for {who}.", who=mention)            # translated, then filled in
    ngettext("{n} person", "{n} people", count)    # a real plural; `n` is filled in
    LABEL = N_("Welcome email")                    # marked for the catalog, translated later
    with speaking("de"): blocks = build(...)        # whose language the builders speak

The language is a context variable: a listener speaks the language of the person who acted
(Bolt middleware, `handlers/language.py`), a delivery the language of the person or channel it
writes to. Work handed on after an ack carries the context along (`Deps.later`). Outside any
`speaking`, texts are English. Placeholders are `str.format` fields with names, so that a
translation may put them in another order; a text shown without values is not formatted, so
its braces stay as they are. Text that is not ours - awork's role and team names, what people
typed, awork's error messages - never goes through `_`, or (stored reasons) goes through it
unchanged because no catalog has it.

Adding a language: `pybabel init -D invitebot -i bot/i18n/locale/invitebot.pot -d
bot/i18n/locale -l fr`, translate, `pybabel compile -D invitebot -d bot/i18n/locale`; it is
offered from then on (`LANGUAGES`), to people whose Slack locale starts with `fr`. docs/i18n.md
has the whole round.
"""

from __future__ import annotations

import contextvars
import gettext as _gettext
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

DOMAIN = "invitebot"
LOCALE_DIR = Path(__file__).parent / "locale"
SOURCE = "en"  # the texts in the code


def _found() -> tuple[str, ...]:
    """The source language and every language with a compiled catalog."""
    found = sorted(p.parent.parent.name for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.mo"))
    return (SOURCE, *(lang for lang in found if lang != SOURCE))


LANGUAGES: tuple[str, ...] = _found()

_current: contextvars.ContextVar[str] = contextvars.ContextVar("language", default=SOURCE)


@cache
def translations(language: str) -> _gettext.NullTranslations:
    """One language's catalog, read once; the source language (or one without a catalog)
    gives the texts as written."""
    if language == SOURCE or language not in LANGUAGES:
        return _gettext.NullTranslations()
    return _gettext.translation(DOMAIN, localedir=LOCALE_DIR, languages=[language])


def language_of(locale: str | None, default: str = SOURCE) -> str:
    """The language to speak for a Slack locale (`de-DE`, `en-GB`, `pt-BR`): its first part
    when a catalog has it, else `default`."""
    if not locale:
        return default
    language = locale.replace("_", "-").split("-", 1)[0].lower()
    return language if language in LANGUAGES else default


def current() -> str:
    """The language being spoken here."""
    return _current.get()


@contextmanager
def speaking(language: str | None) -> Iterator[str]:
    """Texts built inside are in `language` (one we have, else English)."""
    language = language if language in LANGUAGES else SOURCE
    token = _current.set(language)
    try:
        yield language
    finally:
        _current.reset(token)


def use(language: str | None) -> str:
    """From here on in this context, texts are in `language` (one we have, else English).
    For Bolt middleware, whose `next()` returns before the listener runs: the app dispatches
    each request in a context of its own (`AnsweringApp.dispatch`), so it ends with it."""
    language = language if language in LANGUAGES else SOURCE
    _current.set(language)
    return language


def _(message: str, **values: Any) -> str:
    """`message` in the current language, its `{name}` fields filled from `values`."""
    text = translations(_current.get()).gettext(message)
    return text.format(**values) if values else text


def ngettext(singular: str, plural: str, n: int, **values: Any) -> str:
    """The singular or plural (as the current language counts) with `{n}` and `values` filled."""
    text = translations(_current.get()).ngettext(singular, plural, n)
    return text.format(n=n, **values)


def pgettext(context: str, message: str, **values: Any) -> str:
    """`message` in the sense `context` gives it (a button's "Approve" vs a heading's)."""
    text = translations(_current.get()).pgettext(context, message)
    return text.format(**values) if values else text


def in_every_language(message: str) -> frozenset[str]:
    """`message` as each language says it (to recognise a text the bot wrote earlier)."""
    return frozenset(translations(language).gettext(message) for language in LANGUAGES)


def N_(message: str) -> str:
    """Marks a text for the catalog where it is defined; `_()` translates it where it is shown."""
    return message


gettext = _
