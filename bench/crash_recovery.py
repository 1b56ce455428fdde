"""Exactly-once under crashes, and across two processes.

1. Crash loop: 50 requests are approved while the real server is killed with SIGKILL at a
   random moment, restarted, and the clicks repeated - 5 times. Then it waits for every request
   to settle and counts awork's invitations per address and the approval messages updated.
2. Two processes: two servers on one store file, 20 concurrent Approve clicks spread over both,
   for each of 10 requests.

Run: .venv/bin/python bench/crash_recovery.py [--requests 50] [--rounds 5] [--seed N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.domain.records import Status
from bot.store import SqliteStore as Store
from tests import serving
from tests.fakes.awork import FakeAwork
from tests.fakes.slack import FakeSlack

SECRET = "bench-signing-secret"
APPROVERS = ("UAPPROVER1", "UAPPROVER2")


def env_for(slack: FakeSlack, awork_url: str, db: Path) -> dict[str, str]:
    return serving.serve_env(
        slack.url,
        awork_url,
        str(db),
        SECRET,
        "xoxb-bench",
        ",".join(APPROVERS),
        INVITE_SWEEP_SECONDS="1",
        # Short leases (3 s timeouts + 1 s margin): a killed server's work is taken over
        # within seconds of its restart, not after the production lease of about a minute.
        AWORK_TIMEOUT="3",
        INVITE_LEASE_MARGIN="1",
        # A settle window within the lease: a request taken over after a kill whose person
        # awork does not have is sent at once, not after the production window of 2 minutes.
        INVITE_SETTLE_SECONDS="4",
    )


def click_all(port: int, request_ids: list[str], stop_after: float | None = None) -> None:
    """Approve every request, 8 at a time, until done or the server dies under us."""
    deadline = time.monotonic() + stop_after if stop_after else None
    with httpx.Client(timeout=10) as client, ThreadPoolExecutor(8) as pool:

        def click(request_id: str) -> None:
            if deadline and time.monotonic() > deadline:
                return
            # Killed mid-request: Slack would show an error, and the approver clicks again.
            with contextlib.suppress(httpx.HTTPError):
                click_body = serving.button_click(
                    "approve_invite", request_id, random.choice(APPROVERS)
                )
                serving.post_signed(port, click_body, SECRET, client)

        list(pool.map(click, request_ids))


def crash_loop(requests: int, rounds: int, workdir: Path) -> dict[str, object]:
    slack, awork = FakeSlack(), FakeAwork()
    awork_url, awork_server = awork.serve()
    db = workdir / "crash.sqlite"
    env = env_for(slack, awork_url, db)
    port = serving.free_port()
    log = workdir / "crash.log"
    process = serving.start_server(env, port, log)
    emails = [f"person{i:03d}@example.com" for i in range(requests)]
    with httpx.Client(timeout=10) as client:
        for email in emails:
            assert (
                serving.post_signed(
                    port, serving.form_submission(email), SECRET, client
                ).status_code
                == 200
            )
    ids = [serving.approval_id_for(slack, email) for email in emails]
    kills, in_flight = [], []
    batch = -(-requests // rounds)  # each round approves its share, so every kill lands mid-work
    for round_index in range(rounds):
        awork.delay = random.uniform(0.2, 0.6)  # slow enough to be caught mid-call
        todo = ids[: (round_index + 1) * batch]  # this round's share, and earlier ones again
        kill_at = random.uniform(0.1, 0.8)
        clicking = threading.Thread(target=click_all, args=(port, todo))
        clicking.start()
        time.sleep(kill_at)
        serving.kill_server(process)
        kills.append(round(kill_at, 2))
        clicking.join()
        store = Store(str(db))
        try:
            in_flight.append(sum(store.get(i).status is Status.INVITING for i in ids))
        finally:
            store.close()
        process = serving.start_server(env, port, log)
    awork.delay = 0.02
    click_all(port, ids)  # anything still pending after the last crash gets its click
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        store = Store(str(db))
        try:
            stored = [store.get(i) for i in ids]
        finally:
            store.close()
        if all(
            r.status is Status.INVITED
            and r.shown_status is Status.INVITED
            and not r.needs_delivery()
            for r in stored
        ):
            break
        time.sleep(0.5)
    serving.stop_server(process)
    per_email = Counter(invitation["body"]["email"] for invitation in awork.invitations)
    updated = {
        rid
        for rid in ids
        if any(
            rid in json.dumps(c.args.get("blocks"))
            and "invitation sent" in json.dumps(c.args.get("blocks"))
            for c in slack.of("chat.update")
        )
    }
    awork_server.shutdown()
    slack.close()
    return {
        "requests": requests,
        "kills_at_seconds": kills,
        "invitations_in_flight_at_each_kill": in_flight,
        "invitations_in_awork": len(awork.invitations),
        "addresses_invited": len(per_email),
        "duplicates": sum(count - 1 for count in per_email.values()),
        "posts_to_invitations": len(awork.calls("POST", "/invitations")),
        "final_state_invited": sum(r.status is Status.INVITED for r in stored),
        "approval_messages_updated": len(updated),
        "recovered_after_crash": sum(
            r.result is not None and r.result.invitation_code is None for r in stored
        ),
    }


def two_processes(requests: int, clicks: int, workdir: Path) -> dict[str, object]:
    slack, awork = FakeSlack(), FakeAwork()
    awork.delay = 0.2
    awork_url, awork_server = awork.serve()
    env = env_for(slack, awork_url, workdir / "twin.sqlite")
    ports = [serving.free_port(), serving.free_port()]
    processes = [serving.start_server(env, port, workdir / f"twin{port}.log") for port in ports]
    try:
        emails = [f"twin{i:02d}@example.com" for i in range(requests)]
        for email in emails:
            serving.post_signed(ports[0], serving.form_submission(email), SECRET)
        ids = [serving.approval_id_for(slack, email) for email in emails]
        statuses = []
        with (
            httpx.Client(timeout=30, limits=httpx.Limits(max_connections=clicks)) as client,
            ThreadPoolExecutor(clicks) as pool,
        ):
            for request_id in ids:
                jobs = [
                    (
                        ports[i % 2],
                        serving.button_click("approve_invite", request_id, APPROVERS[i % 2]),
                    )
                    for i in range(clicks)
                ]
                statuses += list(
                    pool.map(
                        lambda job: serving.post_signed(job[0], job[1], SECRET, client).status_code,
                        jobs,
                    )
                )
        time.sleep(1.0)
    finally:
        for process in processes:
            serving.stop_server(process)
        awork_server.shutdown()
        slack.close()
    per_email = Counter(invitation["body"]["email"] for invitation in awork.invitations)
    return {
        "requests": requests,
        "clicks_per_request": clicks,
        "clicks_acked_200": statuses.count(200),
        "invitations": len(awork.invitations),
        "duplicates": sum(count - 1 for count in per_email.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    random.seed(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="invite-crash-"))
    figures = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "seed": args.seed,
        "crash_loop": crash_loop(args.requests, args.rounds, workdir),
        "two_processes": two_processes(10, 20, workdir),
    }
    print(json.dumps(figures, indent=2))
    crash, twin = figures["crash_loop"], figures["two_processes"]
    ok = (
        crash["invitations_in_awork"] == args.requests
        and crash["duplicates"] == 0
        and crash["final_state_invited"] == args.requests
        and crash["approval_messages_updated"] == args.requests
        and twin["invitations"] == twin["requests"]
        and twin["duplicates"] == 0
    )
    print(
        "targets (all invited once, all messages updated, one invitation per request over two processes):",
        "met" if ok else "NOT met",
    )


if __name__ == "__main__":
    main()
