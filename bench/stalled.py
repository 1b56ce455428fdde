"""Stalled connections: how many the bot holds open while still answering at once.

Starts the real `invite-bot serve --http` against loopback fakes, measures /healthz (and a
signed /invite) with no other client, then opens N connections that send headers promising a
100 kB body and nothing more, measures again while they are open, and times how long the
server takes to close them (HTTP_BODY_TIMEOUT). Run: .venv/bin/python bench/stalled.py [--n 300]
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ack_latency import percentile, timed_post
from tests.fakes.awork import FakeAwork
from tests.fakes.slack import FakeSlack
from tests.serving import command_submission, free_port, serve_env, start_server, stop_server
from tests.test_exposed import closed_by_server, stalled_connection

SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench-token"


def answers(port: int, count: int) -> dict[str, float]:
    """/healthz and signed /invite, one after another: p50 and p99 in milliseconds."""
    health, invite = [], []
    with httpx.Client(timeout=10) as client:
        for _ in range(count):
            started = time.perf_counter()
            assert client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            health.append((time.perf_counter() - started) * 1000)
            response, ms = timed_post(client, port, command_submission(""))
            assert response.status_code == 200
            invite.append(ms)
    return {
        "healthz_p50_ms": round(statistics.median(health), 2),
        "healthz_p99_ms": round(percentile(health, 99), 2),
        "invite_p99_ms": round(percentile(invite, 99), 2),
    }


def measure(stalled_count: int = 300, deadline: float = 5.0, samples: int = 100) -> dict:
    slack, awork = FakeSlack(), FakeAwork()
    awork_url, awork_server = awork.serve()
    workdir = Path(tempfile.mkdtemp(prefix="invite-stalled-"))
    env = serve_env(
        slack.url, awork_url, str(workdir / "s.sqlite"), SECRET, TOKEN, "UAPPROVER",
        HTTP_BODY_TIMEOUT=str(deadline),
    )  # fmt: skip
    port = free_port()
    process = start_server(env, port, workdir / "bot.log")
    figures: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "stalled": stalled_count,
        "deadline_s": deadline,
    }
    sockets = []
    try:
        time.sleep(1.0)
        figures["quiet"] = answers(port, samples)
        opened = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            sockets = list(pool.map(lambda _: stalled_connection(port), range(stalled_count)))
        time.sleep(0.3)  # the server has read every header
        figures["held_open"] = sum(not closed_by_server(s) for s in sockets)
        figures["while_stalled"] = answers(port, samples)
        figures["held_through_measurement"] = sum(not closed_by_server(s) for s in sockets)
        while time.monotonic() - opened < deadline + 10:
            if all(closed_by_server(s) for s in sockets):
                break
            time.sleep(0.1)
        figures["all_closed_after_s"] = round(time.monotonic() - opened, 2)
        figures["still_open"] = sum(not closed_by_server(s) for s in sockets)
    finally:
        for sock in sockets:
            sock.close()
        stop_server(process)
        awork_server.shutdown()
        slack.close()
    quiet, busy = figures["quiet"], figures["while_stalled"]
    figures["healthz_p99_ratio"] = round(busy["healthz_p99_ms"] / quiet["healthz_p99_ms"], 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--deadline", type=float, default=5.0)
    args = parser.parse_args()
    figures = measure(args.n, args.deadline)
    print(json.dumps(figures, indent=2))
    ok = (
        figures["held_open"] == args.n
        and figures["held_through_measurement"] == args.n
        and figures["while_stalled"]["healthz_p99_ms"] < 1000
        and figures["while_stalled"]["invite_p99_ms"] < 1000
        and figures["still_open"] == 0
    )
    print("targets (all held, answers < 1 s while held, all closed after the deadline):",
          "met" if ok else "NOT met")  # fmt: skip


if __name__ == "__main__":
    main()
