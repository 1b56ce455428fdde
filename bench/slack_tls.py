"""What a Slack Web API call costs over https: the bot's client (one TLS context for the whole
process, bot/runtime/outbound.py) against slack_sdk's WebClient as it comes (urllib makes a
context, loading the CA store, for every connection, and slack_sdk connects for every call).

Slack is faked on loopback over TLS (tests/fakes/slack.py, a certificate from a test CA);
SSL_CERT_FILE is the system's CA store with that CA added, so that loading it costs what the
system's store costs (the store Slack's real certificate is checked against); both make the same
`chat.postMessage` calls, rounds alternating. Each call is timed as the calling thread's CPU
(`time.thread_time()`) and as wall time; figures are medians of all calls.
Run: .venv/bin/python bench/slack_tls.py [--calls 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trustme
from slack_sdk import WebClient

from bot.runtime import slack_clients
from tests.conftest import make_settings
from tests.fakes.slack import FakeSlack


def timed_calls(client: WebClient, calls: int) -> tuple[list[float], list[float]]:
    """CPU and wall time, in ms, of each of `calls` chat.postMessage calls."""
    cpu, wall = [], []
    for i in range(calls):
        started, started_cpu = time.perf_counter(), time.thread_time()
        client.chat_postMessage(channel="C1", text=f"call {i}")
        cpu.append((time.thread_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    return cpu, wall


def measure(calls: int, rounds: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="slack-tls-") as workdir:
        return measured(Path(workdir), calls, rounds)


def measured(workdir: Path, calls: int, rounds: int) -> dict:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    system = Path(ssl.get_default_verify_paths().cafile or "")
    bundle = (system.read_bytes() if system.is_file() else b"") + ca.cert_pem.bytes()
    (workdir / "ca.pem").write_bytes(bundle)
    os.environ["SSL_CERT_FILE"] = str(workdir / "ca.pem")
    slack = FakeSlack(tls=server)
    try:
        clients = {
            "bot": slack_clients.slack_client(make_settings(workdir, slack.url)),
            "slack_sdk as it comes": WebClient(token="xoxb-bench", base_url=slack.url),
        }
        spent: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in clients}
        for client in clients.values():
            timed_calls(client, 5)  # connections and caches warm
        for number in range(rounds):
            order = list(clients.items())
            for name, client in order if number % 2 == 0 else order[::-1]:
                cpu, wall = timed_calls(client, calls)
                spent[name][0].extend(cpu)
                spent[name][1].extend(wall)
                slack.calls.clear()
    finally:
        slack.close()
    figures = {
        name: {
            "cpu_ms": round(statistics.median(cpu), 3),
            "wall_ms": round(statistics.median(wall), 3),
        }
        for name, (cpu, wall) in spent.items()
    }
    base = figures["slack_sdk as it comes"]
    return {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "calls": calls * rounds,
        "ca_store_certificates": bundle.count(b"BEGIN CERTIFICATE"),
        "per_call": figures,
        "bot_to_slack_sdk": {
            "cpu": round(figures["bot"]["cpu_ms"] / base["cpu_ms"], 3),
            "wall": round(figures["bot"]["wall_ms"] / base["wall_ms"], 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(measure(args.calls, args.rounds), indent=2))


if __name__ == "__main__":
    main()
