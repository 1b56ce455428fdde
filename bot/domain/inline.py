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
from bot.i18n import N_, _

# Slack's rendering of an address in command text, and the quotes phones and Macs substitute.
MAILTO = re.compile(r"<mailto:([^|>]+)(?:\|[^>]*)?>")
SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"'})
TOKEN = re.compile(
    r'(?P<key>role|team)s?:\s*(?:"(?P<quoted>[^"]*)"|(?P<bare>\S*))|(?P<word>\S+)', re.IGNORECASE
)
# Also with the dashes that autocorrect makes of "--".
NO_EMAIL = {"--no-email", "\u2014no-email", "\u2013no-email", "-no-email", "--noemail"}
MAX_CHOICES = 25
# What `resolve` answers, for each kind of name: (no name given, more than one match, none
# known yet, no such name). Whole sentences, so that a language says "role" its own way.
UNRESOLVED = {
    "role": (
        N_("Give a role name after `role:`. Roles: {choices}."),
        N_("“{query}” matches more than one role: {matches}. Say which."),
        N_("awork has no roles I know of yet; use the form (`{command}`)."),
        N_("There is no role “{query}”. Roles: {choices}."),
    ),
    "team": (
        N_("Give a team name after `team:`. Teams: {choices}."),
        N_("“{query}” matches more than one team: {matches}. Say which."),
        N_("awork has no teams I know of yet; use the form (`{command}`)."),
        N_("There is no team “{query}”. Teams: {choices}."),
    ),
}


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
    (in the current language) that lists the choices. `kind`: "role" or "team"."""
    no_name, ambiguous, none_known, unknown = UNRESOLVED[kind]
    wanted = query.strip().lower()
    names = sorted(item.name for item in items)
    choices = ", ".join(names[:MAX_CHOICES]) + (" …" if len(names) > MAX_CHOICES else "")
    if not wanted:
        return None, _(no_name, choices=choices)
    exact = [item for item in items if item.name.lower() == wanted]
    if len(exact) == 1:
        return exact[0], None
    prefixed = exact or [item for item in items if item.name.lower().startswith(wanted)]
    if len(prefixed) == 1:
        return prefixed[0], None
    if prefixed:
        matches = ", ".join(sorted(item.name for item in prefixed)[:MAX_CHOICES])
        return None, _(ambiguous, query=query, matches=matches)
    if not names:
        return None, _(none_known, command=command)
    return None, _(unknown, query=query, choices=choices)


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
                    result.errors.append(
                        _("A quote after `{key}:` is not closed.", key=match["key"])
                    )
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
    # parse_people would number lines of its own input; inline, it names the text instead.
    people, errors = parse_people("\n".join(person_lines), numbered=False)
    result.errors += errors
    result.people = people
    if len(role_queries) > 1:
        result.errors.append(_("Give one role at most."))
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
        result.errors.append(_("Give at least one email address."))
    return result
