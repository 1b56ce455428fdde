"""Real `invite-bot serve` processes: crashes while awork is slow, zombies, live leases, and
three replicas sharing one PostgreSQL store."""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.domain.batches import BatchStatus
from bot.domain.records import Status
from tests import serving
from tests.conftest import APPROVERS, SIGNING_SECRET
from tests.serving import (
    IN_FLIGHT,
    LEASE,
    QUICK_IN_FLIGHT,
    QUICK_LEASE,
    SHORT_LEASE,
    SLOW,
    free_port,
    kill_server,
    start_server,
    start_servers,
    stop_server,
    wait_for,
    wait_for_approval_message,
)


def post(port: int, body: str):
    return serving.post_signed(port, body, SIGNING_SECRET)


def submit(port: int, slack, email: str) -> str:
    assert post(port, serving.form_submission(email)).status_code == 200
    return serving.approval_id_for(slack, email, timeout=30)


def approve(port: int, record_id: str, approver: str = APPROVERS[0]) -> int:
    return post(port, serving.button_click("approve_invite", record_id, approver)).status_code


def posts_by_email(fake) -> collections.Counter:
    return collections.Counter(
        json.loads(r.content)["email"] for r in fake.calls("POST", "/invitations")
    )


def slack_texts(slack) -> str:
    return json.dumps([c.args for c in slack.calls if c.method.startswith("chat.")])


# --- one host -------------------------------------------------------------------------------------


def test_a_kill_while_awork_is_slow_invites_each_request_once(tmp_path, env, slack, awork_server):
    """awork is slow to create invitations; the bot is killed while four are in flight and
    started again at once: it waits out the lease, finds the four in awork, sends no second
    POST, and nobody is told "already in the workspace"."""
    fake, _ = awork_server
    # Sweeping five times a second, the restart takes over within 0.2 s of the lease's end
    # rather than within a second; the lease itself is QUICK_LEASE's, as before.
    env = {**env, **QUICK_LEASE, "INVITE_SWEEP_SECONDS": "0.2"}
    port = free_port()
    process = start_server(env, port, tmp_path / "serve.log")
    emails = [f"slow{i}@example.com" for i in range(4)]
    ids = [submit(port, slack, email) for email in emails]
    fake.post_delay = QUICK_IN_FLIGHT
    try:
        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(lambda rid: approve(port, rid), ids)) == [200] * 4
        wait_for(lambda: len(fake.calls("POST", "/invitations")) == 4, 5, "four POSTs")
    finally:
        kill_server(process)
    fake.post_delay = 0  # the dead process's POSTs still take their time
    process = start_server(env, port, tmp_path / "serve.log")  # at once, as systemd would
    try:
        for request_id in ids:
            slack.wait_for(
                "chat.update",
                timeout=30,
                where=lambda c, rid=request_id: (
                    rid in json.dumps(c.args.get("blocks"))
                    and "invitation sent" in json.dumps(c.args.get("blocks"))
                ),
            )
    finally:
        stop_server(process)
    assert posts_by_email(fake) == collections.Counter(emails)
    assert len(fake.invitations) == 4
    assert "already" not in slack_texts(slack).lower()


