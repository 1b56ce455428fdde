"""Keeping the catalogs in step with the code, with Babel's own machinery.

    python -m bot.i18n.catalogs      # extract -> invitebot.pot, update each .po, compile .mo

is `pybabel extract` over bot/ and handlers/ (the keywords `_`, `N_`, `ngettext`,
`pgettext`), `pybabel update` and `pybabel compile`. tests/test_catalogs.py fails when the
template lags the code, a catalog lacks a text or has a fuzzy one, or a `.mo` lags its `.po`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import CommandLineInterface

from bot.i18n import DOMAIN, LOCALE_DIR

ROOT = LOCALE_DIR.parents[2]  # the checkout: bot/ and handlers/ are searched
SOURCES = ("bot", "handlers")
TEMPLATE = LOCALE_DIR / f"{DOMAIN}.pot"
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2)}
METHODS = [("**.py", "python")]


def extracted() -> Catalog:
    """The texts the code marks today, as a catalog (what `pybabel extract` would write)."""
    catalog = Catalog(domain=DOMAIN, project="awork invite bot")
    for source in SOURCES:
        for path, line, message, comments, context in extract_from_dir(
            ROOT / source, METHODS, keywords=KEYWORDS, comment_tags=("i18n:",)
        ):
            catalog.add(
                message,
                locations=[(f"{source}/{path}", line)],
                auto_comments=comments,
                context=context,
            )
    return catalog


def catalog_path(language: str, suffix: str = "po") -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.{suffix}"


def languages() -> list[str]:
    """Every language with a `.po`, compiled or not."""
    return sorted(p.parent.parent.name for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def update() -> None:
    """`pybabel extract`, `update` and `compile`, as one step."""
    keywords = [f"-k{k}" for k in ("N_", "ngettext:1,2", "pgettext:1c,2")]
    run = CommandLineInterface().run
    os.chdir(ROOT)  # locations relative to the checkout (`bot/ui/forms.py:12`)
    run(["pybabel", "-q", "extract", *keywords, "--no-wrap", "--sort-by-file",
         "--add-comments=i18n:", "--project=awork invite bot", "-o", str(TEMPLATE),
         *SOURCES])  # fmt: skip
    for language in languages():
        run(["pybabel", "-q", "update", "-D", DOMAIN, "-i", str(TEMPLATE), "-d",
             str(LOCALE_DIR), "-l", language, "--no-wrap", "--ignore-obsolete", "--no-fuzzy-matching"])  # fmt: skip
    run(["pybabel", "-q", "compile", "-D", DOMAIN, "-d", str(LOCALE_DIR), "--statistics"])


if __name__ == "__main__":
    update()
    sys.exit(0)
