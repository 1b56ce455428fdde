"""`invite-bot doctor`'s policy check, also `serve`'s one-line reason and what `invite-bot
policy` reads of the store: the policy file (INVITE_POLICY) validates, and - once the store
holds awork's roles and teams (the bot keeps them there, `Catalog`) - names only roles and teams
awork has. The store is only read: a store file that is not there is not created."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from bot.cli.doctor.check import Check, clean
from bot.domain.awork_models import Role, Team
from bot.domain.policy import Policy, PolicyError
from bot.runtime.config import Settings
from bot.services.policy import read_policy
from bot.ui.mrkdwn import counted


@dataclass(frozen=True)
class StoredCatalog:
    """awork's roles and teams as the bot last stored them (meta "roles" and "teams")."""

    roles: list[Role]
    teams: list[Team]

    def names(self) -> tuple[list[str], list[str]]:
        return [role.name for role in self.roles], [team.name for team in self.teams]

    def role(self, name: str) -> Role | None:
        wanted = name.casefold()
        return next((role for role in self.roles if role.name.casefold() == wanted), None)


def stored_catalog(settings: Settings) -> tuple[StoredCatalog | None, str]:
    """awork's roles and teams as the bot last stored them; else None and why they are not
    known (no store file, a store that cannot be opened, or none stored yet)."""
    from bot.cli.doctor.store import store_problem
    from bot.store import open_store

    if not settings.invite_database_url and not Path(settings.invite_db_path).is_file():
        return None, f"no store at {settings.invite_db_path} (INVITE_DB_PATH)"
    try:
        store = open_store(settings)
    except Exception as exc:
        return None, store_problem(settings, exc)
    try:
        roles = [Role.model_validate(role) for role in store.get_meta("roles", [])]
        teams = [Team.model_validate(team) for team in store.get_meta("teams", [])]
    except ValidationError:
        return None, "the store's copy of awork's roles and teams cannot be read"
    except Exception as exc:
        return None, store_problem(settings, exc)
    finally:
        store.close()
    if not roles and not teams:
        return (
            None,
            "the store holds no roles or teams of awork yet (the bot reads them as it runs)",
        )
    return StoredCatalog(roles, teams), ""


def names_anything(policy: Policy) -> bool:
    """Whether the policy names roles or teams (which awork must have)."""
    return any(route.roles or route.teams for route in policy.routes)


def rule_count(policy: Policy) -> int:
    """Its rules: who may ask, each domain, the daily limit, each route."""
    return (
        (policy.requesters is not None)
        + len(policy.approved_domains)
        + len(policy.blocked_domains)
        + (policy.daily_limit is not None)
        + len(policy.routes)
    )


def policy_problem(settings: Settings, with_names: bool = False) -> str | None:
    """None when INVITE_POLICY is unset or valid (`with_names`: also against awork's names,
    when the store holds them); else one line naming the file and its mistakes (`serve`
    checks this before it starts)."""
    path = settings.invite_policy
    if path is None:
        return None
    catalog = stored_catalog(settings)[0] if with_names else None
    try:
        read_policy(path, catalog.names() if catalog else None)
    except PolicyError as exc:
        return clean(f"INVITE_POLICY {path}: {'; '.join(exc.mistakes)}")
    return None


def policy_check(settings: Settings, store_ok: bool = True) -> Check:
    """INVITE_POLICY validates, and names only roles and teams awork has (when the store,
    if it opened for the store check, holds them)."""
    path = settings.invite_policy
    if path is None:
        return Check.passed(
            "Policy", "INVITE_POLICY unset: anyone may ask; INVITE_APPROVERS decide every request"
        )
    fix = f"run `invite-bot policy check {path}` for every mistake"
    try:
        policy = read_policy(path)
    except PolicyError as exc:
        return Check.fail("Policy", clean(f"{path}: {_first(exc.mistakes)}"), clean(fix))
    catalog, why = stored_catalog(settings) if store_ok else (None, "the store cannot be opened")
    if catalog is not None:
        unknown = policy.unknown_names(*catalog.names())
        if unknown:
            return Check.fail("Policy", clean(f"{path}: {_first(unknown)}"), clean(fix))
    detail = f"{path}: valid ({counted(rule_count(policy), 'rule')})"
    if catalog is None and names_anything(policy):
        detail += f"; its role and team names not checked: {why}"
    return Check.passed("Policy", clean(detail))


def _first(mistakes: list[str]) -> str:
    more = len(mistakes) - 1
    return mistakes[0] + (f" (and {counted(more, 'more mistake')})" if more else "")
