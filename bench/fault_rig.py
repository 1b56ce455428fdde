"""The rig bench/faults.py runs each fault on: a fresh schema in the bench database, a fake
Slack, a fake awork, Slack's response URLs on loopback, and one real `invite-bot serve --http`
process on a short lease and settle window - with the helpers that ask, click and wait."""

from __future__ import annotations

import itertools
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, quote

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.domain.records import InviteRequest, Status
from bot.store.postgres import PostgresStore
from bot.ui import answers
from bot.ui.copies import has_buttons
from tests import serving
from tests.fakes.awork import FakeAwork
from tests.fakes.response_urls import ResponseUrls
from tests.fakes.slack import FakeSlack
from tests.fakes.tcp_proxy import TcpProxy

SECRET = "bench-signing-secret"
APPROVERS = ("UAPPROVER1", "UAPPROVER2")
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
SETTLE_SECONDS = 4
ENV = {
    "INVITE_SWEEP_SECONDS": "1",
    "AWORK_TIMEOUT": "1",
    "INVITE_LEASE_MARGIN": "1",
    "INVITE_SETTLE_SECONDS": str(SETTLE_SECONDS),
}
WORKDIR = Path(tempfile.mkdtemp(prefix="invite-faults-"))


def with_params(url: str, **params: str) -> str:
    query = "&".join(f"{key}={quote(value)}" for key, value in params.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"


class Rig:
    """One fault's world: a fresh schema, the fakes, one `serve --http` process, and the
    store read directly (never through the fault) to count statuses."""

    def __init__(self, name: str, proxied: bool = False, **env: str) -> None:
        self.base = os.environ.get("INVITE_BENCH_DATABASE_URL", PG_DEFAULT)
        self.schema = f"bench_faults_{name}_{secrets.token_hex(3)}"
        with psycopg.connect(self.base, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {self.schema}")
        self.url = with_params(self.base, options=f"-c search_path={self.schema}")
        self.app_name = f"invite-bench-{self.schema}"
        bot_url = with_params(self.url, application_name=self.app_name)
        self.proxy: TcpProxy | None = None
        if proxied:
            self.proxy, bot_url = TcpProxy.route(bot_url)
        self.slack, self.awork, self.hooks = FakeSlack(), FakeAwork(), ResponseUrls()
        awork_url, self.awork_server = self.awork.serve()
        self.port = serving.free_port()
        self.process = serving.start_server(
            serving.serve_env(
                self.slack.url,
                awork_url,
                str(WORKDIR / "unused.sqlite"),
                SECRET,
                "xoxb-bench",
                ",".join(APPROVERS),
                INVITE_DATABASE_URL=bot_url,
                **{**ENV, **env},
            ),
            self.port,
            WORKDIR / f"{name}.log",
        )
        self.store = PostgresStore(with_params(self.url, application_name="invite-bench-reader"))
        self.client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=16))
        self.acks: list[float] = []
        self.clicks: Counter[str] = Counter()
        self._lock = threading.Lock()

    def close(self) -> None:
        serving.stop_server(self.process)
        self.client.close()
        self.store.close()
        if self.proxy is not None:
            self.proxy.close()
        self.awork_server.shutdown()
        self.slack.close()
        self.hooks.close()
        with psycopg.connect(self.base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {self.schema} CASCADE")

    # -- what Slack sends --------------------------------------------------------------------

    def send(self, body: str) -> httpx.Response | None:
        """A signed request to the server, its ack timed; None if it never answered."""
        started = time.monotonic()
        try:
            response = serving.post_signed(self.port, body, SECRET, self.client)
        except httpx.HTTPError:
            response = None
        with self._lock:
            self.acks.append((time.monotonic() - started) * 1000)
        return response

    def ask(
        self, emails: list[str], users: list[str] | None = None, timeout: float = 30
    ) -> list[str]:
        """One form per address (from `users`, else UREQ); the request ids once each approval
        message is stored (within `timeout` s)."""
        users = users or ["UREQ"] * len(emails)
        with ThreadPoolExecutor(4) as pool:
            pool.map(
                lambda pair: self.send(serving.form_submission(pair[0], user=pair[1])),
                zip(emails, users, strict=True),
            )
        ids = [serving.approval_id_for(self.slack, email, timeout=timeout) for email in emails]
        for request_id in ids:
            serving.wait_for_approval_message(self.store, request_id, timeout=timeout)
        return ids

    def click(self, request_id: str) -> None:
        """Approve, as an approver clicking on the approval message; the answer to this click
        goes to a response URL of its own."""
        body = serving.button_click("approve_invite", request_id, APPROVERS[0])
        payload = json.loads(parse_qs(body)["payload"][0])
        payload["response_url"] = f"{self.hooks.url}/{request_id}"
        with self._lock:
            self.clicks[request_id] += 1
        self.send(serving.interactive(payload))

    def told(self, request_id: str) -> int:
        """How often this request's clickers heard "click again"."""
        return sum(
            path.endswith(f"/{request_id}") and answer.get("text") == answers.CLICK_AGAIN
            for path, answer in zip(list(self.hooks.paths), list(self.hooks.answers), strict=False)
        )

    # -- what came of it -----------------------------------------------------------------------

    def lost(self, ids: list[str]) -> int:
        """Requests clicked and still pending whose last click nobody was told about."""
        return sum(
            r.status is Status.PENDING and self.clicks[r.id] > self.told(r.id)
            for r in self.requests(ids)
        )

    def requests(self, ids: list[str]) -> list[InviteRequest]:
        return [r for r in self.store.read_many(ids) if r is not None]

    def unsettled(self, ids: list[str]) -> list[str]:
        settled = {r.id for r in self.requests(ids) if r.settled}
        return [rid for rid in ids if rid not in settled]

    def posts(self) -> Counter[str]:
        return Counter(
            json.loads(r.content)["email"] for r in self.awork.calls("POST", "/invitations")
        )

    def kept(self) -> list[tuple[str, str, bool]]:
        """(record id, kind, has buttons) of each message Slack keeps that the bot posted for
        a request, retired copies too."""
        found = []
        for channel in list(self.slack.messages):
            for message in self.slack.in_channel(channel):
                payload = (message.get("metadata") or {}).get("event_payload") or {}
                if payload.get("id"):
                    found.append(
                        (payload["id"], payload.get("kind"), has_buttons(message["blocks"]))
                    )
        return found

    def live_approvals(self) -> Counter[str]:
        """Approval messages with buttons, per request."""
        return Counter(rid for rid, kind, live in self.kept() if kind == "approval" and live)

    def row(self, fault: str, before: str, ids: list[str], settled_in: float | None, **more):
        posts, live = self.posts(), self.live_approvals()
        copies = Counter((rid, kind) for rid, kind, _ in self.kept())
        return {
            "fault": fault,
            "people": len(ids),
            "posts": sum(posts.values()),
            "duplicate_posts": sum(n - 1 for n in posts.values()),
            # Live copies beyond one per request still pending (none once decided).
            "duplicate_live_messages": sum(
                max(0, live[r.id] - (r.status is Status.PENDING)) for r in self.requests(ids)
            ),
            "stuck": len(self.unsettled(ids)),
            "settled_in_s": None if settled_in is None else round(settled_in, 1),
            "max_ack_ms": round(max(self.acks, default=0.0)),
            # Any message the bot posted twice for one record and purpose (DMs, notices too).
            "extra_slack_copies": sum(n - 1 for n in copies.values()),
            "doubled": dict(Counter(kind for (_, kind), n in copies.items() for _ in range(n - 1))),
            "before": before,
            **more,
        }


def wait_until(check: Callable[[], bool], timeout: float, since: float | None = None):
    """Seconds from `since` (now) until `check()` held; None if not within `timeout`."""
    since = time.monotonic() if since is None else since
    while time.monotonic() - since < timeout:
        if check():
            return time.monotonic() - since
        time.sleep(0.2)
    return None


def approve(rig: Rig, ids: list[str], pace: float = 0.0, between=None, timeout: float = 90):
    """Approve each request once, `pace` s apart, 8 clicks in flight, `between(n)` after the
    n-th ack; then click again, 2 s after hearing "click again", as a person would, until
    every request settled. Returns (seconds until settled or None, clicks made again, lost):
    lost are requests still pending whose last click was acked and nobody was told."""
    started, acked = time.monotonic(), itertools.count(1)

    def click(request_id: str) -> None:
        rig.click(request_id)
        n = next(acked)
        if between is not None:
            between(n)

    with ThreadPoolExecutor(8) as pool:
        for i, request_id in enumerate(ids):
            time.sleep(max(0.0, started + i * pace - time.monotonic()))
            pool.submit(click, request_id)
    heard: dict[str, float] = {}
    again = 0

    def done() -> bool:
        nonlocal again
        left = rig.unsettled(ids)
        for request in rig.requests(left):
            if (
                request.status is not Status.PENDING
                or rig.told(request.id) < rig.clicks[request.id]
            ):
                heard.pop(request.id, None)
                continue  # decided, or not told (yet): nothing a person would do
            if time.monotonic() - heard.setdefault(request.id, time.monotonic()) >= 2.0:
                del heard[request.id]
                again += 1
                rig.click(request.id)
        return not left

    return wait_until(done, timeout, since=started), again, rig.lost(ids)


# --- the database -------------------------------------------------------------------------------


def busy(response: httpx.Response) -> bool:
    """Whether Slack would show the person "the bot is busy - not stored" (a command's text,
    a form's field error)."""
    try:
        return answers.BUSY in json.dumps(response.json(), ensure_ascii=False)
    except ValueError:
        return False  # an empty ack: the usual answer


def said(rig: Rig, ids: list[str], words: str) -> int:
    """How many of the requests' approval messages said `words` at some point."""
    updates = [json.dumps(c.args) for c in rig.slack.of("chat.update")]
    return sum(any(rid in u and words in u for u in updates) for rid in ids)


def table(rows: list[dict]) -> str:
    lines = [
        "| fault | people | POSTs | duplicates (POSTs / live approval msgs / Slack copies)"
        " | lost | stuck"
        " | settled in | max ack | before (issue 17) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        settled = "—" if r["settled_in_s"] is None else f"{r['settled_in_s']} s"
        lines.append(
            f"| {r['fault']} | {r['people']} | {r['posts']} | {r['duplicate_posts']} /"
            f" {r['duplicate_live_messages']} / {r['extra_slack_copies']}"
            f" | {r['lost']} | {r['stuck']} | {settled}"
            f" | {r['max_ack_ms']} ms | {r['before']} |"
        )
    return "\n".join(lines)
