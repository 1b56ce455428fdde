"""`/invite`: open the form at once."""

from __future__ import annotations

import logging
import re

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.deps import Deps

log = logging.getLogger(__name__)

# `/invite` is the documented name; `/awork-invite` is the fallback for workspaces where Slack
# keeps `/invite` for its own channel command.
COMMAND = re.compile(r"^/(awork-)?invite$")
EMAIL_LIKE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def prefilled_email(text: str) -> str | None:
    """`/invite ada@example.com` prefills the form's email; anything else is ignored."""
    text = text.strip()
    return text if len(text) <= 254 and EMAIL_LIKE.match(text) else None


def register(app: App, deps: Deps) -> None:
    def open_invite_form(ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        # The trigger_id lives for 3 seconds: open the modal before anything else.
        text = str(body.get("text") or "")
        view = blocks.invite_form(
            origin_channel=body.get("channel_id"),
            advanced=deps.service.is_approver(body.get("user_id", "")),
            email=prefilled_email(text),
        )
        try:
            client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as exc:
            log.warning("could not open the invite form: %s", exc.response.get("error"))

    app.command(COMMAND)(open_invite_form)
