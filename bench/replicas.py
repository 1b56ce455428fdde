"""Replicas on one PostgreSQL store: approvals/s on 1, 2 and 3 replicas, exactly-once approvals
with the shared awork rate limit, and bulks spread over three replicas against the sandbox.

1. Throughput: for 1, 2 and 3 replicas, each on a fresh schema, `--requests` (300) requests
   are asked for through the form (spread over the replicas), then each is approved by one
   click, the clicks spread round-robin over the replicas, 24 at a time; awork is the test
   fake without a rate limit (and the bot's limiter is raised) so that the bot is what is
   measured. Approvals/s: requests / time from the first click to the last `POST
   /invitations`; also until Slack has had every call (updates, DMs); and the replicas' CPU
   per approval over that time.
2. Exactly once: 3 replicas, `--clicked` (200) requests, each approved by three concurrent
   clicks on random replicas (24 at a time): how many POSTs awork saw (must be one per
   request), the clicks' ack p50/p99, the most awork calls that arrived in any one second
   (the fake counts like a gateway; must be <= 50).
3. Bulk over 3 replicas: `--people` (500) in three bulk requests, each approved at a replica
   of its own, so that all three run at once and share awork's 50 calls/s through the
   store's limiter, against `invite-bot sandbox`: time to the last summary against the
   limit's bound (500 / 50 = 10 s), POSTs per replica, duplicates, 429s.
Run: .venv/bin/python bench/replicas.py [--requests 300] [--clicked 200] [--people 500]
     [--replicas 1,2,3]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import random
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ack_latency import percentile, timed_post
from bench.bulk_throughput import SandboxServer
from bench.hot_paths import settle
from bot.ui import bulk_blocks
from tests import serving
from tests.fakes.awork import FakeAwork
from tests.fakes.slack import FakeSlack
from tests.slack_requests import fixture, state_for

SECRET = "bench-signing-secret"
APPROVERS = ("UAPPROVER1", "UAPPROVER2")
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def scratch_schema() -> str:
    base = os.environ.get("INVITE_BENCH_DATABASE_URL", PG_DEFAULT)
    schema = f"bench_replicas_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{base}?options={quote(f'-c search_path={schema}')}"


def start_replicas(count: int, slack_url: str, awork_url: str, workdir: Path, **extra: str):
    env = serving.serve_env(
        slack_url, awork_url, str(workdir / "unused.sqlite"), SECRET, "xoxb-bench",
        ",".join(APPROVERS), **{"INVITE_SWEEP_SECONDS": "5", **extra},
        INVITE_DATABASE_URL=scratch_schema(),
    )  # fmt: skip
    ports = [serving.free_port() for _ in range(count)]
    return ports, serving.start_servers(env, ports, workdir, "replica")


def ask(ports: list[int], slack: FakeSlack, emails: list[str]) -> list[str]:
    """Each address asked for through the form, at the replicas in turn; the request ids."""
    with ThreadPoolExecutor(12) as pool:
        list(
            pool.map(
                lambda item: serving.post_signed(
                    ports[item[0] % len(ports)], serving.form_submission(item[1]), SECRET
                ),
                enumerate(emails),
            )
        )
    ids = [serving.approval_id_for(slack, email, timeout=60) for email in emails]
    settle(slack, 0, None, 0, 0.5)  # every approval message posted and stored
    return ids


def click_all(clicks: list[tuple[int, str, str]]) -> list[tuple[httpx.Response, float]]:
    """(port, request id, approver) clicks on Approve, 24 at a time."""
    with (
        httpx.Client(timeout=30, limits=httpx.Limits(max_connections=24)) as client,
        ThreadPoolExecutor(24) as pool,
    ):
        return list(
            pool.map(
                lambda c: timed_post(
                    client, c[0], serving.button_click("approve_invite", c[1], c[2])
                ),
                clicks,
            )
        )


def wait_invited(awork: FakeAwork, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(awork.invitations) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def throughput(replicas: int, requests: int) -> dict[str, object]:
    """Approvals/s with `replicas` replicas: one click per request, spread round-robin."""
    workdir = Path(tempfile.mkdtemp(prefix=f"invite-throughput-{replicas}-"))
    slack, awork = FakeSlack(), FakeAwork()
    awork_url, awork_server = awork.serve()
    ports, processes = start_replicas(
        replicas, slack.url, awork_url, workdir,
        AWORK_RATE_PER_SECOND="100000", AWORK_RATE_PER_MINUTE="1000000",
    )  # fmt: skip
    try:
        ids = ask(ports, slack, [f"tp{replicas}-{i:04d}@example.com" for i in range(requests)])
        since = len(slack.calls)
        cpu_before = cpu_seconds(processes)
        started = time.monotonic()
        results = click_all(
            [(ports[i % replicas], rid, APPROVERS[i % 2]) for i, rid in enumerate(ids)]
        )
        wait_invited(awork, requests)
        with awork._lock:
            posts = [
                at
                for request, at in zip(awork.requests, awork.arrivals, strict=True)
                if request.method == "POST" and request.url.path.endswith("/invitations")
            ]
        slack_done = settle(slack, since, None, 0, 1.0)
        cpu = cpu_seconds(processes) - cpu_before
    finally:
        for process in processes:
            serving.stop_server(process)
        awork_server.shutdown()
        slack.close()
    invited = max(posts) - started
    acks = [ms for _, ms in results]
    return {
        "replicas": replicas,
        "requests": requests,
        "acked_200": sum(1 for r, _ in results if r.status_code == 200),
        "posts": len(posts),
        "click_ack_p50_ms": round(statistics.median(acks), 1),
        "click_ack_p99_ms": round(percentile(acks, 99), 1),
        "seconds_to_all_invited": round(invited, 2),
        "approvals_per_second": round(requests / invited, 1),
        "seconds_to_slack_done": round(slack_done - started, 2),
        "approvals_per_second_slack_done": round(requests / (slack_done - started), 1),
        # The replicas' CPU from the first click until Slack was quiet for a second, per click.
        "cpu_ms_per_approval": round(cpu / requests * 1000, 1),
    }


def cpu_seconds(processes: list) -> float:
    """CPU time the processes have used so far (user and system; Linux's /proc)."""
    total = 0
    for process in processes:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def exactly_once(requests: int, replicas: int = 3) -> dict[str, object]:
    """Three concurrent clicks per request on random replicas, awork limited to 50/s."""
    workdir = Path(tempfile.mkdtemp(prefix="invite-replicas-"))
    slack, awork = FakeSlack(), FakeAwork()
    awork.rate_limit = (50, 1000)
    awork_url, awork_server = awork.serve()
    ports, processes = start_replicas(replicas, slack.url, awork_url, workdir)
    try:
        ids = ask(ports, slack, [f"rep{i:04d}@example.com" for i in range(requests)])
        rng = random.Random(11)
        clicks = [(rng.choice(ports), rid, rng.choice(APPROVERS)) for rid in ids for _ in range(3)]
        rng.shuffle(clicks)
        awork.arrivals.clear()
        started = time.monotonic()
        results = click_all(clicks)
        wait_invited(awork, requests)
        time.sleep(2)  # anything late would show as a duplicate
        seconds = time.monotonic() - started - 2
        posts = collections.Counter(
            json.loads(r.content)["email"] for r in awork.calls("POST", "/invitations")
        )
    finally:
        for process in processes:
            serving.stop_server(process)
        awork_server.shutdown()
        slack.close()
    acks = [ms for _, ms in results]
    return {
        "replicas": replicas,
        "requests": requests,
        "clicks": len(clicks),
        "acked_200": sum(1 for r, _ in results if r.status_code == 200),
        "posts": sum(posts.values()),
        "people_invited": len(posts),
        "duplicates": sum(n - 1 for n in posts.values()),
        "click_ack_p50_ms": round(statistics.median(acks), 1),
        "click_ack_p99_ms": round(percentile(acks, 99), 1),
        "most_awork_calls_in_one_second": serving.busiest_second(awork.arrivals),
        "awork_429s": awork.rate_limited,
        "seconds_to_all_invited": round(seconds, 1),
    }


def bulk_submission(first: int, count: int) -> str:
    """The bulk form with people `first` .. `first + count - 1` in its list field."""
    content = "email,first name,last name\n" + "".join(
        f"person{i:04d}@example.com,Person,{i:04d}\n" for i in range(first, first + count)
    )
    view = bulk_blocks.bulk_form("CGENERAL")
    payload = fixture("view_submission_real_capture_slack_machine.json")["payload"]
    payload["user"]["id"] = "UREQ"
    payload["view"] = {
        **payload["view"],
        **view,
        "state": {"values": state_for(view, {bulk_blocks.PEOPLE: content})},
    }
    return serving.interactive(payload)


def spread_bulk(people: int, replicas: int = 3, per_second: int = 50) -> dict[str, object]:
    """`people` in `replicas` bulk requests, each approved at its own replica, all at once."""
    workdir = Path(tempfile.mkdtemp(prefix="invite-spread-"))
    slack = FakeSlack()
    sandbox = SandboxServer(workdir, per_second)
    processes = []
    sizes = [people // replicas + (k < people % replicas) for k in range(replicas)]
    try:
        ports, processes = start_replicas(
            replicas, slack.url, sandbox.url, workdir,
            INVITE_SWEEP_SECONDS="3600", AWORK_RATE_PER_SECOND=str(per_second),
        )  # fmt: skip
        batches = []  # (batch id, size), in the order their approval messages were posted
        for k, size in enumerate(sizes):
            response = serving.post_signed(ports[k], bulk_submission(sum(sizes[:k]), size), SECRET)
            assert response.status_code == 200 and not response.text, response.text
            posts = slack.wait_for(
                "chat.postMessage",
                k + 1,
                timeout=30,
                where=lambda c: c.args["channel"] == "CADMIN" and "people" in c.args["text"],
            )
            actions = next(b for b in posts[k].args["blocks"] if b["type"] == "actions")
            batches.append((actions["elements"][0]["value"], size))
        settle(slack, 0, None, 0, 0.5)
        # The ts Slack gave each approval message, in the order they were posted.
        ts = [m["ts"] for m in slack.in_channel("CADMIN") if "people" in m["text"]]
        started = time.monotonic()
        with ThreadPoolExecutor(replicas) as pool:
            clicked = list(
                pool.map(
                    lambda k: serving.post_signed(
                        ports[k],
                        serving.button_click("approve_invite", batches[k][0], APPROVERS[0]),
                        SECRET,
                    ),
                    range(replicas),
                )
            )
        assert all(r.status_code == 200 for r in clicked)
        finished: dict[int, float] = {}
        while len(finished) < replicas and time.monotonic() - started < 600:
            time.sleep(0.05)
            for call in slack.of("chat.update"):
                for k, (_, size) in enumerate(batches):
                    if call.args.get("ts") == ts[k] and (
                        f"{size} invited" in json.dumps(call.args.get("blocks") or [])
                    ):
                        finished.setdefault(k, call.at)
        assert len(finished) == replicas, f"summaries: {len(finished)} of {replicas}"
        invited = collections.Counter(e for e in sandbox.members() if e.startswith("person"))
    finally:
        for process in processes:
            serving.stop_server(process)
        sandbox.close()
        slack.close()
    logs = [(workdir / f"replica-{port}.log").read_text() for port in ports]
    seconds = max(finished.values()) - started
    bound = people / per_second
    return {
        "replicas": replicas,
        "people": people,
        "batches": sizes,
        "seconds": round(seconds, 2),
        "bound_seconds": bound,
        "ratio_to_bound": round(seconds / bound, 2),
        "posts_per_replica": [
            sum(1 for line in log.splitlines() if "POST http" in line and "/invitations" in line)
            for log in logs
        ],
        "invited": len(invited),
        "duplicates": sum(n - 1 for n in invited.values()),
        "lost": people - len(invited),
        "answered_429": sum(log.count(": 429, retrying") for log in logs),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300, help="per throughput run")
    parser.add_argument("--clicked", type=int, default=200, help="exactly-once: requests")
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--replicas", default="1,2,3", help="throughput runs")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    runs = [throughput(int(n), args.requests) for n in args.replicas.split(",")]
    one = runs[0]["approvals_per_second"]
    for run in runs:
        run["speed_up"] = round(run["approvals_per_second"] / one, 2)
    print(json.dumps(runs, indent=2))
    clicks = exactly_once(args.clicked)
    print(json.dumps(clicks, indent=2))
    bulk = spread_bulk(args.people)
    print(json.dumps(bulk, indent=2))
    met = (
        all(run["posts"] == args.requests for run in runs)
        and clicks["posts"] == args.clicked
        and clicks["most_awork_calls_in_one_second"] <= 50
        and bulk["ratio_to_bound"] <= 1.05
        and bulk["answered_429"] == 0
        and bulk["duplicates"] == 0
        and bulk["lost"] == 0
    )
    print(
        "targets (one POST per request, <= 50 calls/s, bulk within 1.05x of the bound, no 429):",
        "met" if met else "NOT met",
    )


if __name__ == "__main__":
    main()
