"""`/invite a@x.com b@y.com role:"Project Manager" team:Design --no-email`, read into people and
options, with roles and teams resolved by name. Pure: the caller passes the cached catalog.

Names match case-insensitively, exactly or by a unique prefix; an unknown or ambiguous name
is answered with the choices. People may also come one per line as `email, first, last`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.domain.awork_models import Role, Team
from bot.domain.people import Person, parse_people
from bot.domain.text import clean_text

# Slack's rendering of an address in command text, and the quotes phones and Macs substitute.
MAILTO = re.compile(r"<mailto:([^|>]+)(?:\|[^>]*)?>")
SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"'})
TOKEN = re.compile(
    r'(?P<key>role|team)s?:\s*(?:"(?P<quoted>[^"]*)"|(?P<bare>\S*))|(?P<word>\S+)', re.IGNORECASE
)
# Also with the dashes that autocorrect makes of "--".
NO_EMAIL = {"--no-email", "\u2014no-email", "\u2013no-email", "-no-email", "--noemail"}
MAX_CHOICES = 25


@dataclass
class InlineInvite:
    people: list[Person] = field(default_factory=list)
    role: Role | None = None
    teams: list[Team] = field(default_factory=list)
    skip_sending_email: bool = False
    errors: list[str] = field(default_factory=list)


def resolve(
    query: str, items: Sequence[Role] | Sequence[Team], kind: str, command: str = "/invite"
) -> tuple[object, str | None]:
    """The item whose name is `query` (any case) or uniquely starts with it, else an error
    that lists the choices."""
    wanted = query.strip().lower()
    names = sorted(item.name for item in items)
    choices = ", ".join(names[:MAX_CHOICES]) + (" …" if len(names) > MAX_CHOICES else "")
    if not wanted:
        return None, f"Give a {kind} name after `{kind}:`. {kind.capitalize()}s: {choices}."
    exact = [item for item in items if item.name.lower() == wanted]
    if len(exact) == 1:
        return exact[0], None
    prefixed = exact or [item for item in items if item.name.lower().startswith(wanted)]
    if len(prefixed) == 1:
        return prefixed[0], None
    if prefixed:
        matches = ", ".join(sorted(item.name for item in prefixed)[:MAX_CHOICES])
        return None, f"“{query}” matches more than one {kind}: {matches}. Say which."
    if not names:
        return None, f"awork has no {kind}s I know of yet; use the form (`{command}`)."
    return None, f"There is no {kind} “{query}”. {kind.capitalize()}s: {choices}."


def parse_inline(
    text: str, roles: Sequence[Role], teams: Sequence[Team], command: str = "/invite"
) -> InlineInvite:
    """Read the command's text (invisible characters dropped). `errors` says, in words,
    everything that stops it; they quote what was typed, and awork's names, as they are (the
    caller escapes them for where it shows them). `command`: the name it was typed with."""
    result = InlineInvite()
    text = MAILTO.sub(r"\1", clean_text(text, multiline=True).translate(SMART_QUOTES))
    role_queries: list[str] = []
    team_queries: list[str] = []
    person_lines: list[str] = []
    for line in text.split("\n"):
        words: list[str] = []
        for match in TOKEN.finditer(line):
            if match["key"]:
                value = match["quoted"] if match["quoted"] is not None else match["bare"]
                if value.startswith('"'):
                    result.errors.append(f"A quote after `{match['key']}:` is not closed.")
                    value = value.strip('"')
                (role_queries if match["key"].lower() == "role" else team_queries).append(value)
            elif match["word"].lower() in NO_EMAIL:
                result.skip_sending_email = True
            else:
                words.append(match["word"])
        if not words:
            continue
        joined = " ".join(words)
        if any(mark in joined for mark in (",", ";", "\t")):
            person_lines.append(joined)  # `email, first, last`
        else:
            person_lines.extend(words)  # several addresses on one line
    people, errors = parse_people("\n".join(person_lines))
    # parse_people numbers lines of its own input; inline, name the text instead.
    result.errors += [re.sub(r"^Line \d+: ", "", error) for error in errors]
    result.people = people
    if len(role_queries) > 1:
        result.errors.append("Give one role at most.")
    elif role_queries:
        role, error = resolve(role_queries[0], roles, "role", command)
        result.role = role if isinstance(role, Role) else None
        if error:
            result.errors.append(error)
    for query in team_queries:
        team, error = resolve(query, teams, "team", command)
        if error:
            result.errors.append(error)
        elif isinstance(team, Team) and team not in result.teams:
            result.teams.append(team)
    if not result.people and not result.errors:
        result.errors.append("Give at least one email address.")
    return result
