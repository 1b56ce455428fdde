"""`invite-bot doctor`'s awork checks: the API key, its workspace, roles and teams, and that
awork still takes `POST /invitations` (asked with an empty body, which it refuses: nothing is
created)."""

from __future__ import annotations

import functools

import httpx

from bot.cli.doctor.check import Check, clean
from bot.runtime.config import Settings
from bot.ui.mrkdwn import counted

AWORK_NAMES = ("awork workspace", "awork roles and teams", "awork invitations")
NEW_KEY = "create an API key in awork (a workspace API key: inviting needs its admin rights) and put it in AWORK_API_KEY"


def awork_checks(settings: Settings, transport: httpx.BaseTransport | None = None) -> list[Check]:
    """The key works (`GET /users/me`), its workspace is AWORK_WORKSPACE_ID's, roles and teams
    can be read, and awork still takes invitations by API."""
    from bot.awork.client import AworkClient
    from bot.awork.errors import AworkError
    from bot.runtime.outbound import proxy_for, tls_for

    if settings.sandbox:
        key = Check.fail(
            "awork key",
            "AWORK_API_KEY is not set: the bot answers from its built-in sandbox and invites nobody",
            NEW_KEY,
        )
        return [key, *(Check.skipped(name, "not checked: no awork key") for name in AWORK_NAMES)]
    client = AworkClient(
        settings.awork_api_url,
        settings.awork_api_key.get_secret_value(),
        transport=transport,
        timeout=httpx.Timeout(min(settings.awork_timeout, 10.0), connect=5.0),
        attempts=2,
        # As the bot reaches awork (bot/runtime/app.py): through the same proxy, the same trust.
        verify=functools.partial(tls_for, settings.awork_api_url, httpx=True),
        proxy=proxy_for(settings.awork_api_url),
    )
    try:
        try:
            me = client.me()
        except AworkError as exc:
            key = _awork_refused("awork key", "GET /users/me", exc, settings)
            return [
                key,
                *(Check.skipped(n, "not checked: the awork key failed") for n in AWORK_NAMES),
            ]
        workspace = me.get("workspace") if isinstance(me.get("workspace"), dict) else {}
        name = clean(workspace.get("name") or "(no name)")
        checks = [
            Check.passed("awork key", f"valid for workspace {name}"),
            _workspace(settings, str(workspace.get("id") or ""), name),
            _catalog(client, settings),
            _invitations(client, settings),
        ]
    finally:
        client.close()
    return checks


def _awork_refused(name: str, call: str, exc: Exception, settings: Settings) -> Check:
    from bot.awork.errors import AworkError

    assert isinstance(exc, AworkError)
    if exc.retryable:
        return Check.fail(
            name,
            f"could not reach awork at {settings.awork_api_url} ({clean(exc.description or exc.code)})",
            "check this machine's network and AWORK_API_URL",
        )
    if exc.status == 401 or exc.code == "unauthorized":
        return Check.fail(name, f"awork refused AWORK_API_KEY ({call}: unauthorized)", NEW_KEY)
    if exc.status == 403:
        return Check.fail(name, f"awork does not let this key {call} (forbidden)", NEW_KEY)
    return Check.fail(
        name,
        f"{call} answered {exc.status} {clean(exc.code)}",
        "check AWORK_API_URL (awork's is https://api.awork.com/api/v1)",
    )


def _workspace(settings: Settings, actual: str, name: str) -> Check:
    wanted = settings.awork_workspace_id
    if not actual:
        return Check.fail(
            "awork workspace", "GET /users/me names no workspace for this key", NEW_KEY
        )
    if wanted and wanted != actual:
        return Check.fail(
            "awork workspace",
            f"AWORK_WORKSPACE_ID is {clean(wanted)}, but the key belongs to {name} ({actual})",
            f"set AWORK_WORKSPACE_ID={actual} (or unset it), or use a key of workspace {clean(wanted)}",
        )
    source = "matches AWORK_WORKSPACE_ID" if wanted else "from the key (AWORK_WORKSPACE_ID unset)"
    return Check.passed("awork workspace", f"{actual}, {source}")


def _catalog(client, settings: Settings) -> Check:
    from bot.awork.errors import AworkError

    name = "awork roles and teams"
    try:
        roles, teams = client.roles(), client.teams()
    except AworkError as exc:
        return _awork_refused(name, "GET /roles and /teams", exc, settings)
    if not roles:
        return Check.fail(
            name, "awork lists no roles, so no request can be made", "create a role in awork"
        )
    return Check.passed(
        name, f"{counted(len(roles), 'role')} and {counted(len(teams), 'team')} readable"
    )


def _invitations(client, settings: Settings) -> Check:
    """An empty `POST /invitations` must be refused with 400 validation-failed (nothing is
    created); 404 or 405 means this awork no longer offers the endpoint."""
    from bot.services.failures import invitations_gone_reason

    name = "awork invitations"
    exc = client.try_empty_invitation()
    if exc is None:
        return Check.fail(
            name,
            "POST /invitations took an empty invitation; awork should refuse it with 400 validation-failed",
            "check AWORK_API_URL points at awork's API (https://api.awork.com/api/v1)",
        )
    if exc.status == 400 and exc.code == "validation-failed":
        return Check.passed(
            name,
            "awork takes invitations by API (an empty one is refused: 400 validation-failed, nothing created)",
        )
    if exc.status in (404, 405):
        return Check.fail(
            name,
            invitations_gone_reason(exc.status),
            "the bot cannot invite into this awork; invite people in awork itself and ask awork about its invitations API",
        )
    if exc.retryable or exc.status in (401, 403):
        return _awork_refused(name, "POST /invitations", exc, settings)
    return Check.fail(
        name,
        f"POST /invitations answered {exc.status} {clean(exc.code)} to an empty invitation, not 400 validation-failed",
        "awork's API may have changed; see https://developers.awork.com",
    )
