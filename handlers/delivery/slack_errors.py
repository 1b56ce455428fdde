"""What the Slack Web API's failures mean for delivery: which errors a post can end in, their
name for a log line, and what an admin should do about a misconfigured admin channel."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError

SEND_ERRORS = (SlackApiError, OSError)
# Slack errors that mean the configuration is wrong, with what the admin should do.
ADMIN_CHANNEL_HINTS = {
    "channel_not_found": "check INVITE_ADMIN_CHANNEL (a channel id like C0123…); for a private channel, add the bot to it",
    "not_in_channel": "add the bot to the INVITE_ADMIN_CHANNEL channel",
    "is_archived": "INVITE_ADMIN_CHANNEL is archived; set another channel",
    "invalid_auth": "check SLACK_BOT_TOKEN",
    "missing_scope": "reinstall the app from manifest.yml so it has every scope",
}


def slack_error(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error", "unknown"))
    return type(exc).__name__
