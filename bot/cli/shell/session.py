"""`invite-bot shell`: the real Bolt app (same listeners, same Block Kit) driven from a terminal.

You type what a Slack user would do, as a user you choose (`as @ada`): `/invite …` is a signed
slash command, a form opens as numbered fields to fill, buttons on messages are commands
(`approve 3`, `deny 3 "reason"`, `accept 5`…; `approve 5.2` for a list's second row), and every
message, update, DM and modal the bot sends is printed. Slack's Web API is answered in-process
(`TerminalSlack`); awork is the sandbox unless `AWORK_API_KEY` is set. Requests are signed with
a key made for the session and go through Bolt's own request verification. Forms are filled as
`bot/cli/shell/forms.py` says; lines come from a terminal or a pipe as `bot/cli/shell/lines.py` says.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import secrets
import shlex
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode

from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.slack_response import SlackResponse

from bot.cli.shell.forms import TEAM_ID, Cancelled, Form, FormFilling
from bot.cli.shell.lines import Lines
from bot.runtime.app import Bot, build, label_call
from bot.runtime.config import Settings

APPROVALS = "CAPPROVALS"
GENERAL = "CGENERAL"
CHANNEL_NAMES = {APPROVALS: "#approvals", GENERAL: "#general"}
TEAM = {"id": TEAM_ID, "domain": "shell"}
CONTINUATION = "... "  # the prompt for the lines of a multi-line answer
VERBS = {  # button action_id -> the command that clicks it
    "approve_invite": "approve",
    "deny_invite": "deny",
    "retry_invite": "retry",
    "retry_failed": "retry",
    "accept_invite": "accept",
    "invite_again": "again",
}
HELP = """\
Commands (as the current user):
  /invite …              any /invite command: /invite, /invite bulk, /invite a@x.com role:Member,
                         /invite pending, /invite mine, /invite help
  approve N | deny N "reason" | accept N | retry N | again N
                         click that button on message N; where a message has several rows
                         of buttons (`/invite pending`), each row is N.1, N.2 …: `approve 5.2`
  as @name               act as another user (@olga and @sam are approvers; new names are made)
  users                  who is who
  home                   open your App Home tab
  help | quit
In a form: `N value` fills field N (and says what it now holds); `N` alone starts a multi-line
answer (the bulk list: one person per line), ended by an empty line, or lists a field's
choices; `show` prints the form so far; `submit` sends it, `cancel` closes it.
At the prompt, arrow keys edit and recall lines; Ctrl-C drops the line (or the multi-line
answer being typed); Ctrl-D or `quit` leaves."""


@dataclass
class User:
    name: str
    id: str
    email: str


@dataclass
class Message:
    number: int
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    to: str | None = None  # an ephemeral's only reader


class CountingExecutor(ThreadPoolExecutor):
    """The listeners' executor, counting work still running, so the shell waits for it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._busy = 0
        self._lock = threading.Condition()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            self._busy += 1

        def counted() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self._busy -= 1
                    self._lock.notify_all()

        return super().submit(counted)

    def wait_idle(self, timeout: float) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: self._busy == 0, timeout=timeout)


