"""`/invite pending` with many stored requests: answered within Slack's 3 s, paged under 50 blocks.

Fills a store with N pending requests, starts the real server on it, and asks for the pending
list (first, middle and last page) 10 times each as an approver, printing latency and block counts.
Run: .venv/bin/python bench/lists.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.domain.details import InviteDetails
from bot.domain.records import InviteRequest
from bot.store import SqliteStore as Store
from tests import serving
from tests.fakes.awork import FakeAwork
from tests.fakes.slack import FakeSlack
from tests.slack_requests import SlackDriver

SECRET = "bench-signing-secret"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="invite-lists-"))
    db = workdir / "lists.sqlite"
    store = Store(str(db))
    for i in range(args.requests):
        store.add(
            InviteRequest(
                requester_id=f"U{i % 50:03d}",
                details=InviteDetails(email=f"person{i:04d}@example.com"),
            )
        )
    store.close()
    slack, awork = FakeSlack(), FakeAwork()
    awork_url, awork_server = awork.serve()
    # A long sweep interval: the benchmark measures the command, not the start-up sweep's posts.
    env = serving.serve_env(
        slack.url,
        awork_url,
        str(db),
        SECRET,
        "xoxb-bench",
        "UAPPROVER",
        INVITE_SWEEP_SECONDS="3600",
    )
    port = serving.free_port()
    process = serving.start_server(env, port, workdir / "lists.log")
    driver = SlackDriver(None, SECRET)
    pages = max(1, -(-args.requests // 20))
    results = {}
    try:
        time.sleep(2)  # let the start-up sweep post the approval messages it finds missing
        with httpx.Client(timeout=30) as client:
            for page in (1, pages // 2, pages):
                times, block_counts = [], set()
                for _ in range(10):
                    started = time.perf_counter()
                    response = serving.post_signed(
                        port,
                        driver.command_body(f"pending {page}", user="UAPPROVER"),
                        SECRET,
                        client,
                    )
                    times.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200
                    block_counts.add(len(json.loads(response.text)["blocks"]))
                results[f"page_{page}_of_{pages}"] = {
                    "p50_ms": round(statistics.median(times), 1),
                    "max_ms": round(max(times), 1),
                    "blocks": sorted(block_counts),
                }
    finally:
        serving.stop_server(process)
        awork_server.shutdown()
        slack.close()
    figures = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "stored_requests": args.requests,
        **results,
    }
    print(json.dumps(figures, indent=2))
    worst = max(r["max_ms"] for r in results.values())
    most_blocks = max(max(r["blocks"]) for r in results.values())
    print(
        "targets (within 3 s, at most 50 blocks):",
        "met" if worst < 3000 and most_blocks <= 50 else "NOT met",
    )


if __name__ == "__main__":
    main()
