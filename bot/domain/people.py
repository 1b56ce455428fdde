"""Lists of people as typed or attached: one person per line, read as CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from bot.domain.batches import BATCH_LIMIT
from bot.domain.text import clean_text
from bot.i18n import N_, _, ngettext


@dataclass(frozen=True)
class Person:
    email: str
    first_name: str | None = None
    last_name: str | None = None
    line: int = 0


# Where a list's fields are split, in the order that wins a tie: a name holds a comma more
# often than a semicolon, and a semicolon more often than a tab.
DELIMITERS = ("\t", ";", ",")
SAMPLE_LINES = 50

# What is wrong with a record: (naming its line, for a list; on its own, for text that is not
# a list of lines - `/invite a@x.com "b`), each a whole sentence for the catalog.
UNREADABLE = (
    N_("Line {number}: could not be read; check its quotes."),
    N_("Some text could not be read; check its quotes."),
)
NOT_AN_ADDRESS = (
    N_("Line {number}: “{text}” is not an email address."),
    N_("“{text}” is not an email address."),
)
TOO_MANY_FIELDS = (
    N_("Line {number}: expected email, first name, last name."),
    N_("Expected email, first name, last name."),
)


def parse_people(text: str, numbered: bool = True) -> tuple[list[Person], list[str]]:
    """One person per record as `email[, first name, last name]`, read as CSV: a quoted field
    may hold the delimiter, quotes (doubled) or a line break. The delimiter - comma, semicolon
    or tab - is the one the lines' addresses end with (see `delimiter`). Blank lines and lines
    starting with `#` are skipped, a header line is allowed, invisible characters are dropped.
    Returns the people and readable errors (in the current language) naming the line a record
    starts on - unless not `numbered` (text whose lines the person did not type as such)."""

    def problem(said: tuple[str, str], number: int, **values: str) -> str:
        return _(said[0], number=number, **values) if numbered else _(said[1], **values)

    lines = io.StringIO(text, newline="").readlines()  # ends kept: \n, \r\n or \r
    # A comment becomes an empty line, so that line numbers stay those of the text.
    lines = [
        line[len(line.rstrip("\r\n")) :] if line.lstrip().startswith("#") else line
        for line in lines
    ]
    reader = csv.reader(
        lines,
        delimiter=delimiter(lines),
        quotechar='"',
        doublequote=True,
        skipinitialspace=True,  # `ada@x.com, "Lovelace, Ada"` has a quoted second field
        strict=True,  # an unclosed quote is an error, not a field that swallows the rest
    )
    people: list[Person] = []
    errors: list[str] = []
    while True:
        number = reader.line_num + 1  # the line this record starts on
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error:
            errors.append(problem(UNREADABLE, number))
            continue
        fields = [clean_text(part).strip() for part in row]
        while fields and not fields[-1]:
            fields.pop()  # `ada@x.com,,` has no names
        if not fields:
            continue
        words = fields[0].split()
        if len(fields) == 1 and len(words) > 1 and all("@" in word for word in words):
            # `a@x.com b@y.com`: several addresses on a line, as `/invite` takes them inline.
            people += [Person(word.removeprefix("mailto:"), None, None, number) for word in words]
            continue
        address = fields[0].removeprefix("mailto:")
        if "@" not in address:
            if not people and not errors and "mail" in address.lower():
                continue  # a header line such as "email,first name,last name"
            errors.append(problem(NOT_AN_ADDRESS, number, text=address[:60]))
            continue
        if len(fields) > 3:
            errors.append(problem(TOO_MANY_FIELDS, number))
            continue
        first = fields[1] if len(fields) > 1 and fields[1] else None
        last = fields[2] if len(fields) > 2 and fields[2] else None
        people.append(Person(address, first, last, number))
    if len(people) > BATCH_LIMIT:
        errors.insert(
            0,
            ngettext(
                "At most {n} person at once; this list has {count}.",
                "At most {n} people at once; this list has {count}.",
                BATCH_LIMIT,
                count=len(people),
            ),
        )
    return people, errors


def delimiter(lines: list[str]) -> str:
    """The delimiter of a people list: the one that ends the first field (the address) on
    most of its first lines - a header's first field too. Ties go by `DELIMITERS`; a list of
    bare addresses has none and gets a comma. (Not `csv.Sniffer`: it settles a tie between
    consistent delimiters by its own preference, so `a@x.com<TAB>Lovelace, Ada` would split
    at the comma, and its quote detection takes seconds on a few kilobytes of crafted text.)"""
    votes = dict.fromkeys(DELIMITERS, 0)
    sample = [line.strip() for line in lines if line.strip()][:SAMPLE_LINES]
    for line in sample:
        rest = (
            line[1:].split('"', 1)[-1] if line.startswith('"') else line
        )  # after a quoted address
        ends = [rest.find(mark) for mark in DELIMITERS]
        found = [(at, mark) for at, mark in zip(ends, DELIMITERS, strict=True) if at >= 0]
        if found:
            votes[min(found)[1]] += 1
    best = max(DELIMITERS, key=lambda mark: votes[mark])  # the first of equals
    return best if votes[best] else ","
