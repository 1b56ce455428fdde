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


def register(app: App, deps: Deps) -> None:
    def open_invite_form(ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        # The trigger_id lives for 3 seconds: open the modal before anything else.
        text = (body.get("text") or "").strip()
        view = blocks.invite_form(
            origin_channel=body.get("channel_id"),
            advanced=deps.service.is_approver(body.get("user_id", "")),
            email=text if EMAIL_LIKE.match(text) else None,
        )
        try:
            client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as exc:
            log.warning("could not open the invite form: %s", exc.response.get("error"))

    app.command(COMMAND)(open_invite_form)
