"""The invitation policy (INVITE_POLICY): who may ask, which addresses are invited without an
approver or never, how many people one requester may ask for a day, and which approvers in
which channel decide which requests. A TOML file, validated here; what it says about one
request is a `Ruling`, decided here apart from Slack and from the store.

A domain entry matches that domain exactly; `*.example.com` matches its subdomains (not
example.com itself). Role and team names are awork's, matched case-insensitively. Routes are
tried in order; the first whose `teams` or `channels` match decides the request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.domain.ids import is_slack_id

DEFAULT_RULE = "default"  # no route matched: INVITE_ADMIN_CHANNEL and INVITE_APPROVERS decide

_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


def ascii_domain(domain: str) -> str:
    """A domain as DNS spells it: `bücher.de` -> `xn--bcher-kva.de` (as it is when it cannot
    be), lower case, without a final dot."""
    domain = domain.strip().lower().rstrip(".")
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


def _domain(value: str) -> str:
    entry = value.strip().lower().rstrip(".")
    wild = entry.startswith("*.")
    entry = ("*." if wild else "") + ascii_domain(entry[2:] if wild else entry)
    host = entry[2:] if wild else entry
    if not _HOST.match(host):
        raise ValueError(f"{value!r} is not a domain (example.com, or *.example.com)")
    return entry


def _id_of(kinds: str, what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not is_slack_id(value, kinds):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


Domain = Annotated[str, AfterValidator(_domain)]
UserOrGroup = Annotated[str, _id_of("UWS", "a Slack user id (U…) or user-group id (S…)")]
ChannelId = Annotated[str, _id_of("CG", "a Slack channel id (C…)")]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class Route(BaseModel):
    """Requests for these teams, or asked in these channels, go to this channel's approvers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    teams: list[Name] = []
    channels: list[ChannelId] = []
    admin_channel: ChannelId | None = None
    approvers: list[UserOrGroup] = []
    roles: list[Name] = []

    @model_validator(mode="after")
    def _matches_something(self) -> Route:
        if not self.teams and not self.channels:
            raise ValueError("a route needs `teams` or `channels` to match requests")
        return self

    _teams: frozenset[str] = PrivateAttr(frozenset())
    _channels: frozenset[str] = PrivateAttr(frozenset())
    _roles: frozenset[str] = PrivateAttr(frozenset())

    def model_post_init(self, context: Any) -> None:
        self._teams = frozenset(team.casefold() for team in self.teams)
        self._channels = frozenset(self.channels)
        self._roles = frozenset(role.casefold() for role in self.roles)

    def matches(self, team_names: Iterable[str], channel: str | None) -> bool:
        """`team_names` casefolded (as `Policy.route_for` hands them on)."""
        return channel in self._channels or not self._teams.isdisjoint(team_names)

    def allows_role(self, role_name: str | None) -> bool:
        """No `roles`: any; else one of them. No role asked for is awork's default role."""
        if not self.roles or role_name is None:
            return True
        return role_name.casefold() in self._roles


