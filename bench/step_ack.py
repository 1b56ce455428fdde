"""The Workflow Builder step's ack against the other acks: bursts of `function_executed` runs of
`invite_to_awork` and of inline `/invite a@x` (both store a request before the answer) sent to
the same real `invite-bot serve --http`, alternating, each burst after the last one's work has
settled. Target: the step's p99 within 1.1x of the inline ask's.
Run: .venv/bin/python bench/step_ack.py [--burst 40] [--rounds 6]
"""

from __future__ import annotations

import argparse
import copy
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
from tests.fakes.awork import FakeAwork
from tests.fakes.slack import FakeSlack
from tests.serving import free_port, serve_env, start_server, stop_server
from tests.slack_requests import fixture

EVENT = fixture("function_executed_bolt_tests.json")["payload"]


def run_body(tag: str):
    """The i-th `function_executed` body of a burst: a run of our step for a new address."""

    def body(i: int) -> tuple[bytes, str]:
        event = copy.deepcopy(EVENT)
        event["event"].update(
            function={**event["event"]["function"], "callback_id": "invite_to_awork"},
            inputs={"email": f"{tag}-{i}@step.example", "requester": f"U{i:04d}"},
            function_execution_id=f"Fx{tag}{i:04d}",
        )
        return json.dumps(event).encode(), "application/json"

    return body


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="invite-step-bench-"))
    slack, awork = FakeSlack(), FakeAwork()
    awork_url, awork_server = awork.serve()
    env = serve_env(slack.url, awork_url, str(workdir / "s.sqlite"), SECRET, TOKEN, "UAPPROVER")
    port = free_port()
    process = start_server(env, port, workdir / "bot.log")
    p99: dict[str, list[float]] = {"inline": [], "step": []}
    p50: dict[str, list[float]] = {"inline": [], "step": []}
    try:
        for round_ in range(args.rounds):
            kinds = ["inline", "step"] if round_ % 2 else ["step", "inline"]
            for kind in kinds:
                time.sleep(1.5)  # the last burst's work after the ack (Slack posts) is done
                if kind == "step":
                    statuses, latencies = burst(port, args.burst, body=run_body(f"r{round_}"))
                else:
                    statuses, latencies = burst(
                        port, args.burst, lambda i, r=round_: f"r{r}-{i}@inline.example"
                    )
                assert all(code == 200 for code in statuses), statuses
                p99[kind].append(percentile(latencies, 99))
                p50[kind].append(percentile(latencies, 50))
    finally:
        stop_server(process)
        awork_server.shutdown()
        slack.close()
    ratio = statistics.median(p99["step"]) / statistics.median(p99["inline"])
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
                "burst": args.burst,
                "rounds": args.rounds,
                "p50_ms": {k: round(statistics.median(v), 1) for k, v in p50.items()},
                "p99_ms": {k: round(statistics.median(v), 1) for k, v in p99.items()},
                "p99_ratio_step_to_inline": round(ratio, 3),
            },
            indent=2,
        )
    )
    print("target (step p99 <= 1.1x inline):", "met" if ratio <= 1.1 else "NOT met")


if __name__ == "__main__":
    main()
