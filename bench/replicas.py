"""Three replicas on one PostgreSQL store: exactly-once approvals, ack under contention, the
shared awork rate limit, and a 500-person bulk against `invite-bot sandbox` at 50/s.

1. 200 requests, each approved by three concurrent clicks on random replicas (600 clicks, 24
   at a time): how many POSTs awork saw (must be 200), the clicks' ack p50/p99, and the most
   awork calls that arrived in any one second (the fake counts like a gateway; must be <= 50).
2. bench/bulk_throughput.py with three replicas sharing the store: the time to the summary
   against the rate limit's bound (500 / 50 = 10 s), duplicates, 429s.
Run: .venv/bin/python bench/replicas.py [--requests 200] [--people 500]
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

from bench import bulk_throughput
from bench.ack_latency import percentile, timed_post
from tests import serving
from tests.fakes.awork import FakeAwork
from tests.fakes.slack import FakeSlack

SECRET = "bench-signing-secret"
APPROVERS = ("UAPPROVER1", "UAPPROVER2")
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def scratch_schema() -> str:
    base = os.environ.get("INVITE_BENCH_DATABASE_URL", PG_DEFAULT)
    schema = f"bench_replicas_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{base}?options={quote(f'-c search_path={schema}')}"


def approvals(requests: int, replicas: int = 3) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="invite-replicas-"))
    slack, awork = FakeSlack(), FakeAwork()
    awork.rate_limit = (50, 1000)
    awork_url, awork_server = awork.serve()
    env = serving.serve_env(
        slack.url, awork_url, str(workdir / "unused.sqlite"), SECRET, "xoxb-bench",
        ",".join(APPROVERS), INVITE_DATABASE_URL=scratch_schema(), INVITE_SWEEP_SECONDS="5",
    )  # fmt: skip
    ports = [serving.free_port() for _ in range(replicas)]
    processes = [serving.start_server(env, p, workdir / f"r{p}.log") for p in ports]
    emails = [f"rep{i:04d}@example.com" for i in range(requests)]
    try:
        with ThreadPoolExecutor(12) as pool:
            list(
                pool.map(
                    lambda item: serving.post_signed(
                        ports[item[0] % replicas], serving.form_submission(item[1]), SECRET
                    ),
                    enumerate(emails),
                )
            )
        ids = [serving.approval_id_for(slack, email, timeout=60) for email in emails]
        time.sleep(1)
        rng = random.Random(11)
        clicks = [(rng.choice(ports), rid, rng.choice(APPROVERS)) for rid in ids for _ in range(3)]
        rng.shuffle(clicks)
        awork.arrivals.clear()
        started = time.monotonic()
        with (
            httpx.Client(timeout=30, limits=httpx.Limits(max_connections=24)) as client,
            ThreadPoolExecutor(24) as pool,
        ):
            results = list(
                pool.map(
                    lambda c: timed_post(
                        client, c[0], serving.button_click("approve_invite", c[1], c[2])
                    ),
                    clicks,
                )
            )
        deadline = time.monotonic() + 120
        while len(awork.invitations) < requests and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)  # anything late would show as a duplicate
        seconds = time.monotonic() - started
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--people", type=int, default=500)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    clicks = approvals(args.requests)
    print(json.dumps(clicks, indent=2))
    bulk = bulk_throughput.measure(
        args.people, stand_in="sandbox", replicas=3, database_url=scratch_schema()
    )
    print(json.dumps(bulk, indent=2))
    met = (
        clicks["posts"] == args.requests
        and clicks["most_awork_calls_in_one_second"] <= 50
        and bulk["ratio_to_bound"] <= 1.05
        and bulk["answered_429"] == 0
        and bulk["duplicates"] == 0
    )
    print(
        "targets (one POST per request, <= 50 calls/s, bulk within 1.05x of the bound, no 429):",
        "met" if met else "NOT met",
    )


if __name__ == "__main__":
    main()
