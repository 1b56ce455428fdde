"""`invite-bot doctor`: checks a real installation and says, one line per check, what is wrong
and how to fix it. The checks are by concern: Slack's (`slack`), awork's (`awork`), the link
templates' (`links`), the store's (`store`) and the policy file's (`policy`); each line is a
`check.Check`. Nothing is created: awork's invitation endpoint is asked with an empty body
(which it refuses), the store gets a key written and deleted, Slack is only read."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.cli.doctor.check import Check, clean

if TYPE_CHECKING:
    import httpx

    from bot.runtime.config import Settings


def guarded(name: str, checks: Callable[[], list[Check]], fix: str) -> list[Check]:
    """`checks`, or - when a service answered something no check expects (a wrong shape, a
    field missing) - one failed line saying so, instead of a traceback."""
    try:
        return checks()
    except Exception as exc:
        detail = f"answered something unexpected ({type(exc).__name__}: {clean(exc)})"
        return [Check.fail(name, detail[:300], fix)]


def run(
    settings: Settings,
    slack_checks: Callable[[], list[Check]],
    awork_transport: httpx.BaseTransport | None = None,
) -> list[Check]:
    """Every check: Slack's (handed in by the command line, from bot/cli/doctor/slack.py), awork's,
    the link templates', the store's and the policy's (its names checked against the store)."""
    # Here, not at the top: `serve` imports this package for its preflight checks only.
    from bot.cli.doctor.awork import awork_checks
    from bot.cli.doctor.links import link_checks
    from bot.cli.doctor.policy import policy_check
    from bot.cli.doctor.store import store_check

    checks = [
        *guarded("Slack", slack_checks, "check SLACK_API_URL, if set, and Slack's status"),
        *guarded(
            "awork",
            lambda: awork_checks(settings, awork_transport),
            "check AWORK_API_URL (awork's is https://api.awork.com/api/v1)",
        ),
        *guarded("Link templates", lambda: link_checks(settings), "check INVITE_ACCEPT_URL"),
    ]
    store = store_check(settings)
    return [*checks, store, policy_check(settings, store_ok=bool(store.ok))]


def report(checks: list[Check], settings: Settings) -> tuple[list[str], int]:
    """The lines to print (secrets masked) and the exit code: 0 only if every check passed."""
    from bot.runtime.logs import masked, secret_values

    secrets = secret_values(settings)
    lines = [masked(check.line(), secrets) for check in checks]
    return lines, 0 if all(check.ok for check in checks) else 1