class DomainSet:
    """Domain entries, matched in a few set look-ups however many there are."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.exact = {e for e in entries if not e.startswith("*.")}
        self.below = {e[2:] for e in entries if e.startswith("*.")}

    def match(self, address: str) -> str | None:
        """The entry `address` (an email address or a domain) falls under, or None; a domain
        in Unicode matches its ASCII (punycode) entry and the other way round."""
        domain = ascii_domain(address.rsplit("@", 1)[-1])
        if domain in self.exact:
            return domain
        labels = domain.split(".")
        for start in range(1, len(labels) - 1):
            parent = ".".join(labels[start:])
            if parent in self.below:
                return "*." + parent
        return None


Outcome = Literal["refused", "approved", "asked"]


@dataclass(frozen=True)
class Ruling:
    """What the policy says of one invitation: refused (why), approved without an approver,
    or asked of the approvers (of `route`, or the default ones); `rule` names the rule."""

    outcome: Outcome
    rule: str
    why: str | None = None  # refused: blocked_domain, role_not_on_route
    route: Route | None = None
    entry: str | None = None  # the domain entry or role name the rule matched


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    requesters: list[UserOrGroup] | None = None
    approved_domains: list[Domain] = []
    blocked_domains: list[Domain] = []
    daily_limit: int | None = Field(None, ge=1, le=100_000)
    routes: list[Route] = []

    _approved: DomainSet = PrivateAttr()
    _blocked: DomainSet = PrivateAttr()
    _requester_users: frozenset[str] = PrivateAttr(frozenset())
    _requester_groups: frozenset[str] = PrivateAttr(frozenset())
    # The first route (by its place) for each channel and each team: a route is found in a
    # few dictionary look-ups however many routes there are.
    _by_channel: dict[str, int] = PrivateAttr(default_factory=dict)
    _by_team: dict[str, int] = PrivateAttr(default_factory=dict)

    @field_validator("blocked_domains")
    @classmethod
    def _not_approved_too(cls, blocked: list[str], info: ValidationInfo) -> list[str]:
        both = sorted(set(blocked) & set(info.data.get("approved_domains") or ()))
        if both:
            raise ValueError(f"also in approved_domains: {', '.join(both)}")
        return blocked

    @field_validator("daily_limit", mode="before")
    @classmethod
    def _whole_number(cls, value: object) -> object:
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise ValueError(f"{value!r} is not a whole number of at least 1")
        return value

    @field_validator("routes")
    @classmethod
    def _names_differ(cls, routes: list[Route]) -> list[Route]:
        names = [route.name.casefold() for route in routes]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"route names must differ: {', '.join(twice)} twice")
        return routes

    def model_post_init(self, context: Any) -> None:
        self._approved = DomainSet(self.approved_domains)
        self._blocked = DomainSet(self.blocked_domains)
        requesters = self.requesters or ()
        self._requester_users = frozenset(i for i in requesters if not i.startswith("S"))
        self._requester_groups = frozenset(i for i in requesters if i.startswith("S"))
        for place, route in reversed(list(enumerate(self.routes))):  # the first one stays
            self._by_channel.update(dict.fromkeys(route.channels, place))
            self._by_team.update(dict.fromkeys((t.casefold() for t in route.teams), place))

    def may_ask(self, user_id: str, members_of: Any = None) -> bool:
        """Whether `user_id` may ask: no `requesters` list, listed, or in a listed user group
        (`members_of(groups)`: their current members)."""
        if self.requesters is None or user_id in self._requester_users:
            return True
        return (
            bool(self._requester_groups)
            and members_of is not None
            and (user_id in members_of(self._requester_groups))
        )

    @property
    def empty(self) -> bool:
        """No rule at all (the private indexes do not count)."""
        return self.model_dump() == Policy().model_dump()

    def blocked(self, email: str) -> str | None:
        return self._blocked.match(email)

    def route_for(self, team_names: Sequence[str], channel: str | None) -> Route | None:
        """The first route whose channels hold `channel` or whose teams hold one of
        `team_names` (as `Route.matches` says, from the indexes)."""
        places = [self._by_team.get(team.casefold()) for team in team_names]
        places.append(self._by_channel.get(channel) if channel else None)
        found = [place for place in places if place is not None]
        return self.routes[min(found)] if found else None

    def judge(
        self,
        email: str,
        role_name: str | None = None,
        role_is_admin: bool = False,
        team_names: Sequence[str] = (),
        channel: str | None = None,
    ) -> Ruling:
        """What happens to an invitation of `email` with this role and these teams, asked in
        `channel` (the requester and the daily limit are the service's to check).
        `role_is_admin`: it needs approvers whatever the domain (awork's admin role)."""
        blocked = self._blocked.match(email)
        if blocked is not None:
            return Ruling("refused", f"blocked_domains: {blocked}", "blocked_domain", entry=blocked)
        route = self.route_for(team_names, channel)
        if route is not None and not route.allows_role(role_name):
            return Ruling(
                "refused", f"routes.{route.name}.roles", "role_not_on_route", route, role_name
            )
        approved = self._approved.match(email)
        if approved is not None and not role_is_admin:
            return Ruling("approved", f"approved_domains: {approved}", route=route, entry=approved)
        if route is not None:
            return Ruling("asked", f"routes.{route.name}", route=route)
        return Ruling("asked", DEFAULT_RULE)

    def unknown_names(self, roles: Iterable[str], teams: Iterable[str]) -> list[str]:
        """Mistakes: role and team names that awork (its catalog) does not have."""
        have_roles = {name.casefold() for name in roles}
        have_teams = {name.casefold() for name in teams}
        mistakes = []
        for index, route in enumerate(self.routes):
            for key, names, have in (
                ("roles", route.roles, have_roles),
                ("teams", route.teams, have_teams),
            ):
                missing = [name for name in names if name.casefold() not in have]
                if missing:
                    kind = "role" if key == "roles" else "team"
                    mistakes.append(
                        f"routes[{index}].{key} ({route.name}): awork has no {kind} "
                        + ", ".join(repr(name) for name in missing)
                    )
        return mistakes

    def group_ids(self) -> frozenset[str]:
        """The user groups the policy names (their members are read from Slack)."""
        ids = [*(self.requesters or ()), *(a for r in self.routes for a in r.approvers)]
        return frozenset(i for i in ids if i.startswith("S"))


class PolicyError(ValueError):
    """A policy file that does not validate: one line per mistake."""

    def __init__(self, mistakes: list[str]) -> None:
        super().__init__("; ".join(mistakes))
        self.mistakes = mistakes


def parse_policy(text: str) -> Policy:
    """The policy a TOML text says; PolicyError naming each mistake (its key, and its line
    where the file shows it) otherwise."""
    import tomllib  # only with INVITE_POLICY set (or `invite-bot policy`): not at every start

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError([f"not TOML: {exc}"]) from None
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError([_mistake(error, text) for error in exc.errors()]) from None


def _mistake(error: Any, text: str) -> str:
    loc = [part for part in error.get("loc", ()) if not str(part).startswith("function-")]
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        message = "not a key of the policy file"
    elif error.get("type") == "missing":
        message = "missing"
    line = _line_of(loc, text)
    where = f"{key or 'the file'}" + (f" (line {line})" if line else "")
    return f"{where}: {message}"


def _line_of(loc: Sequence[Any], text: str) -> int | None:
    """The line of the key a mistake is about: its name after the `[[routes]]` header it
    belongs to (the n-th), or at the top level. None when it cannot be told."""
    names = [part for part in loc if isinstance(part, str)]
    if not names:
        return None
    lines = text.splitlines()
    start = 0
    if names[0] == "routes" and len(loc) >= 2 and isinstance(loc[1], int):
        headers = [n for n, line in enumerate(lines) if line.strip().startswith("[[routes]]")]
        if loc[1] >= len(headers):
            return None
        start = headers[loc[1]]
        if len(names) == 1:
            return start + 1
        names = names[1:]
    pattern = re.compile(rf"^\s*{re.escape(names[0])}\s*=")
    for number in range(start, len(lines)):
        if pattern.match(lines[number]):
            return number + 1
        if number > start and start and lines[number].strip().startswith("["):
            break
    return None


def describe(policy: Policy) -> list[str]:
    """What the policy means, in plain words, one line each."""
    if policy.empty:
        return ["No rules: anyone may ask; INVITE_APPROVERS decide in INVITE_ADMIN_CHANNEL."]
    said = []
    if policy.requesters is not None:
        who = ", ".join(policy.requesters) or "nobody"
        said.append(f"Who may ask: {who} (anyone else is told whom to ask).")
    said += [
        f"{d}: invited without an approver (never an admin role)." for d in policy.approved_domains
    ]
    said += [f"{d}: refused, nobody is asked." for d in policy.blocked_domains]
    if policy.daily_limit is not None:
        said.append(f"Each requester may ask for {policy.daily_limit} people per UTC day.")
    for route in policy.routes:
        match = " or ".join(
            part
            for part in (
                f"teams {', '.join(route.teams)}" if route.teams else "",
                f"asked in {', '.join(route.channels)}" if route.channels else "",
            )
            if part
        )
        where = route.admin_channel or "INVITE_ADMIN_CHANNEL"
        who = ", ".join(route.approvers) or "INVITE_APPROVERS"
        roles = f"; roles allowed: {', '.join(route.roles)}" if route.roles else ""
        said.append(f"Route {route.name}: {match} -> decided by {who} in {where}{roles}.")
    if policy.routes:
        said.append("Anything else: INVITE_APPROVERS decide in INVITE_ADMIN_CHANNEL.")
    return said