class TerminalSlack(WebClient):
    """Slack's Web API for the shell: each call the bot makes is answered here and shown."""

    def __init__(self, shell: Shell, sandbox: bool) -> None:
        super().__init__(token="xoxb-shell", base_url="https://slack.invalid/api/")
        self.shell = shell
        self.sandbox = sandbox

    def api_call(self, api_method: str, *, json: dict | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        if self.sandbox:
            json = label_call(api_method, json)
        args: dict[str, Any] = {}
        for part in (kwargs.get("params"), kwargs.get("data"), json):
            args.update(part or {})
        data = self.shell.web_api(api_method, args)
        return SlackResponse(
            client=self,
            http_verb="POST",
            api_url=self.base_url + api_method,
            req_args={},
            data=data,
            headers={},
            status_code=200,
        ).validate()


class Shell(FormFilling):
    def __init__(self, out: TextIO = sys.stdout, db_path: str | None = None) -> None:
        self.out = out
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}
        for name in ("ada", "olga", "sam"):
            self._user(name)
        self.current = self.users["ada"]
        self.messages: list[Message] = []
        self.forms: dict[str, Form] = {}
        self.triggers: dict[str, str] = {}  # trigger id -> user id
        self.secret = secrets.token_hex(16)
        self.verifier = SignatureVerifier(self.secret)
        workdir = (
            Path(db_path).parent if db_path else Path(tempfile.mkdtemp(prefix="invite-shell-"))
        )
        overrides = {
            "SLACK_BOT_TOKEN": "xoxb-shell",
            "SLACK_SIGNING_SECRET": self.secret,
            "SLACK_APP_TOKEN": "",
            "INVITE_ADMIN_CHANNEL": APPROVALS,
            "INVITE_DB_PATH": db_path or str(workdir / "invite-bot.sqlite"),
            # The shell's own people decide, whatever a .env says about the real Slack.
            "INVITE_APPROVERS": f"{self.users['olga'].id},{self.users['sam'].id}",
        }
        settings = Settings(**overrides)
        self.settings = settings
        self.executor = CountingExecutor(max_workers=16, thread_name_prefix="listener")
        self.slack = TerminalSlack(self, sandbox=settings.sandbox)
        self.bot: Bot = build(settings, slack=self.slack, executor=self.executor)
        self.bot.deps.catalog.refresh()
        self.input = Lines(io.StringIO())  # `run` reads from its own lines

    # -- people ----------------------------------------------------------------------------

    def _user(self, name: str) -> User:
        name = name.lstrip("@").lower()
        if name not in self.users:
            user_id = "U" + re.sub(r"[^A-Z0-9]", "", name.upper())[:10]
            self.users[name] = User(name, user_id, f"{name}@example.com")
        return self.users[name]

    def _name(self, user_id: str) -> str:
        found = next((u.name for u in self.users.values() if u.id == user_id), None)
        return f"@{found}" if found else f"<@{user_id}>"

    # -- Slack's side: what the bot calls ----------------------------------------------------

    def web_api(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
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
            wanted = str(args.get("email", "")).lower()
            user = next((u for u in self.users.values() if u.email == wanted), None)
            if user is None:
                return {"ok": False, "error": "users_not_found"}
            return {"ok": True, "user": {"id": user.id, "deleted": False, "is_bot": False}}
        if method == "users.list":
            members = [
                {"id": u.id, "deleted": False, "is_bot": False, "profile": {"email": u.email}}
                for u in self.users.values()
            ]
            return {"ok": True, "members": members, "response_metadata": {"next_cursor": ""}}
        if method == "usergroups.users.list":
            return {"ok": False, "error": "no_such_subteam"}
        if method in ("views.open", "views.push", "views.update"):
            user = self.triggers.get(str(args.get("trigger_id")), self.current.id)
            return self._open_view(args, user)
        if method == "views.publish":
            view = args.get("view") or {}
            self._print(f"── App Home of {self._name(str(args.get('user_id')))} ──")
            self._print_blocks(view.get("blocks") or [], None)
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
        where = self._where(channel, message.to)
        if parent:
            where += f", in the thread of message {parent.number}"
        self._print(f"── message {message.number} · {where} ──")
        self._print_blocks(message.blocks, message)
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        return {"ok": True, "channel": channel, "ts": ts, "message": {"text": message.text}}

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
        self._print(
            f"── message {message.number} updated · {self._where(message.channel, None)} ──"
        )
        self._print_blocks(message.blocks, message)
        return {"ok": True, "channel": message.channel, "ts": message.ts}

    # -- printing ----------------------------------------------------------------------------

    def _print(self, line: str) -> None:
        with self.lock:
            print(self._plain(line), file=self.out, flush=True)

    def _where(self, channel: str, only: str | None) -> str:
        if channel.startswith("D"):
            where = f"DM to {self._name(channel[1:])}"
        else:
            where = CHANNEL_NAMES.get(channel, channel)
        return f"{where}, only {self._name(only)} sees it" if only else where

    def _plain(self, text: str) -> str:
        """mrkdwn made readable: mentions by name, links as `text (url)`, entities back."""
        text = re.sub(r"<@(U[A-Z0-9]+)>", lambda m: self._name(m[1]), text)
        text = re.sub(r"<#(\w+)(?:\|[^>]*)?>", lambda m: CHANNEL_NAMES.get(m[1], "#" + m[1]), text)
        text = re.sub(r"<!date\^[^|>]*\|([^>]*)>", r"\1", text)
        text = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r"\2 (\1)", text)
        text = re.sub(r"<(https?://[^>]+)>", r"\1", text)
        return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")

    def _text_of(self, block: dict[str, Any]) -> str:
        if block.get("type") == "context":
            return " ".join(e.get("text", "") for e in block.get("elements") or [])
        parts = [(block.get("text") or {}).get("text", "")]
        parts += [f.get("text", "") for f in block.get("fields") or []]
        return "\n".join(p for p in parts if p)

    def _print_blocks(self, blocks: list[dict[str, Any]], message: Message | None) -> None:
        if not blocks and message is not None:
            self._print("  " + message.text.replace("\n", "\n  "))
        rows = [block for block in blocks if block.get("type") == "actions"]
        for block in blocks:
            kind = block.get("type")
            if kind in ("section", "context", "header"):
                text = self._text_of(block) or (block.get("text") or {}).get("text", "")
                self._print("  " + text.replace("\n", "\n  "))
            elif kind == "divider":
                self._print("  ────")
            elif kind == "actions":
                # Several rows of buttons (the pending list): each row is `N.row`.
                where = ""
                if message is not None:
                    where = f"{message.number}"
                    if len(rows) > 1:
                        where += f".{next(i for i, r in enumerate(rows, 1) if r is block)}"
                labels = []
                for element in block.get("elements") or []:
                    verb = VERBS.get(element.get("action_id", ""), "click")
                    command = f"{verb} {where}" if message else verb
                    if verb == "deny":
                        command += ' "reason"'
                    label = element.get("text", {}).get("text", "")
                    if message is None and element.get("value"):
                        label += f" ({element['value']})"
                    labels.append(f"[{label}: {command}]" if message else f"[{label}]")
                self._print("  " + "  ".join(labels))

    # -- the user's side: what you type ------------------------------------------------------

    def run(self, lines: TextIO) -> None:
        mode = (
            "sandbox — no real invitation"
            if self.settings.sandbox
            else "awork at " + self.settings.awork_api_url
        )
        self._print(f"invite-bot shell ({mode}). You are @{self.current.name}. Type `help`.")
        self.input = Lines(lines)
        try:
            while (line := self._next()) is not None and line not in ("quit", "exit"):
                try:
                    try:
                        self.do(line)
                    except (ValueError, KeyError, IndexError) as exc:
                        self._print(f"  ?? {exc}")
                    self.executor.wait_idle(timeout=120)
                except KeyboardInterrupt:  # Ctrl-C while a command runs: back to the prompt
                    self._print("  (interrupted)")
        finally:
            with contextlib.suppress(KeyboardInterrupt):
                self.bot.shutdown(timeout=10)

    def _next(self) -> str | None:
        """The next command; None to leave (Ctrl-D, end of input). At a terminal the prompt
        comes first; from a pipe each line is printed after its prompt, as a transcript."""
        while True:
            prompt = f"@{self.current.name}> "
            try:
                raw = self.input.read(prompt)
            except KeyboardInterrupt:  # Ctrl-C drops the line, as in a terminal; Ctrl-D leaves
                self._print("^C (line dropped; Ctrl-D or `quit` leaves)")
                continue
            if raw is None:
                return None
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not self.input.terminal:
                self._print(prompt + line)
            return line

    def _read_block(self) -> str:
        """A multi-line answer: the lines up to an empty one (or Ctrl-D, the end of input).
        Ctrl-C drops it (`Cancelled`)."""
        lines: list[str] = []
        while True:
            try:
                raw = self.input.read(CONTINUATION)
            except KeyboardInterrupt:
                self._print("^C")
                raise Cancelled from None
            if raw is None or not raw.strip():
                return "\n".join(lines)
            if not self.input.terminal:
                self._print(CONTINUATION + raw.rstrip())
            lines.append(raw.rstrip())

    def do(self, line: str) -> None:
        form = self.forms.get(self.current.id)
        words = shlex.split(line, posix=True) if line.count('"') % 2 == 0 else line.split()
        verb = words[0].lower()
        if form is not None and (verb.isdigit() or verb in ("submit", "cancel", "show")):
            self._fill(form, words)
        elif verb == "show" or (verb.isdigit() and form is None):
            raise ValueError("no form is open; `/invite` opens one")
        elif line.startswith("/"):
            self._command(line)
        elif verb == "as":
            self.current = self._user(words[1])
            self._print(f"  you are now @{self.current.name} ({self.current.email})")
        elif verb == "users":
            approvers = self.settings.invite_approvers
            for user in self.users.values():
                role = "approver" if user.id in approvers else "member"
                self._print(f"  @{user.name}  {user.id}  {user.email}  {role}")
        elif verb == "home":
            self._event({"type": "app_home_opened", "user": self.current.id, "tab": "home"})
        elif verb in VERBS.values() or verb == "click":
            self._click(verb, words[1:])
        elif verb == "help":
            self._print(HELP)
        else:
            raise ValueError(f"unknown command {verb!r}; type `help`")

    def _signed(self, body: str, content_type: str) -> BoltRequest:
        timestamp = str(int(time.time()))
        signature = self.verifier.generate_signature(timestamp=timestamp, body=body)
        headers = {
            "content-type": [content_type],
            "x-slack-request-timestamp": [timestamp],
            "x-slack-signature": [signature],
        }
        return BoltRequest(body=body, headers=headers)

    def _dispatch_form(self, fields: dict[str, str]) -> Any:
        return self.bot.app.dispatch(
            self._signed(urlencode(fields), "application/x-www-form-urlencoded")
        )

    def _interactive(self, payload: dict[str, Any]) -> Any:
        payload = {
            "token": "shell",
            "api_app_id": "ASHELL",
            "team": TEAM,
            "user": {"id": self.current.id, "username": self.current.name, "team_id": TEAM["id"]},
            **payload,
        }
        return self._dispatch_form({"payload": json.dumps(payload)})

    def _trigger(self) -> str:
        trigger = f"{time.time_ns()}.{secrets.token_hex(4)}"
        self.triggers[trigger] = self.current.id
        return trigger

    def _command(self, line: str) -> None:
        command, _, text = line.partition(" ")
        response = self._dispatch_form(
            {
                "token": "shell",
                "team_id": TEAM["id"],
                "team_domain": TEAM["domain"],
                "channel_id": GENERAL,
                "channel_name": "general",
                "user_id": self.current.id,
                "user_name": self.current.name,
                "command": command,
                "text": text,
                "api_app_id": "ASHELL",
                "response_url": "https://hooks.slack.invalid/commands/shell",
                "trigger_id": self._trigger(),
            }
        )
        self._show_response(response)

    def _show_response(self, response: Any) -> None:
        if response.status != 200:
            self._print(f"  (Slack would show an error: HTTP {response.status})")
            return
        if not response.body:
            return
        try:
            body = json.loads(response.body)
        except ValueError:
            body = {"text": response.body}
        if body.get("response_action") == "errors":
            for block_id, error in body.get("errors", {}).items():
                self._print(f"  ✗ {block_id}: {error}")
            return
        # The command's answer, as Slack shows it: an ephemeral in the channel (buttons work).
        self.web_api(
            "chat.postEphemeral",
            {
                "channel": GENERAL,
                "user": self.current.id,
                "text": body.get("text", ""),
                "blocks": body.get("blocks") or [],
            },
        )

    def _event(self, event: dict[str, Any]) -> None:
        body = {
            "token": "shell",
            "team_id": TEAM["id"],
            "api_app_id": "ASHELL",
            "type": "event_callback",
            "event_id": "Ev" + secrets.token_hex(5),
            "event_time": int(time.time()),
            "event": {**event, "channel": "D" + self.current.id, "event_ts": f"{time.time():.6f}"},
        }
        self.bot.app.dispatch(self._signed(json.dumps(body), "application/json"))

    def _click(self, verb: str, args: list[str]) -> None:
        address = re.fullmatch(r"(\d+)(?:\.(\d+))?", args[0]) if args else None
        if address is None:
            raise ValueError(f"which message? e.g. `{verb} 3` (or `{verb} 3.2`: its second row)")
        number, row = int(address[1]), int(address[2]) if address[2] else None
        message = next((m for m in self.messages if m.number == number), None)
        if message is None:
            raise ValueError(f"there is no message {number}")
        rows = [block for block in message.blocks if block.get("type") == "actions"]
        if row is not None and not 1 <= row <= len(rows):
            raise ValueError(f"message {number} has no row {row} of buttons")
        buttons = [
            (i, block, element)
            for i, block in enumerate(rows, start=1)
            if row in (None, i)
            for element in block.get("elements") or []
            if verb == "click" or VERBS.get(element.get("action_id", "")) == verb
        ]
        if not buttons:
            where = f"{number}.{row}" if row else f"{number}"
            raise ValueError(f"message {where} has no {verb} button")
        if len({i for i, _, _ in buttons}) > 1:  # never guess which request is meant
            which = " or ".join(
                f"`{verb} {number}.{i}`" for i in dict.fromkeys(i for i, _, _ in buttons)
            )
            raise ValueError(f"message {number} has several {verb} buttons: {which}")
        _, block, element = buttons[0]
        self._interactive(
            {
                "type": "block_actions",
                "trigger_id": self._trigger(),
                "container": {
                    "type": "message",
                    "message_ts": message.ts,
                    "channel_id": message.channel,
                    "is_ephemeral": message.to is not None,
                },
                "channel": {"id": message.channel, "name": CHANNEL_NAMES.get(message.channel, "")},
                "message": {"ts": message.ts, "text": message.text, "blocks": message.blocks},
                "response_url": "https://hooks.slack.invalid/actions/shell",
                "actions": [
                    {
                        "action_id": element["action_id"],
                        "block_id": block.get("block_id", ""),
                        "type": "button",
                        "value": element.get("value", ""),
                        "text": element.get("text"),
                        "action_ts": f"{time.time():.6f}",
                    }
                ],
            }
        )
        if verb == "deny" and len(args) > 1:  # the reason modal: fill it in and send it
            self.executor.wait_idle(timeout=30)
            form = self.forms.get(self.current.id)
            if form is not None and form.view.get("callback_id") == "deny_reason":
                self._fill(form, ["1", " ".join(args[1:])])
                self._fill(form, ["submit"])


def run_shell(
    lines: TextIO = sys.stdin, out: TextIO = sys.stdout, db_path: str | None = None
) -> int:
    try:
        shell = Shell(out=out, db_path=db_path)
    except KeyboardInterrupt:  # Ctrl-C while starting: leave quietly, as interrupted
        print(file=out)
        return 130
    shell.run(lines)
    return 0
