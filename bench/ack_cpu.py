"""Where an inline ask's ack spends its CPU: the floor's ack, the bot's, and the bot's with its
store call taken out - in one process, each ack timed on its own thread with
`time.thread_time()` (that thread's CPU alone: no waiting, no other thread's work).

A burst's p99 in bench/hot_paths.py is close to the CPU its 40 acks take under one
interpreter lock, so this says how far the bot's ack could come down, and the store's share
of it. The work after the acks is held back while they are timed - the bot's by the server's
AckGate, as in a burst, the floor's by keeping what it hands its pool - so nothing runs beside
them; each ack is `App.dispatch` of a signed request, as the server hands it over (the HTTP
server's own share is the same for the floor and the bot). Rounds alternate the three kinds,
and each figure is the median of all its timed acks.
The floor is bench/floor.py's app; the bot is the real one, on sqlitedict (and, with
`--database-url`, on PostgreSQL), with awork faked in-process and Slack on loopback.
Run: .venv/bin/python bench/ack_cpu.py [--asks 300] [--rounds 3] [--database-url URL]
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slack_bolt import App, BoltRequest

from bot.runtime import logs
from bot.runtime.app import Bot
from bot.runtime.deps import ACKS
from tests.conftest import SIGNING_SECRET, build_bot, make_settings
from tests.fakes.awork import FakeAwork
from tests.fakes.slack import FakeSlack
from tests.slack_requests import SlackDriver

WARM = 100  # acks of each kind before the timed ones (caches, the person's language)


def requests(asks: int, tag: str) -> list[tuple[str, dict]]:
    """Signed `/invite <address>` bodies with their headers, each address new."""
    driver = SlackDriver(None, SIGNING_SECRET)
    out = []
    for i in range(asks):
        body = driver.command_body(f"{tag}-{i}@example.com", user="UREQ")
        ts = str(int(time.time()))
        headers = {
            "content-type": ["application/x-www-form-urlencoded"],
            "x-slack-request-timestamp": [ts],
            "x-slack-signature": [driver.verifier.generate_signature(timestamp=ts, body=body)],
        }
        out.append((body, headers))
    return out


def _nothing() -> None:
    """Work after an ack that does nothing."""


def ack_cpu(app: App, asks: int, tag: str, bot: Bot | None = None) -> list[float]:
    """The CPU, in ms, of the calling thread for each of `asks` acks (after WARM untimed
    ones), with the work after them held back; then the bot's is let go and waited for, the
    floor's dropped, so the next measure starts clean."""
    spent = []
    bodies = requests(WARM + asks, tag)
    held: list = []
    if bot is None:  # the floor: what it hands its pool is kept, not run
        app.followups.submit = lambda *work, **kwargs: held.append(work)
    gc.collect()
    try:
        with ACKS.answering():  # the bot's work after the acks waits, as in a burst
            for i, (body, headers) in enumerate(bodies):
                started = time.thread_time()
                response = app.dispatch(BoltRequest(body=body, headers=headers))
                took = time.thread_time() - started
                if response.status != 200:
                    raise RuntimeError(f"{tag}: {response.status} {response.body}")
                if i >= WARM:
                    spent.append(took * 1000)
    finally:
        if bot is None:
            del app.followups.submit
    if bot is not None and not bot.deps.wait_idle(300):
        raise RuntimeError(f"{tag}: the work after the acks did not end")
    return spent


def measure(asks: int, rounds: int, database_url: str | None) -> dict:
    slack, awork = FakeSlack(), FakeAwork()
    os.environ.update(
        SLACK_BOT_TOKEN="xoxb-bench", SLACK_API_URL=slack.url, SLACK_SIGNING_SECRET=SIGNING_SECRET
    )
    from bench.floor import floor_app  # turns the collector off, as the servers start

    floor = floor_app(threads=8)
    workdir = Path(tempfile.mkdtemp(prefix="ack-cpu-"))
    stores = {"sqlitedict": {}}
    if database_url:
        stores["PostgreSQL"] = {"INVITE_DATABASE_URL": database_url}
    bots = {}
    # Logged as `serve` logs (its level, format and mask), into nothing: a log line is part
    # of an ack's cost.
    logging.basicConfig(stream=open(os.devnull, "w"))  # noqa: SIM115 - for the process's life
    for name, extra in stores.items():
        (workdir / name).mkdir()
        settings = make_settings(workdir / name, slack.url, **extra)
        logs.configure(settings)
        bot = build_bot(settings, awork.handler)
        bot.deps.catalog.refresh()
        bots[name] = bot
    gc.collect()
    gc.freeze()  # as the servers do once started (bot.runtime.app.started)
    gc.enable()
    patience, ACKS.patience = ACKS.patience, 3600.0  # held back until the acks are done
    spent: dict[str, list[float]] = {}
    try:
        for number in range(rounds):
            spent.setdefault("floor", []).extend(ack_cpu(floor, asks, f"floor{number}"))
            for name, bot in bots.items():
                tag = f"{name}{number}"
                spent.setdefault(f"bot, {name}", []).extend(ack_cpu(bot.app, asks, tag, bot))
                store = bot.store
                store.add = lambda record, *args, **kwargs: record  # the store call taken out
                # Its work after the ack is handed on as in a real ack, but it does nothing: on
                # a request never stored, each would wait its 10 s for a delivery lease.
                later = bot.deps.later
                object.__setattr__(bot.deps, "later", lambda *_, later=later: later(_nothing))
                try:
                    without = ack_cpu(bot.app, asks, tag + "-", bot)
                finally:
                    object.__delattr__(bot.deps, "later")
                spent.setdefault(f"bot, {name}, without its store call", []).extend(without)
                del store.add
    finally:
        ACKS.patience = patience
        for bot in bots.values():
            bot.shutdown(timeout=10)
        slack.close()
    figures = {name: statistics.median(values) for name, values in spent.items()}
    base = figures["floor"]
    return {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "asks": asks,
        "rounds": rounds,
        "ack_cpu_ms": {name: round(ms, 3) for name, ms in figures.items()},
        "to_floor": {name: round(ms / base, 2) for name, ms in figures.items() if name != "floor"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asks", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("INVITE_BENCH_DATABASE_URL"))
    args = parser.parse_args()
    print(json.dumps(measure(args.asks, args.rounds, args.database_url), indent=2))


if __name__ == "__main__":
    main()
