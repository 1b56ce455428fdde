"""A loopback stand-in for the Slack Web API, recording calls (like Bolt's scenario tests' mock).

Point `SLACK_API_URL` (or `WebClient(base_url=...)`) at `url`. Answers follow Slack's documented
shapes for the methods the bot uses; `members` maps emails to Slack user ids for
users.lookupByEmail, `errors` makes a method fail with a Slack error, `refused` makes it fail
for one user or channel only (conversations.open's `users`, chat.*'s `channel`, users.info's
`user`), and `ephemeral_blocked` lists channels where the bot cannot post ephemerals. Every
answer carries the granted `scopes` in `x-oauth-scopes` (manifest.yml's, unless changed);
conversations.info and users.info answer for any id, with `channels` / `people` overriding fields.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlparse

from bot.awork.sandbox_http import Backlogged
from bot.cli.manifest import bot_scopes


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    at: float = 0.0  # when it arrived, on the fake's `clock`


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.members: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.refused: dict[tuple[str, str], str] = {}  # (method, user or channel) -> error
        self.ephemeral_blocked: set[str] = set()
        self.throttle: dict[str, int] = {}  # method -> how many HTTP 429s to answer first
        self.throttled = 0
        self.groups: dict[str, list[str]] = {}  # user group id -> member ids
        self.delay = 0.0  # seconds every Web API answer takes
        self.clock = time.monotonic  # what each call's `at` is read from
        self.socket_url: str | None = None  # apps.connections.open answer (Socket Mode)
        self.scopes: list[str] | None = bot_scopes()  # granted, as Slack says in x-oauth-scopes
        self.channels: dict[str, dict[str, Any]] = {}  # conversations.info fields by channel id
        self.people: dict[str, dict[str, Any]] = {}  # users.info fields by user id
        self._ts = itertools.count(1)
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                parsed = urlparse(self.path)
                method = parsed.path.rsplit("/", 1)[-1]
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                args: dict[str, Any] = dict(parse_qsl(parsed.query))
                if "json" in (self.headers.get("Content-Type") or ""):
                    args.update(json.loads(raw or "{}"))
                else:
                    args.update(parse_qsl(raw))
                for key in ("blocks", "view"):
                    if isinstance(args.get(key), str):
                        args[key] = json.loads(args[key])
                if fake.throttle.get(method):
                    fake.throttle[method] -= 1
                    fake.throttled += 1
                    self.send_response(429)
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps(fake.answer(method, args)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if fake.scopes is not None:  # None: a token Slack names no scopes for
                    self.send_header("x-oauth-scopes", ",".join(fake.scopes))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = Backlogged(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- answers ---------------------------------------------------------------------------

    def answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.calls.append(Call(method, args, self.clock()))
        if self.delay:
            time.sleep(self.delay)
        if method in self.errors:
            return {"ok": False, "error": self.errors[method]}
        target = str(args.get("users") or args.get("channel") or args.get("user") or "")
        if (method, target) in self.refused:
            return {"ok": False, "error": self.refused[(method, target)]}
        if method == "apps.connections.open":
            if not self.socket_url:
                return {"ok": False, "error": "not_allowed_token_type"}
            return {"ok": True, "url": self.socket_url}
        if method == "usergroups.users.list":
            group = self.groups.get(str(args.get("usergroup")))
            return (
                {"ok": True, "users": group}
                if group is not None
                else {"ok": False, "error": "no_such_subteam"}
            )
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://example.slack.com/",
                "team": "Example",
                "user": "invitebot",
                "team_id": "T111",
                "user_id": "UBOT",
                "bot_id": "BBOT",
            }
        if method == "conversations.info":
            channel = str(args.get("channel"))
            return {
                "ok": True,
                "channel": {
                    "id": channel,
                    "name": channel.lower(),
                    "is_channel": True,
                    "is_private": False,
                    "is_archived": False,
                    "is_member": True,
                    **self.channels.get(channel, {}),
                },
            }
        if method == "users.info":
            user = str(args.get("user"))
            fields = {"id": user, "name": user.lower(), "deleted": False, "is_bot": False}
            return {"ok": True, "user": {**fields, **self.people.get(user, {})}}
        if method in ("views.open", "views.update", "views.push", "views.publish"):
            return {"ok": True, "view": {"id": "V" + str(next(self._ts)), **args.get("view", {})}}
        if method == "chat.postMessage":
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            return {
                "ok": True,
                "channel": args["channel"],
                "ts": ts,
                "message": {"text": args.get("text"), "ts": ts},
            }
        if method == "chat.update":
            return {
                "ok": True,
                "channel": args["channel"],
                "ts": args["ts"],
                "text": args.get("text"),
            }
        if method == "chat.postEphemeral":
            if args.get("channel") in self.ephemeral_blocked:
                return {"ok": False, "error": "channel_not_found"}
            return {"ok": True, "message_ts": f"{int(time.time())}.{next(self._ts):06d}"}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(args.get("users"))}}
        if method == "users.list":  # paged by `limit` and `cursor`, like Slack's
            everyone = sorted(self.members.items())
            start = int(args.get("cursor") or 0)
            limit = int(args.get("limit") or 200)
            page = everyone[start : start + limit]
            more = start + limit < len(everyone)
            return {
                "ok": True,
                "members": [
                    {"id": uid, "deleted": False, "is_bot": False, "profile": {"email": email}}
                    for email, uid in page
                ],
                "response_metadata": {"next_cursor": str(start + limit) if more else ""},
            }
        if method == "users.lookupByEmail":
            user_id = self.members.get(str(args.get("email", "")).lower())
            if user_id is None:
                return {"ok": False, "error": "users_not_found"}
            return {
                "ok": True,
                "user": {"id": user_id, "name": user_id.lower(), "deleted": False, "is_bot": False},
            }
        return {"ok": False, "error": "unknown_method"}

    # -- inspection ------------------------------------------------------------------------

    def of(self, method: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0, where=None) -> list[Call]:
        """Wait until `count` calls of `method` (matching `where`) were made; return them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.of(method) if where is None or where(c)]
            if len(found) >= count or time.monotonic() > deadline:
                assert len(found) >= count, (
                    f"expected {count} {method} calls, got {len(found)}: {self.calls}"
                )
                return found
            time.sleep(0.01)

    def texts(self) -> str:
        """Everything the bot sent to Slack, as one string, for leak checks."""
        with self._lock:
            return json.dumps([call.args for call in self.calls])
