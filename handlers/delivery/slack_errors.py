"""What the Slack Web API's failures mean for delivery: which errors a post can end in, their
name for a log line, whether Slack refused the post or only failed it for now, whether it may
have been posted all the same, and what an admin should do about a misconfigured admin
channel."""

from __future__ import annotations

import logging
from http.client import HTTPException
from urllib.error import URLError

from slack_sdk.errors import SlackApiError


class Unsettled(Exception):
    """Not posted now: an earlier attempt at the same post may have reached Slack, and it is
    not yet known whether it did (handlers/delivery/posts.py); a later sweep tries again."""


SEND_ERRORS = (SlackApiError, OSError, HTTPException, Unsettled)


class NotKnown(Exception):
    """Slack did not say whether someone is a member (a rate limit, a timeout, a missing
    scope): not the same as "not in this Slack", which sends their acceptance link to another
    person."""


def failure_level(exc: BaseException) -> int:
    """How loud a failed approval post is: waiting to learn whether an earlier attempt landed
    is expected (INFO); anything else an admin may have to act on (ERROR)."""
    return logging.INFO if isinstance(exc, Unsettled) else logging.ERROR


# Slack errors that mean the configuration is wrong, with what the admin should do.
ADMIN_CHANNEL_HINTS = {
    "channel_not_found": "check INVITE_ADMIN_CHANNEL (a channel id like C0123…); for a private channel, add the bot to it",
    "not_in_channel": "add the bot to the INVITE_ADMIN_CHANNEL channel",
    "is_archived": "INVITE_ADMIN_CHANNEL is archived; set another channel",
    "invalid_auth": "check SLACK_BOT_TOKEN",
    "missing_scope": "reinstall the app from manifest.yml so it has every scope",
}

# Slack's own passing trouble: the same post may go through later, so it is not a refusal.
PASSING = {
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "ratelimited",
    "unknown",  # an answer without Slack's error name (a proxy's page, say)
}
# The app's token or installation, not the person: the post goes through once it is fixed.
SETUP = {
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "missing_scope",
    "not_allowed_token_type",
}


def slack_error(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error", "unknown"))
    return type(exc).__name__


def refused(exc: Exception) -> bool:
    """Whether Slack refused the post for what it is (a DM to a deactivated member, to one who
    does not take the bot's messages, `user_disabled`, `cannot_dm_bot`, `not_in_channel`...),
    rather than failing it for now (a timeout, a 5xx, a rate limit) or for the app's setup (its
    token, its scopes), when a retry may work."""
    if not isinstance(exc, SlackApiError):
        return False
    status = getattr(exc.response, "status_code", 200)
    return status < 500 and status != 429 and slack_error(exc) not in PASSING | SETUP


# Slack's answers that a call failed midway: "it's possible some aspect of the operation
# succeeded before the error was raised" (its documentation of these errors).
MIDWAY = {"internal_error", "fatal_error"}


def ambiguous(exc: Exception) -> bool:
    """Whether a failed post may have been carried out all the same: its answer was lost (a
    read timeout, a connection dropped after the request went out, a broken answer), or Slack
    said it failed midway (HTTP 5xx, `internal_error`, `fatal_error`). Not so when the request
    never left (`URLError`: refused, unresolvable, a connect timeout) or Slack refused it."""
    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", 200)
        return status >= 500 or slack_error(exc) in MIDWAY
    if isinstance(exc, URLError):
        return False
    return isinstance(exc, OSError | HTTPException)
