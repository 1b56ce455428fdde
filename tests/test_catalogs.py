"""The message catalogs keep up with the code: every text the code marks is in the template and
translated in every language, none fuzzy, the placeholders the same, each `.mo` compiled from
its `.po` as it is now (`python -m bot.i18n.catalogs` brings them all up to date)."""

from __future__ import annotations

import gettext
import io
import re
import string

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.i18n import LANGUAGES, SOURCE, language_of, speaking
from bot.i18n import _ as translate
from bot.i18n.catalogs import TEMPLATE, catalog_path, extracted, languages

TRANSLATED = languages()


def read(path) -> Catalog:
    with open(path, "rb") as file:
        return read_po(file)


def key(message) -> tuple[str, str | None]:
    msgid = message.id[0] if isinstance(message.id, tuple) else message.id
    return msgid, message.context


def fields(text: str) -> set[str]:
    """The `{name}` placeholders of a text (Slack's own `{date_short_pretty}` count too)."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def strings(message) -> list[str]:
    return list(message.string) if isinstance(message.string, tuple) else [message.string]


def ids(message) -> list[str]:
    return list(message.id) if isinstance(message.id, tuple) else [message.id]


def test_german_is_offered():
    """German has a compiled catalog beside English, and a de-DE Slack locale speaks it."""
    assert "de" in TRANSLATED
    assert LANGUAGES[0] == SOURCE and "de" in LANGUAGES
    assert language_of("de-DE") == "de" and language_of("de-AT") == "de"
    assert language_of("fr-FR") == "en" and language_of(None) == "en"


def test_the_template_lists_what_the_code_marks():
    """invitebot.pot holds exactly the texts marked in bot/ and handlers/ today."""
    code = {key(m) for m in extracted() if m.id}
    template = {key(m) for m in read(TEMPLATE) if m.id}
    assert sorted(code - template, key=str) == [], "run: python -m bot.i18n.catalogs"
    assert sorted(template - code, key=str) == [], "run: python -m bot.i18n.catalogs"


@pytest.mark.parametrize("language", TRANSLATED)
def test_each_catalog_translates_every_text(language):
    """Every text of the template has a translation in the catalog, none of them fuzzy."""
    catalog = read(catalog_path(language))
    template = {key(m) for m in read(TEMPLATE) if m.id}
    translated = {key(m): m for m in catalog if m.id}
    missing = sorted(template - set(translated), key=str)
    assert missing == [], f"{language}: not in the catalog"
    empty = [k for k in template if not all(strings(translated[k]))]
    assert sorted(empty, key=str) == [], f"{language}: no translation"
    fuzzy = [k for k in template if translated[k].fuzzy]
    assert sorted(fuzzy, key=str) == [], f"{language}: fuzzy"
    assert not catalog.fuzzy, f"{language}: the catalog's header is marked fuzzy"


@pytest.mark.parametrize("language", TRANSLATED)
def test_placeholders_are_the_same_in_every_language(language):
    """A translation has exactly the `{fields}` of its English text (each plural form too)."""
    wrong = []
    for message in read(catalog_path(language)):
        if not message.id:
            continue
        wanted = set().union(*(fields(i) for i in ids(message)))
        for text in strings(message):
            got = fields(text)
            # A singular may say "one" instead of {n}; it may not bring a field of its own.
            if got != wanted and not (got < wanted and wanted - got <= {"n"}):
                wrong.append((ids(message)[0], text))
    assert wrong == []


@pytest.mark.parametrize("language", TRANSLATED)
def test_markup_survives_translation(language):
    """Slack markup that frames a text (a leading emoji, the leading, trailing and blank lines, `/invite …` keywords) is
    kept: a translation that drops `/invite pending` or a paragraph's break misleads."""
    wrong = []
    for message in read(catalog_path(language)):
        if not message.id:
            continue
        source = ids(message)[0]
        for text in strings(message):
            code = sorted(re.findall(r"`/invite[^`]*`", source))
            if sorted(re.findall(r"`/invite[^`]*`", text)) != code:
                wrong.append((source, text))
            # Lines may wrap differently; the breaks that frame or part a message may not.
            frame = (source[:1] == "\n", source[-1:] == "\n", source.count("\n\n"))
            if frame != (text[:1] == "\n", text[-1:] == "\n", text.count("\n\n")):
                wrong.append((source, text))
            emoji = re.match(r"\s*(:[a-z0-9_+-]+:)", source)
            if emoji and not text.lstrip().startswith(emoji[1]):
                wrong.append((source, text))
    assert wrong == []


@pytest.mark.parametrize("language", TRANSLATED)
def test_compiled_catalog_matches_its_source(language):
    """The shipped `.mo` is the `.po` compiled as it is now."""
    compiled = io.BytesIO()
    write_mo(compiled, read(catalog_path(language)))
    compiled.seek(0)
    fresh = gettext.GNUTranslations(compiled)
    with open(catalog_path(language, "mo"), "rb") as file:
        shipped = gettext.GNUTranslations(file)
    assert shipped._catalog == fresh._catalog, "run: python -m bot.i18n.catalogs"


def test_plurals_follow_the_language():
    """German counts like English here, but through the catalog's own plural rule."""
    from bot.i18n import ngettext

    with speaking("de"):
        one, many = ngettext("{n} person", "{n} people", 1), ngettext("{n} person", "{n} people", 3)
    assert (one, many) == ("1 Person", "3 Personen")


def test_an_unknown_language_speaks_english():
    """speaking() with a language without a catalog, or none, gives the English text."""
    for language in ("fr", None, "xx"):
        with speaking(language) as spoken:
            assert spoken == "en"
            assert translate("{n} person", n=1) == "1 person"
