"""`invite-bot doctor`'s Slack checks: the bot token and its scopes, how Slack reaches the bot
(Socket Mode's app-level token, or HTTP's signing secret), the approvers' channel, the
approvers. Read-only: nothing is posted (the channel is judged by `conversations.info`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.cli.doctor.check import Check, clean
from bot.runtime.config import Settings
from bot.runtime.outbound import tls_for
from bot.ui.mrkdwn import counted
from handlers.delivery.posts import HISTORY_SCOPES

REINSTALL = "paste the manifest again (`invite-bot manifest`), reinstall the app and copy the new xoxb- token into SLACK_BOT_TOKEN"


@contextlib.contextmanager
def quiet_slack_sdk() -> Iterator[None]:
    """slack_sdk logs every failed attempt and every retry (an ERROR and two INFO lines each);
    the caller says what went wrong in one line instead."""
    logger = logging.getLogger("slack_sdk.web.base_client")
    was = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was


def unreachable(settings: Settings, exc: Exception) -> str:
    """'could not reach Slack at URL (why)' - urllib's reason ("Connection refused") if any."""
    reason = getattr(exc, "reason", None) or exc
    why = getattr(reason, "strerror", None) or str(reason) or type(exc).__name__
    return f"could not reach Slack at {settings.slack_api_url} ({why})"


def client(settings: Settings) -> WebClient:
    """A client that tries each call once: the doctor reports, it does not wait out an outage."""
    return WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        ssl=tls_for(settings.slack_api_url),
        timeout=10,
        retry_handlers=[],
    )


def slack_checks(settings: Settings, web: WebClient | None = None) -> list[Check]:
    """Token, scopes, channel and approvers; after a failed token the rest are not checked."""
    if not settings.slack_bot_token.get_secret_value():
        token = Check.fail(
            "Slack token",
            "SLACK_BOT_TOKEN is not set",
            "install the app to the workspace and copy its Bot User OAuth Token (xoxb-…) into SLACK_BOT_TOKEN",
        )
        return [token, *_skipped("the Slack token is missing")]
    web = web or client(settings)
    with quiet_slack_sdk():
        try:
            auth = web.auth_test()
        except SlackApiError as exc:
            error = exc.response.get("error")
            token = Check.fail(
                "Slack token",
                f"Slack refused SLACK_BOT_TOKEN ({error})",
                "copy the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page into SLACK_BOT_TOKEN",
            )
            return [token, *_skipped("Slack refused the token")]
        except OSError as exc:
            token = Check.fail(
                "Slack token",
                unreachable(settings, exc),
                "check this machine's network (and SLACK_API_URL, if set)",
            )
            return [token, *_skipped("Slack could not be reached")]
        token = Check.passed(
            "Slack token",
            f"valid for workspace {clean(auth.get('team'))} (bot @{clean(auth.get('user'))})",
        )
        return [
            token,
            _scopes(auth.headers),
            _reaching_the_bot(settings, web),
            _channel(settings, web),
            _approvers(settings, web),
        ]


def _skipped(why: str) -> list[Check]:
    return [
        Check.skipped(name, f"not checked: {why}")
        for name in ("Slack scopes", REACHING, "Admin channel", "Approvers")
    ]


REACHING = "Slack to the bot"
APP_TOKEN_FIX = "copy an app-level token (xapp-…) with the connections:write scope from the app's Basic Information page into SLACK_APP_TOKEN"


def socket_token_problem(settings: Settings, web: WebClient) -> str | None:
    """Why Slack would not open Socket Mode for SLACK_APP_TOKEN (`apps.connections.open`,
    which only hands out an address to connect to), or None."""
    app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else ""
    try:
        with quiet_slack_sdk():
            web.apps_connections_open(app_token=app_token)
    except (SlackApiError, OSError) as exc:
        return socket_refusal(settings, exc)
    return None


def socket_refusal(settings: Settings, exc: SlackApiError | OSError) -> str:
    """What keeps Socket Mode from opening, in one line: Slack refused SLACK_APP_TOKEN, or
    could not be reached."""
    if isinstance(exc, SlackApiError):
        return f"Slack refused SLACK_APP_TOKEN ({exc.response.get('error')})"
    return unreachable(settings, exc)


def _reaching_the_bot(settings: Settings, web: WebClient) -> Check:
    """In Socket Mode (SLACK_APP_TOKEN set, as `serve` runs then): its token accepted; over
    HTTP: the signing secret set, without which `serve --http` does not start."""
    if settings.slack_app_token is not None:
        problem = socket_token_problem(settings, web)
        if problem:
            return Check.fail(REACHING, problem, APP_TOKEN_FIX)
        return Check.passed(REACHING, "Socket Mode: SLACK_APP_TOKEN accepted")
    if not settings.slack_signing_secret.get_secret_value():
        return Check.fail(
            REACHING,
            "SLACK_SIGNING_SECRET is not set: requests over HTTP cannot be checked",
            "copy the Signing Secret from the app's Basic Information page into SLACK_SIGNING_SECRET",
        )
    return Check.passed(REACHING, "over HTTP, requests checked with SLACK_SIGNING_SECRET")


