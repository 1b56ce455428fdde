"""What Slack sends the bot, as the shell's current user: slash commands, interactions (clicks,
option loads, form submissions) and events, each signed with the session's own key and passed
through Bolt's request verification, as from Slack."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from slack_bolt import App
from slack_bolt.request import BoltRequest
from slack_sdk.signature import SignatureVerifier

from bot.cli.shell.slack import TerminalSlack
from bot.cli.shell.world import BOT_USER, CHANNEL_NAMES, GENERAL, TEAM, Message, People
from bot.i18n import _
from handlers.shortcuts import GLOBAL_SHORTCUT, MESSAGE_SHORTCUT


class Sender:
    def __init__(self, app: App, secret: str, people: People, slack: TerminalSlack) -> None:
        self.app = app
        self.verifier = SignatureVerifier(secret)
        self.people = people
        self.slack = slack

    def _signed(self, body: str, content_type: str) -> BoltRequest:
        timestamp = str(int(time.time()))
        signature = self.verifier.generate_signature(timestamp=timestamp, body=body)
        headers = {
            "content-type": [content_type],
            "x-slack-request-timestamp": [timestamp],
            "x-slack-signature": [signature],
        }
        return BoltRequest(body=body, headers=headers)

    def _form(self, fields: dict[str, str]) -> Any:
        return self.app.dispatch(
            self._signed(urlencode(fields), "application/x-www-form-urlencoded")
        )

    def trigger(self) -> str:
        """A trigger id for what the current user does now."""
        return self.slack.trigger(self.people.current.id)

    def interactive(self, payload: dict[str, Any]) -> Any:
        """An interaction payload (`block_actions`, `block_suggestion`, `view_submission`,
        a shortcut) from the current user; Bolt's response."""
        user = self.people.current
        payload = {
            "token": "shell",
            "api_app_id": "ASHELL",
            "team": TEAM,
            "user": {"id": user.id, "username": user.name, "team_id": TEAM["id"]},
            **payload,
        }
        return self._form({"payload": json.dumps(payload)})

    def command(self, line: str) -> None:
        """A slash command typed in #general; its answer is shown as Slack shows it."""
        command, _space, text = line.partition(" ")
        user = self.people.current
        response = self._form(
            {
                "token": "shell",
                "team_id": TEAM["id"],
                "team_domain": TEAM["domain"],
                "channel_id": GENERAL,
                "channel_name": "general",
                "user_id": user.id,
                "user_name": user.name,
                "command": command,
                "text": text,
                "api_app_id": "ASHELL",
                "response_url": "https://hooks.slack.invalid/commands/shell",
                "trigger_id": self.trigger(),
            }
        )
        self._show_response(response)

    def shortcut(self, message: Message | None = None) -> None:
        """The global shortcut, or - on `message` - the message shortcut, as Slack sends them."""
        payload: dict[str, Any] = {
            "type": "shortcut",
            "callback_id": GLOBAL_SHORTCUT,
            "trigger_id": self.trigger(),
            "action_ts": f"{time.time():.6f}",
        }
        if message is not None:
            posted: dict[str, Any] = {"type": "message", "user": message.author}
            if message.author == BOT_USER:
                posted["bot_id"] = "BBOT"
            payload.update(
                type="message_action",
                callback_id=MESSAGE_SHORTCUT,
                message_ts=message.ts,
                channel={
                    "id": message.channel,
                    "name": CHANNEL_NAMES.get(message.channel, message.channel).lstrip("#"),
                },
                message={**posted, "ts": message.ts, "text": message.text},
                response_url="https://hooks.slack.invalid/actions/shell",
            )
        self._show_response(self.interactive(payload))

    def _show_response(self, response: Any) -> None:
        screen = self.slack.screen
        if response.status != 200:
            screen.print(
                "  " + _("(Slack would show an error: HTTP {status})", status=response.status)
            )
            return
        if not response.body:
            return
        try:
            body = json.loads(response.body)
        except ValueError:
            body = {"text": response.body}
        if body.get("response_action") == "errors":
            for block_id, error in body.get("errors", {}).items():
                screen.print(f"  ✗ {block_id}: {error}")
            return
        # The command's answer, as Slack shows it: an ephemeral in the channel (buttons work).
        self.slack.answer(
            "chat.postEphemeral",
            {
                "channel": GENERAL,
                "user": self.people.current.id,
                "text": body.get("text", ""),
                "blocks": body.get("blocks") or [],
            },
        )

    def event(self, event: dict[str, Any]) -> None:
        """An Events API event of the current user, in their DM with the bot."""
        body = {
            "token": "shell",
            "team_id": TEAM["id"],
            "api_app_id": "ASHELL",
            "type": "event_callback",
            "event_id": "Ev" + secrets.token_hex(5),
            "event_time": int(time.time()),
            "event": {
                **event,
                "channel": "D" + self.people.current.id,
                "event_ts": f"{time.time():.6f}",
            },
        }
        self.app.dispatch(self._signed(json.dumps(body), "application/json"))
