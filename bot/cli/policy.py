"""`invite-bot policy check [FILE]` and `invite-bot policy explain …`: a policy file
(INVITE_POLICY, bot/domain/policy.py) checked as the bot checks it at start - its own mistakes,
one line each, then role and team names awork does not have, once the store holds awork's
roles and teams - and what it would do with one request. Nothing is stored, Slack and awork
are not asked: user groups are resolved by the bot at run time, the daily limit is counted then.
"""

from __future__ import annotations

import argparse
import sys

from bot.cli.doctor.check import clean
from bot.cli.doctor.policy import StoredCatalog, names_anything, stored_catalog
from bot.domain.policy import DomainSet, Policy, PolicyError, Ruling, describe
from bot.runtime.config import Settings
from bot.services.policy import NO_POLICY, read_policy

ADMIN_WORD = "admin"  # a role awork's catalog does not know is taken as admin by its name


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.policy_command == "check":
        return check(settings, args.file)
    return explain(settings, args)


def say(line: str) -> None:
    print(clean(line))


def fail(line: str) -> None:
    print(f"invite-bot: {clean(line)}", file=sys.stderr)


def read(path: str) -> Policy | None:
    """The policy in `path`; None after one line per mistake on stderr."""
    try:
        return read_policy(path)
    except PolicyError as exc:
        for mistake in exc.mistakes:
            fail(f"{path}: {mistake}")
        return None


def check(settings: Settings, file: str | None) -> int:
    """0 and what the policy means when valid; 1 and its mistakes; 2 without a file."""
    path = file or settings.invite_policy
    if path is None:
        fail("no policy file: name one (`invite-bot policy check FILE`) or set INVITE_POLICY")
        return 2
    policy = read(path)
    if policy is None:
        return 1
    catalog, why = stored_catalog(settings) if names_anything(policy) else (None, "")
    if catalog is not None:
        unknown = policy.unknown_names(*catalog.names())
        for mistake in unknown:
            fail(f"{path}: {mistake}")
        if unknown:
            return 1
    say(f"{path}: valid")
    for line in describe(policy):
        say(f"  {line}")
    if names_anything(policy) and catalog is None:
        say(f"Role and team names not checked against awork: {why}.")
    return 0


def explain(settings: Settings, args: argparse.Namespace) -> int:
    """Which rule decides one request, and what would happen to it."""
    path = args.policy or settings.invite_policy
    if path is None:
        policy = NO_POLICY
        say("No policy (INVITE_POLICY unset): anyone may ask; INVITE_APPROVERS decide.")
    else:
        read_from = read(path)
        if read_from is None:
            return 1
        policy = read_from
        say(f"policy: {path}")
    defaults = Defaults(settings)
    requester = args.requester
    if policy.requesters is not None:
        groups = sorted(i for i in policy.requesters if i.startswith("S"))
        if requester in policy.requesters:
            say(f"requester {requester}: listed in requesters")
        elif groups:
            say(
                f"requester {requester}: not listed by id; user groups {', '.join(groups)} are "
                "resolved in Slack at run time (a member of one may ask)"
            )
        else:
            say(
                f"rule: requesters → {requester} may not ask; they are told to ask "
                f"{defaults.approvers}; nothing stored"
            )
            return 0
    is_admin = role_is_admin(settings, args.role) if args.role else False
    ruling = policy.judge(args.email, args.role, is_admin, args.team, args.channel)
    say(f"rule: {ruling.rule} → {outcome(ruling, args.role, defaults)}")
    approved = DomainSet(policy.approved_domains).match(args.email)
    if is_admin and approved is not None and ruling.outcome == "asked":
        say(
            f"{approved} is an approved domain, but an admin role is never invited without "
            "an approver"
        )
    if policy.daily_limit is not None and ruling.outcome != "refused":
        say(
            f"daily limit: at most {policy.daily_limit} people per UTC day for each requester "
            "(counted when asked; beyond it, refused until midnight UTC)"
        )
    return 0


class Defaults:
    """INVITE_APPROVERS and INVITE_ADMIN_CHANNEL, as this configuration has them."""

    def __init__(self, settings: Settings) -> None:
        ids = ", ".join(sorted(settings.invite_approvers)) or "empty: nobody"
        self.approvers = f"INVITE_APPROVERS ({ids})"
        self.channel = f"INVITE_ADMIN_CHANNEL ({settings.invite_admin_channel or 'unset'})"


def outcome(ruling: Ruling, role: str | None, defaults: Defaults) -> str:
    """What happens, in words: refused (why), invited at once, or asked of whom, where."""
    route = ruling.route
    if ruling.why == "blocked_domain":
        return "refused, nothing stored"
    if ruling.why == "role_not_on_route" and route is not None:
        return (
            f"refused: role {role} may not be asked for on route {route.name} (its roles: "
            f"{', '.join(route.roles)}); nothing stored"
        )
    if ruling.outcome == "approved":
        return "invited without an approver"
    if route is not None:
        who = ", ".join(route.approvers) or defaults.approvers
        return f"asked of {who} in {route.admin_channel or defaults.channel}"
    return f"asked of {defaults.approvers} in {defaults.channel}"


def role_is_admin(settings: Settings, role: str) -> bool:
    """Whether `role` is an admin role: as awork's roles in the store say, else by its name
    (said in a line, either way)."""
    catalog, why = stored_catalog(settings)
    known = catalog.role(role) if isinstance(catalog, StoredCatalog) else None
    if known is not None:
        kind = "an admin role" if known.is_admin_role else "not an admin role"
        say(f"role {known.name}: {kind} (awork's roles as the store holds them)")
        return known.is_admin_role
    admin = ADMIN_WORD in role.casefold()
    taken = "an admin role, as its name says admin" if admin else "not an admin role"
    unknown = f"awork's roles are not known here: {why}" if why else "awork has no such role"
    say(f"role {role}: taken as {taken}; {unknown}")
    return admin