def zombie(pid: int) -> bool:
    """The process has died and is not reaped yet (its state in /proc is Z)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_a_live_lease_is_never_taken_over_and_a_zombies_is_after_it_expired(
    tmp_path, env, slack, awork_server
):
    """Two servers on one store, awork slow: the second, sweeping five times a second, never
    takes over the first's invitation while it works. Then the first is killed and left a
    zombie (its process id still answers kill(pid, 0)): the second takes over once the lease
    ran out - within the lease and a few sweeps - and invites once."""
    fake, _ = awork_server
    env = {**env, **SHORT_LEASE, "INVITE_SWEEP_SECONDS": "0.2"}
    ports = [free_port(), free_port()]
    first, second = start_servers(env, ports, tmp_path)
    reaped = False
    try:
        live = submit(ports[0], slack, "live@example.com")
        fake.post_delay = SLOW
        assert approve(ports[0], live) == 200
        slack.wait_for(
            "chat.postMessage",
            timeout=20,
            where=lambda c: "live@example.com" in json.dumps(c.args) and "accept" in c.args["text"],
        )
        assert posts_by_email(fake)["live@example.com"] == 1
        assert "taking over" not in (tmp_path / f"serve-{ports[1]}.log").read_text()

        orphan = submit(ports[0], slack, "zombie@example.com")
        fake.post_delay = IN_FLIGHT
        assert approve(ports[0], orphan) == 200
        wait_for(lambda: posts_by_email(fake)["zombie@example.com"], 5, "the POST")
        os.killpg(first.pid, signal.SIGKILL)  # not reaped: the master stays a zombie
        wait_for(lambda: zombie(first.pid), 5, "the first server to die")
        os.kill(first.pid, 0)  # a zombie still "answers": no process id may decide anything
        killed = time.monotonic()
        slack.wait_for(
            "chat.update",
            timeout=LEASE + 15,
            where=lambda c: (
                orphan in json.dumps(c.args.get("blocks"))
                and "invitation sent" in json.dumps(c.args.get("blocks"))
            ),
        )
        assert time.monotonic() - killed <= LEASE + 5
        assert posts_by_email(fake)["zombie@example.com"] == 1
        assert "already" not in slack_texts(slack).lower()
    finally:
        if first.poll() is None:
            kill_server(first)
            reaped = True
        if not reaped:
            first.wait()
        stop_server(second)


# --- three replicas on PostgreSQL ---------------------------------------------------------------


@pytest.fixture
def replicas(tmp_path, env, pg_url):
    """Start n `invite-bot serve --http` processes sharing one PostgreSQL store (leases of 2 s:
    a POST that outlives awork's 0.5 s timeout is settled by looking, never sent twice)."""
    started: dict[int, object] = {}
    env = {**env, **QUICK_LEASE, "INVITE_DATABASE_URL": pg_url}

    def start(count: int = 3, ports: list[int] | None = None) -> list[int]:
        ports = ports or [free_port() for _ in range(count)]
        processes = start_servers(env, ports, tmp_path, name="replica")
        started.update(zip(ports, processes, strict=True))
        return ports

    start.processes = started  # type: ignore[attr-defined]
    yield start
    for process in started.values():
        if process.poll() is None:
            stop_server(process)


def open_pg(pg_url):
    from bot.store.postgres import PostgresStore

    return PostgresStore(pg_url)


def test_three_replicas_24_requests_each_clicked_three_times_invite_24(
    replicas, slack, awork_server, pg_url
):
    """24 requests, each approved by three concurrent clicks on random replicas: exactly
    24 POSTs, one per person, every request invited."""
    fake, _ = awork_server
    ports = replicas(3)
    emails = [f"r{i:03d}@example.com" for i in range(24)]
    with ThreadPoolExecutor(12) as pool:
        statuses = list(
            pool.map(
                lambda item: post(ports[item[0] % 3], serving.form_submission(item[1])).status_code,
                enumerate(emails),
            )
        )
    assert statuses == [200] * 24
    ids = [serving.approval_id_for(slack, email, timeout=30) for email in emails]
    rng = random.Random(7)
    clicks = [(rng.choice(ports), rid, rng.choice(APPROVERS)) for rid in ids for _ in range(3)]
    rng.shuffle(clicks)
    with ThreadPoolExecutor(24) as pool:
        statuses = list(pool.map(lambda c: approve(*c), clicks))
    assert statuses == [200] * 72
    store = open_pg(pg_url)
    try:
        wait_for(
            lambda: all(store.get(rid).status is Status.INVITED for rid in ids),
            60,
            "24 invitations",
        )
    finally:
        store.close()
    assert posts_by_email(fake) == collections.Counter(emails)


def test_a_bulk_run_whose_replica_is_killed_is_finished_once(
    replicas, slack, awork_server, pg_url, tmp_path, env
):
    """A 60-person bulk on three replicas; the replica running it is killed at about 30 %
    and restarted: every person is invited exactly once."""
    fake, _ = awork_server
    ports = replicas(3)
    people = [f"b{i:03d}@example.com" for i in range(60)]
    assert post(ports[0], serving.command_submission(" ".join(people))).status_code == 200
    batch_id = serving.approval_id_for(slack, "60 people", timeout=30)
    store = open_pg(pg_url)
    try:
        wait_for_approval_message(store, batch_id)
        fake.delay = 0.02
        assert approve(ports[1], batch_id) == 200
        wait_for(lambda: len(fake.calls("POST", "/invitations")) >= 18, 30, "30 % of the run")
        kill_server(replicas.processes[ports[1]])
        sent_before = len(fake.calls("POST", "/invitations"))
        replicas(ports=[ports[1]])  # restarted at once
        wait_for(
            lambda: store.get_batch(batch_id).status is BatchStatus.DONE, 60, "the run to finish"
        )
        batch = store.get_batch(batch_id)
        statuses = collections.Counter(
            store.get(batch.member_id(i)).status for i in range(len(batch.entries))
        )
    finally:
        store.close()
    assert 18 <= sent_before < 60
    assert statuses == {Status.INVITED: 60}
    assert posts_by_email(fake) == collections.Counter(people)
    logs = "".join(p.read_text() for p in tmp_path.glob("replica-*.log"))
    assert "resuming a run whose lease expired" in logs


def test_three_batches_on_three_replicas_stay_inside_awork_rate_limit(
    replicas, slack, awork_server, pg_url
):
    """Three 40-person batches approved on three replicas at once: awork never sees more
    than 50 calls in any one second (the limit is counted in the database), and no 429."""
    fake, _ = awork_server
    fake.rate_limit = (50, 1000)
    ports = replicas(3)
    for n, port in enumerate(ports):
        people = " ".join(f"t{n}-{i:03d}@example.com" for i in range(40))
        assert post(port, serving.command_submission(people)).status_code == 200

    def approval_posts() -> list:
        return [
            c
            for c in slack.of("chat.postMessage")
            if c.args["channel"] == "CADMIN" and "40 people" in c.args["text"]
        ]

    wait_for(lambda: len(approval_posts()) == 3, 30, "three approval messages")
    batch_ids = [
        next(b for b in c.args["blocks"] if b["type"] == "actions")["elements"][0]["value"]
        for c in approval_posts()
    ]
    store = open_pg(pg_url)
    try:
        for batch_id in batch_ids:
            wait_for_approval_message(store, batch_id)
    finally:
        store.close()
    fake.arrivals.clear()
    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(approve, ports, batch_ids)) == [200] * 3
    # Made, not only arrived: the fake counts a call when it arrives, an invitation once made.
    wait_for(lambda: len(fake.invitations) >= 120, 60, "120 invitations")
    assert serving.busiest_second(fake.arrivals) <= 50 and fake.rate_limited == 0
    assert len(fake.invitations) == len(fake.calls("POST", "/invitations")) == 120
