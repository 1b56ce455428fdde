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
    service = deps.service

    def open_invite_form(ack: Ack, body: dict, client: WebClient) -> None:
        words = str(body.get("text") or "").split()
        user = str(body.get("user_id", ""))
        if words and words[0].lower() in lists:
            # Answered in the ack itself: a store read, well inside Slack's 3 seconds.
            ack(**lists[words[0].lower()](user, words[1:]))
            return
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

    def pending(user: str, args: list[str]) -> dict:
        if not service.is_approver(user):
            return {"text": blocks.NOT_APPROVER}
        return _reply(blocks.pending_list(service.waiting_for(user), _page_number(args)))

    def mine(user: str, args: list[str]) -> dict:
        return _reply(blocks.my_list(service.requests_of(user), _page_number(args)))

    def status(user: str, args: list[str]) -> dict:
        request = service.visible_request(args[0], user) if args else None
        if request is None:
            return {"text": blocks.NOT_FOUND_TEXT + " Usage: `/invite status <request id>`."}
        return _reply(blocks.status_card(request))

    def help_(user: str, args: list[str]) -> dict:
        return {"text": blocks.help_text()}

    lists = {"pending": pending, "mine": mine, "status": status, "help": help_}
    app.command(COMMAND)(open_invite_form)


def _reply(reply_blocks: list[dict]) -> dict:
    fallback = reply_blocks[0]["text"]["text"] if reply_blocks else ""
    return {"text": fallback, "blocks": reply_blocks, "response_type": "ephemeral"}


def _page_number(args: list[str]) -> int:
    return int(args[0]) if args and args[0].isdigit() else 1
