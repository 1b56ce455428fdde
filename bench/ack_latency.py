"""Ack latency of `/invite` opening the form under a burst while awork is slow, and pickers.

Starts the real `invite-bot serve --http` and, served the same way, the floor (bench/floor.py:
a bare Bolt app on the bot's waitress set-up that acks inline, imports nothing of the bot and
opens the same form after the ack) and a naive handler that calls awork before acking
(bench/baselines.py), against loopback fakes of Slack and awork; sends signed requests, prints
the figures. Every other hot path, memory and start-up against the floor: bench/hot_paths.py.
Also the burst sender the other benchmarks use (`burst`).
Run: .venv/bin/python bench/ack_latency.py [--burst 40] [--awork-delay 1.5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.awork import FakeAwork
from tests.fakes.slack import FakeSlack
from tests.serving import free_port, serve_env, start_server, stop_server
from tests.slack_requests import SlackDriver, fixture

SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench-token"


def timed_post(client: httpx.Client, port: int, body: str) -> tuple[httpx.Response, float]:
    """A Slack-signed POST to /slack/events and how long the answer took, in milliseconds."""
    ts = str(int(time.time()))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body),
    }
    started = time.perf_counter()
    response = client.post(f"http://127.0.0.1:{port}/slack/events", content=body, headers=headers)
    return response, (time.perf_counter() - started) * 1000


def signed_post(client: httpx.Client, port: int, body: str) -> tuple[int, float]:
    response, ms = timed_post(client, port, body)
    return response.status_code, ms


def burst(
    port: int,
    count: int,
    text=lambda i: "",
    body=None,
    user=lambda i: f"U{i:04d}",
) -> tuple[list[int], list[float]]:
    """`count` signed /invite sent at once, each on its own open keep-alive connection, by one
    thread with a selector: the figures are the server's, not a client's thread pool's (40
    threads of an HTTP client take 50-70 ms to get 40 requests out on two cores). `text(i)`:
    the command's text of the i-th (default: none, the form); `body(i)`: instead of a
    command, the i-th request's body and content type; `user(i)`: who sends the i-th."""
    driver = SlackDriver(None, SECRET)
    connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    try:
        for sock in connections:  # warm: each connection has been accepted and served once
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n")
            read_response(sock)
        requests = []
        for i in range(count):
            content_type = "application/x-www-form-urlencoded"
            if body is not None:
                raw, content_type = body(i)
            else:
                raw = driver.command_body(text(i), user=user(i)).encode()
            ts = str(int(time.time()))
            signature = SignatureVerifier(SECRET).generate_signature(
                timestamp=ts, body=raw.decode()
            )
            requests.append(
                b"POST /slack/events HTTP/1.1\r\nHost: b\r\n"
                + f"Content-Type: {content_type}\r\n".encode()
                + f"X-Slack-Request-Timestamp: {ts}\r\nX-Slack-Signature: {signature}\r\n".encode()
                + f"Content-Length: {len(raw)}\r\n\r\n".encode()
                + raw
            )
        selector = selectors.DefaultSelector()
        sent: dict[socket.socket, float] = {}
        for sock, request in zip(connections, requests, strict=True):
            sent[sock] = time.perf_counter()
            sock.sendall(request)
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, bytearray())
        statuses, latencies = [], []
        while len(latencies) < count:
            for key, _ in selector.select(timeout=30):
                buffer = key.data
                buffer += key.fileobj.recv(65536)
                done = complete_response(buffer)
                if done is not None:
                    latencies.append((time.perf_counter() - sent[key.fileobj]) * 1000)
                    statuses.append(done)
                    selector.unregister(key.fileobj)
        return statuses, latencies
    finally:
        for sock in connections:
            sock.close()


def read_response(sock: socket.socket) -> int:
    buffer = bytearray()
    while (status := complete_response(buffer)) is None:
        buffer += sock.recv(65536)
    return status


