"""Slack's Web API for the shell, answered in-process: every message, update, DM, modal and App
Home the bot sends is kept (messages are numbered, so buttons can be clicked) and printed."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.web.slack_response import SlackResponse

from bot.cli.shell.screen import Screen
from bot.cli.shell.world import BOT_USER, TEAM, Message, People
from bot.i18n import _, speaking
from bot.runtime.slack_clients import label_call
from bot.ui.mrkdwn import escape

OpenView = Callable[[dict[str, Any], str], dict[str, Any]]  # (views.open's args, user) -> answer


class TerminalSlack(WebClient):
    """The bot's Slack client in the shell: each call is answered here and shown; `open_view`
    (the shell's forms) takes the modals. Everyone's Slack is set to `locale` (`de-DE` for
    `--lang de`), as users.info says when asked with `include_locale`."""

    def __init__(
        self, people: People, screen: Screen, sandbox: bool, locale: str = "en-US"
    ) -> None:
        super().__init__(token="xoxb-shell", base_url="https://slack.invalid/api/")
        self.people = people
        self.screen = screen
        self.sandbox = sandbox
        self.locale = locale
        self.messages: list[Message] = []
        self.triggers: dict[str, str] = {}  # trigger id -> user id
        self.open_view: OpenView | None = None

    def api_call(self, api_method: str, *, json: dict | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        if self.sandbox:
            json = label_call(api_method, json)
        args: dict[str, Any] = {}
        for part in (kwargs.get("params"), kwargs.get("data"), json):
            args.update(part or {})
        data = self.answer(api_method, args)
        return SlackResponse(
            client=self,
            http_verb="POST",
            api_url=self.base_url + api_method,
            req_args={},
            data=data,
            headers={},
            status_code=200,
        ).validate()

    def trigger(self, user_id: str) -> str:
        """A new trigger id for something `user_id` does (a modal it opens is theirs)."""
        trigger = f"{time.time_ns()}.{secrets.token_hex(4)}"
        self.triggers[trigger] = user_id
        return trigger

    def answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """What Slack would answer to `method`; one call at a time, printed whole, the
        shell's own words in the shell's language (whoever the bot was speaking to)."""
        with self.screen.lock, speaking(self.screen.language):
            return self._answer(method, args)

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "user_id": "UBOT", "team_id": TEAM["id"], "bot_id": "BBOT"}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(args.get("users", ""))}}
        if method in ("chat.postMessage", "chat.postEphemeral"):
            return self._post(method, args)
        if method == "chat.update":
            return self._update(args)
        if method == "users.lookupByEmail":
            user = self.people.by_email(str(args.get("email", "")))
            if user is None:
                return {"ok": False, "error": "users_not_found"}
            return {"ok": True, "user": {"id": user.id, "deleted": False, "is_bot": False}}
        if method == "users.info":
            return self._user_info(str(args.get("user", "")), _asked(args.get("include_locale")))
        if method == "users.list":
            members = [
                {"id": u.id, "deleted": False, "is_bot": False, "profile": {"email": u.email}}
                for u in self.people.users.values()
            ]
            return {"ok": True, "members": members, "response_metadata": {"next_cursor": ""}}
        if method == "usergroups.users.list":
            return {"ok": False, "error": "no_such_subteam"}
        if method in ("views.open", "views.push", "views.update") and self.open_view:
            user = self.triggers.get(str(args.get("trigger_id")), self.people.current.id)
            return self.open_view(args, user)
        if method == "views.publish":
            view = args.get("view") or {}
            who = self.people.name(str(args.get("user_id")))
            self.screen.header(_("── App Home of {who} ──", who=who))
            self.screen.blocks(view.get("blocks") or [], None)
            return {"ok": True, "view": {"id": "VHOME", **view}}
        return {"ok": False, "error": "unknown_method"}

    def _post(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel"))
        ts = f"{time.time():.6f}"
        message = Message(
            number=len(self.messages) + 1,
            channel=channel,
            ts=ts,
            text=str(args.get("text") or ""),
            blocks=list(args.get("blocks") or []),
            to=str(args["user"]) if method == "chat.postEphemeral" else None,
        )
        self.messages.append(message)
        thread = args.get("thread_ts")
        parent = next((m for m in self.messages if m.ts == thread), None)
        where = self.screen.where(channel, message.to)
        if parent:
            where = _(
                "{where}, in the thread of message {number}", where=where, number=parent.number
            )
        self.screen.header(
            _("── message {number} · {where} ──", number=message.number, where=where)
        )
        self.screen.blocks(message.blocks, message)
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        return {"ok": True, "channel": channel, "ts": ts, "message": {"text": message.text}}

    def say(self, user_id: str, channel: str, text: str) -> Message:
        """A message a person posts (`say`): theirs, so a message shortcut names them. Its
        text is kept as Slack keeps what people type, with `&`, `<` and `>` escaped."""
        with self.screen.lock:
            message = Message(
                number=len(self.messages) + 1,
                channel=channel,
                ts=f"{time.time():.6f}",
                text=escape(text),
                blocks=[],
                author=user_id,
            )
            self.messages.append(message)
            self.screen.header(
                _(
                    "── message {number} · {where} · from {who} ──",
                    number=message.number,
                    where=self.screen.where(channel, None),
                    who=self.people.name(user_id),
                )
            )
            self.screen.blocks([], message)
            return message

    def _user_info(self, user_id: str, locale: bool = False) -> dict[str, Any]:
        """users.info: the bot is a bot (no address); a person has a profile with their
        address and names, and (asked with `include_locale`) the shell's locale."""
        if user_id == BOT_USER:
            profile = {"real_name": "awork invites", "bot_id": "BBOT"}
            return {"ok": True, "user": {"id": BOT_USER, "is_bot": True, "profile": profile}}
        user = self.people.by_id(user_id)
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        first, _space, last = user.full_name.partition(" ")
        profile = {
            "email": user.email,
            "real_name": user.full_name,
            "first_name": first,
            "last_name": last,
            "display_name": user.name,
        }
        person = {"id": user.id, "name": user.name, "deleted": False, "is_bot": False}
        if locale:
            person["locale"] = self.locale
        return {"ok": True, "user": {**person, "profile": profile}}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        message = next(
            (
                m
                for m in self.messages
                if m.ts == args.get("ts") and m.channel == args.get("channel")
            ),
            None,
        )
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message.text = str(args.get("text") or "")
        message.blocks = list(args.get("blocks") or [])
        where = self.screen.where(message.channel, None)
        self.screen.header(
            _("── message {number} updated · {where} ──", number=message.number, where=where)
        )
        self.screen.blocks(message.blocks, message)
        return {"ok": True, "channel": message.channel, "ts": message.ts}


def _asked(flag: Any) -> bool:
    """A boolean argument as slack_sdk passes it (True, or `1`/`true` in a form)."""
    return flag is True or str(flag).lower() in ("1", "true")
