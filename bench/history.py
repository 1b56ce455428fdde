"""Cost independent of history: ack of inline /invite and the App Home with 100,000 stored
requests, against a store with only the live ones, in the same run, on both engines.

For each engine, two real `invite-bot serve --http` processes run side by side against
loopback fakes. Both stores hold what the App Home user - an approver who asks for
invitations too - sees today: `--pending` requests (720) waiting for a decision, from 200
requesters over the last hours, and `--own` requests of their own, decided this week. The
`full` store holds `--stored` decided requests besides (200 requesters and the approver, 1 in
100 of them theirs, created over the last 80 days, so none is archived). Rounds alternate
between the stores (so drift of a noisy machine hits both alike); each round sends 20
concurrent inline `/invite` (new addresses) and then opens the approver's App Home, timed
until Slack has the `views.publish`. Prints the acks' p50, a burst's p99 (median over the
bursts), the App Home's median, what the home said it holds (waiting for a decision, their
own) against what the store holds, and the ratios full/live.
Run: .venv/bin/python bench/history.py [--stored 100000] [--pending 720] [--own 200]
     [--rounds 8] [--engines sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ack_latency import percentile, timed_post
from bench.hot_paths import QUIET, settle
from bot.domain.clock import utcnow
from bot.domain.details import InviteDetails
from bot.domain.records import InviteRequest, MessageRef, Status
from bot.store import SqliteStore, Store
from tests import serving
from tests.fakes.awork import FakeAwork
from tests.fakes.slack import FakeSlack
from tests.slack_requests import SlackDriver

SECRET = "bench-signing-secret"
APPROVER = "UAPPROVER"
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
SETTLED = [Status.JOINED, Status.DENIED, Status.EXPIRED, Status.LAPSED]


def history(count: int):
    """`count` decided requests as export items (told, settled: nothing due): joined, denied,
    expired and lapsed alike; 1 in 100 asked for by the approver."""
    return records(count, "h", timedelta(days=80), timedelta(seconds=60), SETTLED, every=100)


def live(pending: int, own: int):
    """What the approver sees in both stores: `pending` requests waiting for a decision (their
    approval messages posted, asked over the last hours: no reminder or expiry due), and `own`
    requests of their own, decided this week."""
    yield from records(pending, "p", timedelta(hours=12), timedelta(seconds=30), [Status.PENDING])
    yield from records(own, "o", timedelta(days=6), timedelta(minutes=30), SETTLED, every=1)


def records(count, tag, ago, step, statuses, every=0):
    """`count` requests as export items, the first `ago` before now, one every `step`, in
    `statuses` in turn; each `every`-th asked for by the approver (0: none)."""
    now = utcnow()
    template = InviteRequest(
        requester_id="U000",
        details=InviteDetails(email="x@example.com"),
        approval_message=MessageRef(channel="CADMIN", ts="1.0"),
        waiting_told=True,
        outcome_told=True,
        link_attempted=True,
    ).model_dump(mode="json")
    for i in range(count):
        created = now - ago + i * step
        status = statuses[i % len(statuses)]
        doc = {
            **template,
            "id": f"inv-{tag}{i:011d}",
            "requester_id": APPROVER if every and i % every == 0 else f"U{i % 200:03d}",
            "status": str(status),
            "shown_status": str(status),
            "created_at": created.isoformat(),
            "updated_at": (created + min(step, timedelta(hours=1))).isoformat(),
            "details": {**template["details"], "email": f"{tag}{i}@example.com"},
            "approval_message": {"channel": "CADMIN", "ts": f"{1.7e9 + i:.0f}.{ord(tag):06d}"},
        }
        if status == Status.PENDING:
            doc["outcome_told"] = doc["link_attempted"] = False
        yield {"type": "record", "doc": doc}


def open_store(engine: str, where: str) -> Store:
    if engine == "sqlite":
        return SqliteStore(where)
    from bot.store.postgres import PostgresStore

    return PostgresStore(where)


def place(engine: str, workdir: Path, name: str) -> str:
    """A new store location: a file, or a schema of its own in PostgreSQL."""
    if engine == "sqlite":
        return str(workdir / f"{name}.sqlite")
    import psycopg

    base = os.environ.get("INVITE_BENCH_DATABASE_URL", PG_DEFAULT)
    schema = f"bench_{name}_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{base}?options={quote(f'-c search_path={schema}')}"


def round_trip(
    port: int, slack: FakeSlack, tag: str, burst: int
) -> tuple[list[float], float, dict[str, int]]:
    """20 concurrent inline /invite, then the approver's App Home: ack times, home time, and
    the counts the home said it holds."""
    driver = SlackDriver(None, SECRET)
    bodies = [
        driver.command_body(f"{tag}-{i}@example.com", user=f"UREQ{i % 5}") for i in range(burst)
    ]
    with (
        httpx.Client(timeout=30, limits=httpx.Limits(max_connections=burst)) as client,
        ThreadPoolExecutor(burst) as pool,
    ):
        results = list(pool.map(lambda body: timed_post(client, port, body), bodies))
    assert all(r.status_code == 200 for r, _ in results), [r.text for r, _ in results][:3]
    # The approval messages go out (and the homes of those who look at theirs are refreshed);
    # then the home is asked for.
    settle(slack, 0, None, 0, QUIET)
    mine = lambda c: c.args.get("user_id") == APPROVER  # noqa: E731
    seen = len([c for c in slack.of("views.publish") if mine(c)])
    event = {
        "token": "x",
        "team_id": "T1",
        "api_app_id": "A1",
        "type": "event_callback",
        "event_id": f"Ev{secrets.token_hex(4)}",
        "event_time": int(time.time()),
        "event": {"type": "app_home_opened", "user": APPROVER, "channel": "D1", "tab": "home"},
    }
    started = time.monotonic()
    with httpx.Client(timeout=30) as client:
        ts = str(int(time.time()))
        body = json.dumps(event)
        from slack_sdk.signature import SignatureVerifier

        signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
        client.post(
            f"http://127.0.0.1:{port}/slack/events",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": signature,
            },
        )
    published = slack.wait_for("views.publish", seen + 1, timeout=30, where=mine)[seen]
    return [ms for _, ms in results], (published.at - started) * 1000, shown(published.args)


def shown(args: dict) -> dict[str, int]:
    """What a published App Home says it holds: "Waiting for a decision: N" (the approver's
    list) and "Your invitation requests: M" (their own)."""
    text = json.dumps(args.get("view") or {})
    found = {}
    for key, label in (("waiting", "Waiting for a decision"), ("own", "Your invitation requests")):
        match = re.search(label + r": (\d+)", text)
        found[key] = int(match.group(1)) if match else 0
    return found


def measure(
    engine: str, stored: int, rounds: int, burst: int = 20, pending: int = 720, own: int = 200
) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix=f"invite-history-{engine}-"))
    places = {"live": place(engine, workdir, "live"), "full": place(engine, workdir, "full")}
    fill_seconds = 0.0
    for name, where in places.items():
        filled_at = time.monotonic()
        store = open_store(engine, where)
        store.import_items(live(pending, own))
        if name == "full":
            counts = store.import_items(history(stored))
        store.close()
        if engine == "postgresql":
            # Steady state: what autovacuum would do after a load anyway, done before measuring.
            import psycopg

            with psycopg.connect(where, autocommit=True) as conn:
                conn.execute("VACUUM (ANALYZE) records")
        if name == "full":
            fill_seconds = time.monotonic() - filled_at
    servers, fakes = {}, []
    try:
        for name, where in places.items():
            slack, awork = FakeSlack(), FakeAwork()
            awork_url, awork_server = awork.serve()
            fakes.append((slack, awork_server))
            store_env = (
                {"INVITE_DB_PATH": where}
                if engine == "sqlite"
                else {"INVITE_DATABASE_URL": where, "INVITE_DB_PATH": str(workdir / "unused")}
            )
            env = serving.serve_env(
                slack.url, awork_url, str(workdir / "unused.sqlite"), SECRET, "xoxb-bench",
                APPROVER, INVITE_SWEEP_SECONDS="5",
            )  # fmt: skip
            env.update(store_env)
            port = serving.free_port()
            process = serving.start_server(env, port, workdir / f"{name}.log")
            servers[name] = (port, slack, process)
        time.sleep(2)  # start-up sweeps and the catalog settle
        acks: dict[str, list[list[float]]] = {"live": [], "full": []}
        homes: dict[str, list[float]] = {"live": [], "full": []}
        said: dict[str, dict[str, int]] = {}
        for number in range(rounds):
            order = ("live", "full") if number % 2 == 0 else ("full", "live")
            for name in order:
                port, slack, _ = servers[name]
                ms, home, said[name] = round_trip(port, slack, f"{name}{number}", burst)
                # Its work after the acks ends before the other is measured.
                settle(slack, 0, None, 0, QUIET)
                if number > 0:  # the first round warms both up
                    acks[name].append(ms)
                    homes[name].append(home)
    finally:
        for _, _, process in servers.values():
            serving.stop_server(process)
        for slack, server in fakes:
            server.shutdown()
            slack.close()

    def figures(name: str) -> dict[str, float]:
        every = [ms for burst in acks[name] for ms in burst]
        return {
            "ack_p50_ms": round(statistics.median(every), 1),
            # A burst's p99 (of its 20 acks), the median over the bursts: one burst's tail,
            # robust to the odd burst a noisy 2-core machine slows down as a whole.
            "burst_ack_p99_ms": round(
                statistics.median(percentile(burst, 99) for burst in acks[name]), 1
            ),
            "all_acks_p99_ms": round(percentile(every, 99), 1),
            "home_p50_ms": round(statistics.median(homes[name]), 1),
        }

    waiting = pending + burst * rounds  # every ask of the run waits for the approver too
    theirs = {"live": own, "full": own + -(-stored // 100)}
    result: dict[str, object] = {
        "engine": engine,
        "stored": counts["record"],
        "fill_seconds": round(fill_seconds, 1),
        "bursts_per_store": len(acks["full"]),
    }
    for name in places:
        result[name] = {
            **figures(name),
            "home_said": said[name],
            "store_holds": {"waiting": waiting, "own": theirs[name]},
        }
    result["ack_p99_ratio"] = round(
        result["full"]["burst_ack_p99_ms"] / result["live"]["burst_ack_p99_ms"], 2
    )
    result["home_ratio"] = round(result["full"]["home_p50_ms"] / result["live"]["home_p50_ms"], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--pending", type=int, default=720)
    parser.add_argument("--own", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    results = [
        measure(e, args.stored, args.rounds, pending=args.pending, own=args.own)
        for e in args.engines.split(",")
    ]
    print(json.dumps(results, indent=2))
    met = all(r["ack_p99_ratio"] <= 1.2 and r["home_ratio"] <= 1.2 for r in results)
    print("target (full within 1.2x of live, ack p99 and App Home):", "met" if met else "NOT met")
    told = all(
        r[name]["home_said"] == r[name]["store_holds"] for r in results for name in ("live", "full")
    )
    print("target (the App Home says all it holds):", "met" if told else "NOT met")


if __name__ == "__main__":
    main()
