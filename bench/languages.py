"""What speaking each person's language costs on the ack path: bursts of inline `/invite` from
people whose Slack is in German against people whose Slack is in English, on the same bot.

The real `invite-bot serve --http`, fake Slack and awork on loopback. Each person's locale is
asked of Slack (`users.info`) the first time they act and then remembered for a day, so a
first, unmeasured round makes every sender known; the measured rounds alternate which group
goes first. The answer each person gets is built in their language (German from the catalog).
Target: p99 of the German bursts <= 1.05x the English ones.
Run: .venv/bin/python bench/languages.py [--burst 40] [--rounds 6] [--database-url URL]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ack_latency import SECRET, TOKEN, burst, percentile
from bench.policy import _schema
from tests.fakes.awork import FakeAwork
from tests.fakes.slack import FakeSlack
from tests.serving import free_port, serve_env, start_server, stop_server

GROUPS = {"de": "de-DE", "en": "en-US"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--database-url", default=None, help="PostgreSQL (a schema of its own)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="invite-language-bench-"))
    slack, awork = FakeSlack(), FakeAwork()
    for language, locale in GROUPS.items():
        for i in range(args.burst):
            slack.people[sender(language, i)] = {"locale": locale}
    awork_url, awork_server = awork.serve()
    store = {"INVITE_DATABASE_URL": _schema(args.database_url, "lang")} if args.database_url else {}
    env = serve_env(
        slack.url, awork_url, str(workdir / "bot.sqlite"), SECRET, TOKEN, "UAPPROVER", **store
    )
    port = free_port()
    process = start_server(env, port, workdir / "bot.log")
    p99: dict[str, list[float]] = {language: [] for language in GROUPS}
    p50: dict[str, list[float]] = {language: [] for language in GROUPS}
    try:
        for round_ in range(args.rounds + 1):
            order = list(GROUPS) if round_ % 2 else list(reversed(GROUPS))
            for language in order:
                time.sleep(1.5)  # the last burst's work after the ack (Slack posts) is done
                statuses, latencies = burst(
                    port,
                    args.burst,
                    lambda i, r=round_, g=language: f"{g}-{r}-{i}@elsewhere.example",
                    user=lambda i, g=language: sender(g, i),
                )
                assert all(code == 200 for code in statuses), statuses
                if round_ == 0:
                    continue  # the first time each person acts, their locale is looked up
                p99[language].append(percentile(latencies, 99))
                p50[language].append(percentile(latencies, 50))
        lookups = len(slack.of("users.info"))
        time.sleep(1.5)  # the last burst's answers (ephemerals after the ack) are out
        # What the last of each group was told: proof that each burst spoke its language.
        told = {
            g: next(
                (
                    c.args.get("text", "")
                    for c in reversed(slack.of("chat.postEphemeral"))
                    if c.args.get("user") == sender(g, args.burst - 1)
                ),
                "",
            ).splitlines()[:1]
            for g in GROUPS
        }
    finally:
        stop_server(process)
        awork_server.shutdown()
        slack.close()
    figures = {
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        "store": "postgresql" if args.database_url else "sqlitedict",
        "burst": args.burst,
        "rounds": args.rounds,
        "users.info calls": lookups,
        "senders": args.burst * len(GROUPS),
        "p50_ms": {g: round(statistics.median(v), 1) for g, v in p50.items()},
        "p99_ms": {g: round(statistics.median(v), 1) for g, v in p99.items()},
        "told": {g: (line[0][:110] if line else "") for g, line in told.items()},
    }
    ratio = statistics.median(p99["de"]) / statistics.median(p99["en"])
    figures["p99_ratio_de_to_en"] = round(ratio, 3)
    print(json.dumps(figures, indent=2, ensure_ascii=False))
    print("target (German p99 <= 1.05x English):", "met" if ratio <= 1.05 else "NOT met")


def sender(language: str, i: int) -> str:
    return f"U{language.upper()}{i:04d}"


if __name__ == "__main__":
    main()