def complete_response(buffer: bytearray) -> int | None:
    """The status code once `buffer` holds a whole HTTP response (with Content-Length)."""
    head, sep, rest = bytes(buffer).partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        (
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length:")
        ),
        0,
    )
    return int(lines[0].split()[1]) if len(rest) >= length else None


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def rss_mb(pid: int) -> float:
    total = 0
    for candidate in [
        pid,
        *[int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()],
    ]:
        for line in Path(f"/proc/{candidate}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", type=int, default=40)
    parser.add_argument("--awork-delay", type=float, default=1.5)
    parser.add_argument("--pickers", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--slack-delay", type=float, default=0.0, help="seconds every Slack call takes"
    )
    args = parser.parse_args()
    figures = measure(args.burst, args.awork_delay, args.pickers, args.rounds, args.slack_delay)
    print(json.dumps(figures, indent=2))
    picker = figures["picker"]
    ok = (
        figures["bot"]["acked_200"] == args.burst * args.rounds
        and figures["bot"]["forms_opened_within_3s"] == args.burst * args.rounds
        and figures["p99_ratio_bot_to_floor"] <= 1.2
        and statistics.median(figures["bot"]["p99_per_round_ms"]) <= 50
        and max(v["max_ms"] for v in picker.values()) < 1000
    )
    print(
        "targets (all acked and opened; p99 <= 1.2x the floor's and <= 50 ms; pickers < 1 s):",
        "met" if ok else "NOT met",
    )


def picker_request(client: httpx.Client, port: int, query: str) -> tuple[int, float, int]:
    """One role-picker options load: status, milliseconds, how many options came back."""
    payload = fixture("block_suggestion_external_select_bolt.json")["payload"]
    body = urlencode(
        {
            "payload": json.dumps(
                {**payload, "action_id": "roleId", "block_id": "roleId", "value": query}
            )
        }
    )
    response, ms = timed_post(client, port, body)
    options = len(response.json().get("options", [])) if response.content else 0
    return response.status_code, ms, options


def measure_pickers(awork_delay: float = 1.5, count: int = 20) -> dict[str, object]:
    """Picker latency on a fresh store with awork slow: cold (nothing cached yet: the picker
    answers at once, and the cache fills in the background), then warm."""
    slack, awork = FakeSlack(), FakeAwork()
    awork.delay = awork_delay
    awork_url, awork_server = awork.serve()
    workdir = Path(tempfile.mkdtemp(prefix="invite-pickers-"))
    env = serve_env(slack.url, awork_url, str(workdir / "p.sqlite"), SECRET, TOKEN, "UAPPROVER")
    port = free_port()
    process = start_server(env, port, workdir / "bot.log")
    started = time.monotonic()
    figures: dict[str, object] = {}
    try:
        with httpx.Client(timeout=10) as client:
            cold = [picker_request(client, port, "") for _ in range(count)]
            warm_at = None
            while warm_at is None and time.monotonic() - started < 30:
                if picker_request(client, port, "")[2]:
                    warm_at = time.monotonic() - started
                else:
                    time.sleep(0.05)
            warm = [picker_request(client, port, "m" if i % 2 else "") for i in range(count)]
        for label, runs in (("cold", cold), ("warm", warm)):
            times = [ms for _, ms, _ in runs]
            figures[label] = {
                "p50_ms": round(statistics.median(times), 1),
                "max_ms": round(max(times), 1),
                "options": max(options for _, _, options in runs),
            }
        figures["cache_warm_after_s"] = round(warm_at, 2) if warm_at else None
    finally:
        stop_server(process)
        awork_server.shutdown()
        slack.close()
    return figures


def baseline(kind: str, env: dict[str, str], workdir: Path) -> tuple[subprocess.Popen, int]:
    """The floor (bench/floor.py) or the naive handler (bench/baselines.py), started."""
    port = free_port()
    here = Path(__file__).parent
    command = (
        [sys.executable, str(here / "floor.py"), str(port)]
        if kind == "floor"
        else [sys.executable, str(here / "baselines.py"), kind, str(port)]
    )
    return start_server(env, port, workdir / f"{kind}.log", command), port


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
    }


