"""A loopback stand-in for the Slack Web API, recording calls (like Bolt's scenario tests' mock).

Point `SLACK_API_URL` (or `WebClient(base_url=...)`) at `url`. Answers follow Slack's documented
shapes for the methods the bot uses; `members` maps emails to Slack user ids for
users.lookupByEmail, `errors` makes a method fail with a Slack error, `refused` makes it fail
for one user or channel only (conversations.open's `users`, chat.*'s `channel`, users.info's
`user`), and `ephemeral_blocked` lists channels where the bot cannot post ephemerals. Every
answer carries the granted `scopes` in `x-oauth-scopes` (manifest.yml's, unless changed);
conversations.info and users.info answer for any id, with `channels` / `people` overriding fields.

Messages the bot posts are kept per channel (`messages`), with their metadata, as Slack keeps
them: chat.update changes them (its `metadata` replaces theirs, `{}` removes it, none keeps it),
chat.delete removes them, and conversations.history / conversations.replies read them back as
Slack documents - newest first (a thread oldest first), `oldest` and `latest` exclusive unless
`inclusive`, `limit` 100 by default and at most 999, an opaque `next_cursor` while `has_more`,
metadata only with `include_all_metadata`, and `missing_scope` unless the token has
channels:history (groups:history for a private channel, im:history for a DM). `mishap` makes the
next calls of a method go wrong after Slack carried them out: an answer later than the client
waits (`late`, seconds), or an HTTP error status (`status`) - Slack did it, the client does not
know.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import ssl
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
    token: str = ""  # the bearer token it came with


class FakeSlack:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        """Serving at `url` over http, or over https with `tls` (a server context)."""
        self.calls: list[Call] = []
        self.members: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.refused: dict[tuple[str, str], str] = {}  # (method, user or channel) -> error
        self.dm_ids: dict[str, str] = {}  # user -> the DM channel opened for them, if not D<user>
        self.ephemeral_blocked: set[str] = set()
        self.throttle: dict[str, int] = {}  # method -> how many HTTP 429s to answer first
        self.throttled = 0
        self.retry_after = "1"  # the Retry-After of those 429s, in whole seconds as Slack sends it
        self.groups: dict[str, list[str]] = {}  # user group id -> member ids
        self.delay = 0.0  # seconds every Web API answer takes
        self.clock = time.monotonic  # what each call's `at` is read from
        self.socket_url: str | None = None  # apps.connections.open answer (Socket Mode)
        self.scopes: list[str] | None = bot_scopes()  # granted, as Slack says in x-oauth-scopes
        self.channels: dict[str, dict[str, Any]] = {}  # conversations.info fields by channel id
        self.people: dict[str, dict[str, Any]] = {}  # users.info fields by user id
        self.refused_tokens: dict[str, str] = {}  # token -> the error Slack answers it with
        self._ts = itertools.count(1)
        self._last_ts = 0.0
        self._lock = threading.Lock()
        # Messages posted, by channel, oldest first (a thread's replies too).
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.mishaps: dict[str, list[tuple[str, float]]] = {}  # method -> what goes wrong next
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
                for key in ("blocks", "view", "metadata", "outputs"):
                    if isinstance(args.get(key), str):
                        args[key] = json.loads(args[key])
                if fake.throttle.get(method):
                    fake.throttle[method] -= 1
                    fake.throttled += 1
                    self.send_response(429)
                    self.send_header("Retry-After", fake.retry_after)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                answer = fake.answer(method, args, token)
                status = 200
                mishap = fake._next_mishap(method)
                if mishap is not None and mishap[0] == "late":
                    time.sleep(mishap[1])  # carried out; the client has given up by now
                elif mishap is not None:
                    status, answer = int(mishap[1]), {"ok": False, "error": "internal_error"}
                body = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    if fake.scopes is not None:  # None: a token Slack names no scopes for
                        self.send_header("x-oauth-scopes", ",".join(fake.scopes))
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client stopped waiting for a late answer
                    pass

            do_GET = do_POST = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = Backlogged(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/api/"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.005}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def mishap(
        self, method: str, *, late: float | None = None, status: int | None = None, times: int = 1
    ) -> None:
        """The next `times` calls of `method` are carried out, then answered `late` seconds
        later (after the client's timeout) or with the HTTP error `status`."""
        what = ("late", float(late)) if late is not None else ("status", float(status or 500))
        with self._lock:
            self.mishaps.setdefault(method, []).extend([what] * times)

    def _next_mishap(self, method: str) -> tuple[str, float] | None:
        with self._lock:
            queued = self.mishaps.get(method)
            return queued.pop(0) if queued else None

    # -- answers ---------------------------------------------------------------------------

    def answer(self, method: str, args: dict[str, Any], token: str = "") -> dict[str, Any]:
        with self._lock:
            self.calls.append(Call(method, args, self.clock(), token))
        if token in self.refused_tokens:
            return {"ok": False, "error": self.refused_tokens[token]}
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
            if truthy(args.get("include_locale")):  # Slack gives it only when asked
                fields["locale"] = "en-US"
            return {"ok": True, "user": {**fields, **self.people.get(user, {})}}
        if method in ("views.open", "views.update", "views.push", "views.publish"):
            return {"ok": True, "view": {"id": "V" + str(next(self._ts)), **args.get("view", {})}}
        if method == "chat.postMessage":
            message = self._keep(args)
            shown = {k: v for k, v in message.items() if k != "metadata"}
            return {"ok": True, "channel": args["channel"], "ts": message["ts"], "message": shown}
        if method == "chat.update":
            # A ts the bot never posted here is answered as before (tests click on messages
            # they made up); one it posted changes as Slack changes it.
            with self._lock:
                for message in self.messages.get(str(args["channel"]), []):
                    if message["ts"] == args["ts"]:
                        message.update(text=args.get("text"), blocks=args.get("blocks") or [])
                        if args.get("metadata") == {}:
                            message.pop("metadata", None)
                        elif args.get("metadata"):
                            message["metadata"] = args["metadata"]
            return {
                "ok": True,
                "channel": args["channel"],
                "ts": args["ts"],
                "text": args.get("text"),
            }
        if method == "chat.delete":
            with self._lock:
                kept = self.messages.get(str(args["channel"]), [])
                self.messages[str(args["channel"])] = [m for m in kept if m["ts"] != args["ts"]]
            return {"ok": True, "channel": args["channel"], "ts": args["ts"]}
        if method in ("conversations.history", "conversations.replies"):
            return self._read(method, args)
        if method == "chat.postEphemeral":
            if args.get("channel") in self.ephemeral_blocked:
                return {"ok": False, "error": "channel_not_found"}
            return {"ok": True, "message_ts": f"{int(time.time())}.{next(self._ts):06d}"}
        if method == "conversations.open":
            user = str(args.get("users"))
            return {"ok": True, "channel": {"id": self.dm_ids.get(user, "D" + user)}}
        if method == "users.list":  # paged by `limit` and `cursor`, like Slack's
            everyone = sorted(self.members.items())
            start = int(args.get("cursor") or 0)
            limit = int(args.get("limit") or 200)
            page = everyone[start : start + limit]
            more = start + limit < len(everyone)
            # Profiles carry an email only with users:read.email, as Slack documents.
            shown = self.scopes is None or "users:read.email" in self.scopes
            return {
                "ok": True,
                "members": [
                    {
                        "id": uid,
                        "deleted": False,
                        "is_bot": False,
                        "profile": {"email": email} if shown else {},
                    }
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
        if method in ("functions.completeSuccess", "functions.completeError"):
            return {"ok": True}  # a Workflow Builder step run completed
        return {"ok": False, "error": "unknown_method"}

    # -- the messages Slack keeps ------------------------------------------------------------

    def _new_ts(self) -> str:
        """A message ts as Slack makes them: the time, unique and rising within the fake."""
        with self._lock:
            self._last_ts = max(time.time(), self._last_ts + 0.000001)
            return f"{self._last_ts:.6f}"

    def _keep(self, args: dict[str, Any]) -> dict[str, Any]:
        ts = self._new_ts()
        message: dict[str, Any] = {
            "type": "message",
            "user": "UBOT",
            "bot_id": "BBOT",
            "app_id": "AINVITEBOT",
            "text": args.get("text") or "",
            "blocks": args.get("blocks") or [],
            "ts": ts,
        }
        if args.get("metadata"):
            message["metadata"] = args["metadata"]
        thread = args.get("thread_ts")
        with self._lock:
            kept = self.messages.setdefault(str(args["channel"]), [])
            if thread:
                message["thread_ts"] = thread
                for parent in kept:
                    if parent["ts"] == thread:
                        parent["thread_ts"] = thread
                        parent["reply_count"] = parent.get("reply_count", 0) + 1
            kept.append(message)
        return message

    def _read(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """conversations.history (newest first, no thread replies) or conversations.replies
        (the thread's parent and replies, oldest first), as Slack documents them."""
        channel = str(args.get("channel") or "")
        private = self.channels.get(channel, {}).get("is_private", channel.startswith("G"))
        needed = (
            "im:history"
            if channel.startswith("D")
            else "groups:history"
            if private
            else "channels:history"
        )
        if self.scopes is not None and needed not in self.scopes:
            return {
                "ok": False,
                "error": "missing_scope",
                "needed": needed,
                "provided": ",".join(self.scopes),
            }
        with self._lock:
            kept = copy.deepcopy(self.messages.get(channel, []))
        if method == "conversations.replies":
            parent = str(args.get("ts") or "")
            if not any(m["ts"] == parent for m in kept):
                return {"ok": False, "error": "thread_not_found"}
            chosen = [m for m in kept if m["ts"] == parent or m.get("thread_ts") == parent]
        else:
            chosen = [m for m in kept if m.get("thread_ts", m["ts"]) == m["ts"]][::-1]
        inclusive = truthy(args.get("inclusive"))
        oldest = float(args.get("oldest") or 0)
        latest = float(args.get("latest") or time.time() + 1)

        def within(message: dict[str, Any]) -> bool:
            ts = float(message["ts"])
            if inclusive:
                return oldest <= ts <= latest
            return oldest < ts < latest

        chosen = [m for m in chosen if within(m)]
        if not truthy(args.get("include_all_metadata")):
            for message in chosen:
                message.pop("metadata", None)
        start = (
            int(base64.b64decode(args["cursor"]).decode().split(":", 1)[1])
            if args.get("cursor")
            else 0
        )
        limit = min(max(int(args.get("limit") or 100), 1), 999)
        page = chosen[start : start + limit]
        more = start + limit < len(chosen)
        after = base64.b64encode(f"next:{start + limit}".encode()).decode() if more else ""
        return {
            "ok": True,
            "messages": page,
            "has_more": more,
            "pin_count": 0,
            "response_metadata": {"next_cursor": after},
        }

    def in_channel(self, channel: str) -> list[dict[str, Any]]:
        """The messages Slack shows in `channel` now, oldest first (threads' replies too)."""
        with self._lock:
            return copy.deepcopy(self.messages.get(channel, []))

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


def truthy(value: Any) -> bool:
    """A Web API boolean as sent: JSON true, or "1"/"true" in a form or query string."""
    return value is True or str(value).lower() in ("1", "true")