def _scopes(headers: dict[str, Any]) -> Check:
    """The scopes Slack granted (`x-oauth-scopes` on every Web API answer) against manifest.yml."""
    granted = next(
        (str(value) for key, value in headers.items() if key.lower() == "x-oauth-scopes"), None
    )
    if granted is None:
        return Check.fail(
            "Slack scopes",
            "Slack did not say which scopes the token has (no x-oauth-scopes header)",
            "use the app's Bot User OAuth Token (xoxb-…) in SLACK_BOT_TOKEN",
        )
    # Here, not at the top: `serve`'s preflight imports this module but never checks scopes.
    from bot.cli import manifest

    have = {scope.strip() for scope in granted.split(",") if scope.strip()}
    missing = [scope for scope in manifest.bot_scopes() if scope not in have]
    if missing:
        detail = f"the token lacks {', '.join(missing)}"
        if any(scope in HISTORY_SCOPES for scope in missing):
            detail += (
                " (without the *:history scopes a post whose answer Slack lost cannot be looked"
                " for: it is posted again and may show twice, buttons and all)"
            )
        return Check.fail("Slack scopes", detail, REINSTALL)
    return Check.passed("Slack scopes", f"all {len(manifest.bot_scopes())} of manifest.yml")


def _channel(settings: Settings, web: WebClient) -> Check:
    """The approvers' channel exists, is not archived and the bot can post there - judged by
    `conversations.info` (membership), never by posting."""
    name = "Admin channel"
    channel = settings.invite_admin_channel
    where = "set INVITE_ADMIN_CHANNEL to the approvers' channel id (channel details → bottom, C…)"
    if not channel:
        return Check.fail(name, "INVITE_ADMIN_CHANNEL is not set", where)
    try:
        info = web.conversations_info(channel=channel)["channel"]
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error == "channel_not_found":
            return Check.fail(
                name,
                f"Slack finds no channel {clean(channel)} the bot can see (channel_not_found)",
                f"{where}; for a private channel, add the app to it first (channel details → Integrations → Add apps)",
            )
        if error == "missing_scope":
            return Check.fail(
                name, "the token may not look at channels (missing channels:read)", REINSTALL
            )
        return Check.fail(name, f"Slack answered {error} for {clean(channel)}", where)
    except OSError as exc:
        return Check.fail(name, unreachable(settings, exc), "check this machine's network")
    label = f"#{clean(info.get('name') or channel)}"
    if info.get("is_archived"):
        return Check.fail(name, f"{label} is archived", f"unarchive it, or {where}")
    if info.get("is_member"):
        return Check.passed(name, f"{label}: the bot is a member and can post there")
    if not info.get("is_private"):
        return Check.passed(name, f"{label}: public, the bot posts there with chat:write.public")
    return Check.fail(
        name,
        f"{label} is private and the bot is not in it",
        "add the app to the channel (channel details → Integrations → Add apps)",
    )


def _approvers(settings: Settings, web: WebClient) -> Check:
    """Every INVITE_APPROVERS entry is a person (`users.info`, U…/W…) or a user group with
    members (`usergroups.users.list`, S…)."""
    name = "Approvers"
    ids = sorted(settings.invite_approvers)
    fix = "list approvers' Slack member ids (profile → ⋮ → Copy member ID, U…) or user group ids (S…) in INVITE_APPROVERS"
    if not ids:
        return Check.fail(name, "INVITE_APPROVERS is empty: nobody can approve a request", fix)
    found: list[str] = []
    problems: list[str] = []
    for entry in ids:
        shown = clean(entry)
        try:
            if entry[:1] in ("U", "W"):
                user = web.users_info(user=entry)["user"]
                if user.get("deleted"):
                    problems.append(f"{shown} is deactivated")
                elif user.get("is_bot"):
                    problems.append(f"{shown} is a bot")
                else:
                    found.append(f"@{clean(user.get('name') or entry)}")
            else:  # S…: anything else is refused with the settings (bot/runtime/config.py)
                members = web.usergroups_users_list(usergroup=entry)["users"]
                if members:
                    found.append(f"group {shown} ({counted(len(members), 'member')})")
                else:
                    problems.append(f"user group {shown} has no members")
        except SlackApiError as exc:
            problems.append(f"{shown} does not resolve ({exc.response.get('error')})")
        except OSError as exc:
            problems.append(f"{shown}: {unreachable(settings, exc)}")
    if problems:
        return Check.fail(name, "; ".join(problems), fix)
    return Check.passed(name, ", ".join(found))
