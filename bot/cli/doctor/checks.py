"""`invite-bot doctor`: checks a real installation and says, one line per check, what is wrong
and how to fix it. Slack's checks are in bot/cli/doctor/slack.py; awork's, the link templates' and
the store's are here. Nothing is created: awork's invitation endpoint is asked with an empty
body (which it refuses), the store gets a key written and deleted, Slack is only read."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import httpx

from bot.domain.text import clean_text
from bot.runtime.config import Settings

PROBE_KEY = "doctor_probe"  # + a random suffix: replicas starting together never share one


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: not checked, because a check it depends on failed
    detail: str
    fix: str = ""

    @classmethod
    def passed(cls, name: str, detail: str) -> Check:
        return cls(name, True, detail)

    @classmethod
    def fail(cls, name: str, detail: str, fix: str = "") -> Check:
        return cls(name, False, detail, fix)

    @classmethod
    def skipped(cls, name: str, detail: str) -> Check:
        return cls(name, None, detail)

    def line(self) -> str:
        if self.ok:
            return f"ok  {self.name}: {self.detail}"
        if self.ok is None:
            return f"--  {self.name}: {self.detail}"
        return f"FAIL  {self.name}: {self.detail}" + (f" — fix: {self.fix}" if self.fix else "")


def clean(value: object) -> str:
    """A name from Slack or awork, fit for one terminal line."""
    return clean_text(str(value if value is not None else "?"))


# --- awork -------------------------------------------------------------------------------------

AWORK_NAMES = ("awork workspace", "awork roles and teams", "awork invitations")
NEW_KEY = "create an API key in awork (a workspace API key: inviting needs its admin rights) and put it in AWORK_API_KEY"


def awork_checks(settings: Settings, transport: httpx.BaseTransport | None = None) -> list[Check]:
    """The key works (`GET /users/me`), its workspace is AWORK_WORKSPACE_ID's, roles and teams
    can be read, and awork still takes invitations by API."""
    from bot.awork.client import AworkClient, AworkError

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
    from bot.awork.client import AworkError

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
    from bot.awork.client import AworkError

    name = "awork roles and teams"
    try:
        roles, teams = client.roles(), client.teams()
    except AworkError as exc:
        return _awork_refused(name, "GET /roles and /teams", exc, settings)
    if not roles:
        return Check.fail(
            name, "awork lists no roles, so no request can be made", "create a role in awork"
        )
    return Check.passed(name, f"{len(roles)} roles and {len(teams)} teams readable")


def _invitations(client, settings: Settings) -> Check:
    """An empty `POST /invitations` must be refused with 400 validation-failed (nothing is
    created); 404 or 405 means this awork no longer offers the endpoint."""
    from bot.services.invites import invitations_gone_reason

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


# --- link templates ----------------------------------------------------------------------------


def link_checks(settings: Settings) -> list[Check]:
    """INVITE_ACCEPT_URL and INVITE_PASSWORD_URL render, as the bot renders them, into a web
    address."""
    return [
        _link("Acceptance link", "INVITE_ACCEPT_URL", settings.invite_accept_url),
        _link("Password link", "INVITE_PASSWORD_URL", settings.invite_password_url),
    ]


def _link(name: str, variable: str, template: str) -> Check:
    fix = f"in {variable} use only the placeholders {{code}} and {{email}} (write a literal {{ or }} as {{{{ or }}}})"
    try:
        url = template.format(
            code=quote("SAMPLE+CODE=", safe=""), email=quote("ada@example.com", safe="")
        )
    except KeyError as exc:
        return Check.fail(name, f"{variable} has an unknown placeholder {{{exc.args[0]}}}", fix)
    except (IndexError, ValueError, AttributeError) as exc:
        return Check.fail(name, f"{variable} does not render ({exc or 'an empty {}'})", fix)
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        return Check.fail(
            name,
            f"{variable} renders {clean(url)}, which is not a web address",
            f"start {variable} with https://",
        )
    return Check.passed(name, f"{variable} renders {clean(url)}")


# --- the store ---------------------------------------------------------------------------------


def store_place(settings: Settings) -> str:
    """Where the store is, without a password: the file, or the database's host and name."""
    if not settings.invite_database_url:
        return settings.invite_db_path
    try:
        parts = urlsplit(settings.invite_database_url.get_secret_value())
        port = f":{parts.port}" if parts.port else ""
        return f"the PostgreSQL database {parts.hostname or 'localhost'}{port}{parts.path}"
    except ValueError:
        return "the PostgreSQL database of INVITE_DATABASE_URL"