def measure(
    burst_size: int = 40,
    awork_delay: float = 1.5,
    pickers: int = 20,
    rounds: int = 3,
    slack_delay: float = 0.0,
) -> dict:
    """Ack latency of a burst of /invite with awork slow - the bot, the floor and a naive
    handler that calls awork first, all served the same way, the bot's and the floor's bursts
    interleaved - then pickers while awork is slow and down."""
    slack, awork = FakeSlack(), FakeAwork()
    awork_url, awork_server = awork.serve()
    workdir = Path(tempfile.mkdtemp(prefix="invite-bench-"))
    env = serve_env(slack.url, awork_url, str(workdir / "bench.sqlite"), SECRET, TOKEN, "UAPPROVER")
    figures: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    }
    port = free_port()
    process = start_server(env, port, workdir / "bot.log")
    floor, floor_port = baseline("floor", env, workdir)
    try:
        time.sleep(1.5)  # the cache fills while awork is fast; then everything idles
        awork.delay = awork_delay
        slack.delay = slack_delay  # how long every Slack call takes (views.open included)
        for target in (port, floor_port):  # one burst each first, not counted: code paths warm
            burst(target, burst_size)
            slack.wait_for("views.open", burst_size, timeout=30)
            slack.calls.clear()
        runs: dict[str, list[float]] = {"bot": [], "floor": []}
        acked = {"bot": 0, "floor": 0}
        opened = {"bot": 0, "floor": 0}  # forms open within a trigger's 3 s of the burst
        last_form: dict[str, list[float]] = {"bot": [], "floor": []}
        for _ in range(rounds):
            for label, target in (("bot", port), ("floor", floor_port)):
                slack.calls.clear()
                sent = time.monotonic()
                statuses, latencies = burst(target, burst_size)
                forms = slack.wait_for("views.open", burst_size, timeout=30)
                opened[label] += sum(1 for call in forms if call.at - sent < 3.0)
                last_form[label].append((max(call.at for call in forms) - sent) * 1000)
                runs[label].append(percentile(latencies, 99))
                acked[label] += statuses.count(200)
                figures.setdefault(f"{label}_latencies", []).extend(latencies)
        for label in ("bot", "floor"):
            all_ms = figures.pop(f"{label}_latencies")
            figures[label] = {
                **summary(all_ms),
                "p99_per_round_ms": [round(v, 1) for v in runs[label]],
                "acked_200": acked[label],
                "forms_opened_within_3s": opened[label],
                "last_form_opened_ms": [round(v) for v in last_form[label]],
            }
        # Pickers while awork is slow, then while it is down.
        picker = {}
        for label in ("awork_slow", "awork_down"):
            awork.down = label == "awork_down"
            times = []
            with httpx.Client(timeout=10) as client:
                for i in range(pickers):
                    status, ms, _ = picker_request(client, port, "m" if i % 2 else "")
                    assert status == 200
                    times.append(ms)
            picker[label] = {
                "p50_ms": round(statistics.median(times), 1),
                "max_ms": round(max(times), 1),
            }
        figures["picker"] = picker
        awork.down = False
    finally:
        stop_server(process)
        stop_server(floor)

    # The naive handler, same server, same burst, same slow awork.
    naive, naive_port = baseline("naive", env, workdir)
    try:
        statuses, latencies = burst(naive_port, burst_size)
        figures["naive_baseline"] = {"acked_200": statuses.count(200), **summary(latencies)}
    finally:
        stop_server(naive)
        awork_server.shutdown()
        slack.close()

    bot_p99 = statistics.median(runs["bot"])
    floor_p99 = statistics.median(runs["floor"])
    figures["p99_ratio_bot_to_floor"] = round(bot_p99 / floor_p99, 3)
    figures["p99_ratio_bot_to_naive"] = round(
        figures["bot"]["p99_ms"] / figures["naive_baseline"]["p99_ms"], 3
    )
    return figures


if __name__ == "__main__":
    main()
