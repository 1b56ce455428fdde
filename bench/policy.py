"""What a large policy costs on the ack path: `/invite a@x` bursts against a bot with a
200-route, 1,000-domain INVITE_POLICY and against the same bot without one, in the same run.

Both are the real `invite-bot serve --http` on the same machine, with fake Slack and awork on
loopback and a store of their own (sqlitedict, or PostgreSQL with `--database-url`); rounds
alternate between them, in turn first, each burst after the other's work has settled, so
that the machine's noise falls on both. Each inline ask goes
through the whole policy: requester, blocked and approved domains, every route's teams and
channels, the daily limit counted in the store. Target: p99 with the policy <= 1.1x without.
Run: .venv/bin/python bench/policy.py [--burst 40] [--rounds 5] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ack_latency import SECRET, TOKEN, burst, percentile
from tests.fakes.awork import FakeAwork
from tests.fakes.slack import FakeSlack
from tests.serving import free_port, serve_env, start_server, stop_server


def big_policy(routes: int = 200, domains: int = 1000, limit: bool = True) -> str:
    """Everything the issue's figure names: many routes and domains, a requester list and
    (`limit`) a daily limit high enough to let every ask of the bench through."""
    lines = [
        'requesters = ["' + '", "'.join(f"U{i:04d}" for i in range(2000)) + '"]',
        "daily_limit = 100000" if limit else "",
        "approved_domains = [" + ", ".join(f'"ok{i}.example"' for i in range(domains // 2)) + "]",
        "blocked_domains = ["
        + ", ".join(f'"*.spam{i}.example"' for i in range(domains // 2))
        + "]",
    ]
    for i in range(routes):
        lines += [
            "[[routes]]",
            f'name = "route{i}"',
            f'teams = ["Team {i}"]',
            f'channels = ["CROUTE{i:04d}"]',
            f'admin_channel = "CADMIN{i:04d}"',
            f'approvers = ["UAPPR{i:04d}"]',
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", default=None, help="PostgreSQL for both (own schemas)")
    parser.add_argument(
        "--no-limit", action="store_true", help="without daily_limit (no counter in the store)"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="invite-policy-bench-"))
    (workdir / "policy.toml").write_text(big_policy(limit=not args.no_limit))
    slack, awork = FakeSlack(), FakeAwork()
    awork_url, awork_server = awork.serve()
    servers = {}
    for name, extra in (
        ("no_policy", {}),
        ("policy", {"INVITE_POLICY": str(workdir / "policy.toml")}),
    ):
        store = (
            {"INVITE_DATABASE_URL": _schema(args.database_url, name)} if args.database_url else {}
        )
        env = serve_env(
            slack.url,
            awork_url,
            str(workdir / f"{name}.sqlite"),
            SECRET,
            TOKEN,
            "UAPPROVER",
            **extra,
            **store,
        )
        port = free_port()
        servers[name] = (port, start_server(env, port, workdir / f"{name}.log"))
    p99: dict[str, list[float]] = {name: [] for name in servers}
    p50: dict[str, list[float]] = {name: [] for name in servers}
    try:
        for round_ in range(args.rounds):
            order = list(servers.items())
            for name, (port, _) in order if round_ % 2 else reversed(order):
                time.sleep(1.5)  # the last burst's work after the ack (Slack posts) is done
                statuses, latencies = burst(
                    port, args.burst, lambda i, r=round_, n=name: f"{n}-{r}-{i}@elsewhere.example"
                )
                assert all(code == 200 for code in statuses), statuses
                p99[name].append(percentile(latencies, 99))
                p50[name].append(percentile(latencies, 50))
    finally:
        for _, process in servers.values():
            stop_server(process)
        awork_server.shutdown()
        slack.close()
    figures = {
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores",
        "store": "postgresql" if args.database_url else "sqlitedict",
        "daily_limit": not args.no_limit,
        "burst": args.burst,
        "rounds": args.rounds,
        "p50_ms": {name: round(statistics.median(v), 1) for name, v in p50.items()},
        "p99_ms": {name: round(statistics.median(v), 1) for name, v in p99.items()},
    }
    ratio = statistics.median(p99["policy"]) / statistics.median(p99["no_policy"])
    figures["p99_ratio_policy_to_none"] = round(ratio, 3)
    print(json.dumps(figures, indent=2))
    print("target (p99 with the policy <= 1.1x without):", "met" if ratio <= 1.1 else "NOT met")


def _schema(url: str, name: str) -> str:
    """A schema of its own per server, made fresh."""
    import secrets

    import psycopg

    from tests.conftest import with_schema

    schema = f"bench_{name}_{secrets.token_hex(3)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return with_schema(url, schema)


if __name__ == "__main__":
    main()