def store_problem(settings: Settings, exc: Exception) -> str:
    """One line for a store that cannot be opened or written: `cannot write the store at PATH:
    why` for a file, `cannot open the store: ...` for a database; secrets masked."""
    from bot.runtime.logs import masked, secret_values

    if isinstance(exc, OSError) and exc.strerror:
        why = exc.strerror
        if exc.filename and str(exc.filename) != settings.invite_db_path:
            why += f" ({exc.filename})"
    elif isinstance(exc, sqlite3.Error):
        why = str(exc)
    else:
        why = f"{type(exc).__name__}: {exc}"
    why = (why.splitlines() or [""])[0]
    if settings.invite_database_url:
        text = f"cannot open the store: {why}"
    else:
        text = f"cannot write the store at {settings.invite_db_path}: {why}"
    return masked(text, secret_values(settings))


def probe_store(store) -> None:
    """Write a key into the store, read it back and delete it: raises when it is not writable."""
    key = f"{PROBE_KEY}:{secrets.token_hex(8)}"
    stamp = datetime.now(UTC).isoformat()
    store.set_meta(key, stamp)
    try:
        if store.get_meta(key) != stamp:
            raise OSError(0, "a value written could not be read back")
    finally:
        store.delete_meta(key)


def store_writable(settings: Settings) -> str | None:
    """None when the store opens (its schema created or upgraded, as at the bot's start) and
    takes a write; else one line saying why (`serve` checks this before it starts too)."""
    from bot.store import open_store

    try:
        store = open_store(settings)
    except Exception as exc:
        return store_problem(settings, exc)
    try:
        probe_store(store)
    except Exception as exc:
        return store_problem(settings, exc)
    finally:
        store.close()
    return None


def store_check(settings: Settings) -> Check:
    """The store opens and takes a write (`store_writable`)."""
    problem = store_writable(settings)
    if problem:
        return _store_failed(settings, problem)
    place = store_place(settings)
    kind = "PostgreSQL" if settings.invite_database_url else "sqlitedict file"
    where = place if settings.invite_database_url else f"{kind} {place}"
    return Check.passed("Store", f"writable ({where})")


def _store_failed(settings: Settings, problem: str) -> Check:
    if settings.invite_database_url:
        fix = "check INVITE_DATABASE_URL and that this user may create tables and write in that database"
    else:
        fix = "point INVITE_DB_PATH at a file in a writable directory on a persistent volume (in Docker leave it unset: the image keeps the store in /data)"
    return Check.fail("Store", problem, fix)


# --- all of them -------------------------------------------------------------------------------


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
    the link templates' and the store's."""
    return [
        *guarded("Slack", slack_checks, "check SLACK_API_URL, if set, and Slack's status"),
        *guarded(
            "awork",
            lambda: awork_checks(settings, awork_transport),
            "check AWORK_API_URL (awork's is https://api.awork.com/api/v1)",
        ),
        *guarded("Link templates", lambda: link_checks(settings), "check INVITE_ACCEPT_URL"),
        store_check(settings),
    ]


def report(checks: list[Check], settings: Settings) -> tuple[list[str], int]:
    """The lines to print (secrets masked) and the exit code: 0 only if every check passed."""
    from bot.runtime.logs import masked, secret_values

    secrets = secret_values(settings)
    lines = [masked(check.line(), secrets) for check in checks]
    return lines, 0 if all(check.ok for check in checks) else 1
