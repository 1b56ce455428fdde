"""A bulk request of 500 against an awork stand-in limited to 50 requests/s.

Starts the real server (`invite-bot serve --http`) with Slack faked on loopback and awork played
by `invite-bot sandbox` in its own process (`--awork sandbox`, the default) or by the test fake
with `--latency` per call (`--awork fake`); either answers 429 with `ratelimit-reset` past 50
calls in any second (and 1,000 in a minute). A CSV of N people is attached to the /invite bulk
form, "Approve all N" is clicked, and the time until the summary is on the approval message is
compared with the limit's own bound (N / 50 s). Also: duplicates, lost invitations, 429s.
Run: .venv/bin/python bench/bulk_throughput.py [--people 500] [--awork sandbox|fake]
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.ui import bulk_blocks
from tests import serving
from tests.fakes.awork import FakeAwork
from tests.fakes.slack import FakeSlack
from tests.slack_requests import fixture, state_for

SECRET = "bench-signing-secret"
APPROVER = "UAPPROVER"


def bulk_submission(people: int) -> str:
    """The bulk form submitted with `people` lines in its list field. (Slack caps what a person
    can paste there; a list this long would come as an attached CSV, which the bot downloads
    from https://files.slack.com only - out of reach here - and parses the same way.)"""
    content = "email,first name,last name\n" + "".join(
        f"person{i:04d}@example.com,Person,{i:04d}\n" for i in range(people)
    )
    view = bulk_blocks.bulk_form("CGENERAL")
    payload = fixture("view_submission_real_capture_slack_machine.json")["payload"]
    payload["user"]["id"] = "UREQ"
    payload["view"] = {
        **payload["view"],
        **view,
        "state": {"values": state_for(view, {bulk_blocks.PEOPLE: content})},
    }
    return serving.interactive(payload)


class SandboxServer:
    """`invite-bot sandbox` as its own process: awork's rules and rate limit over HTTP."""

    def __init__(self, workdir: Path, per_second: int) -> None:
        self.port = serving.free_port()
        self.process = subprocess.Popen(
            [str(serving.SCRIPT), "sandbox", "--port", str(self.port),
             "--db", str(workdir / "awork-sandbox.sqlite"),
             "--per-second", str(per_second), "--seats", "100000"],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self.process.stdout.readline()  # "awork sandbox at …": listening
        self.url = f"http://127.0.0.1:{self.port}/api/v1"

    def members(self) -> list[str]:
        for _ in range(10):  # right after a run the sandbox's rate limit may still be full
            response = httpx.get(f"{self.url}/users", params={"pageSize": 1000}, timeout=10)
            if response.status_code != 429:
                break
            time.sleep(1)
        users = response.json()
        return [c["value"] for u in users for c in u["userContactInfos"] if c["type"] == "email"]

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def measure(
    people: int = 500,
    per_second: int = 50,
    latency: float = 0.03,
    stand_in: str = "sandbox",
    replicas: int = 1,
    database_url: str | None = None,
) -> dict[str, object]:
    """Approve a bulk of `people` against awork limited to `per_second` calls: the sandbox
    server (`invite-bot sandbox`), or the test fake with `latency` per call (`fake`). With
    `replicas` > 1 (and `database_url`), that many servers share a PostgreSQL store: the list
    is sent to the first, "Approve all" to the last."""
    workdir = Path(tempfile.mkdtemp(prefix="invite-bulk-"))
    slack = FakeSlack()
    fake = sandbox = None
    if stand_in == "fake":
        fake = FakeAwork()
        fake.rate_limit = (per_second, 1000)
        fake.delay = latency
        awork_url, awork_server = fake.serve()
    else:
        sandbox = SandboxServer(workdir, per_second)
        awork_url = sandbox.url
    env = serving.serve_env(
        slack.url,
        awork_url,
        str(workdir / "bulk.sqlite"),
        SECRET,
        "xoxb-bench",
        APPROVER,
        INVITE_SWEEP_SECONDS="3600",
        AWORK_RATE_PER_SECOND=str(per_second),
        **({"INVITE_DATABASE_URL": database_url} if database_url else {}),
    )
    ports = [serving.free_port() for _ in range(replicas)]
    log = workdir / "serve.log"
    processes = [serving.start_server(env, p, log) for p in ports]
    port = ports[0]
    try:
        submitted = serving.post_signed(port, bulk_submission(people), SECRET)
        assert submitted.status_code == 200 and not submitted.text, submitted.text
        batch_id = serving.approval_id_for(slack, "people", timeout=30)
        time.sleep(0.5)  # the message reference is stored, the catalog is warm
        started = time.monotonic()
        click = serving.button_click("approve_invite", batch_id, APPROVER)
        assert serving.post_signed(ports[-1], click, SECRET).status_code == 200
        summary = f"{people} invited"
        # A light poll: this process may also play awork, whose arrival times must not be skewed.
        seen, finished, final = 0, None, ""
        while finished is None and time.monotonic() - started < 600:
            time.sleep(0.05)
            updates = slack.of("chat.update")
            for call in updates[seen:]:
                blocks = json.dumps(call.args.get("blocks") or [])
                if " invited" in blocks and "Approved by" in blocks and "done" not in blocks:
                    final = blocks
                if summary in blocks:
                    finished = call.at
            seen = len(updates)
        assert finished is not None, f"no summary: {final[-300:]}"
        progress = [
            c
            for c in slack.of("chat.update")
            if f"of {people}* done" in json.dumps(c.args.get("blocks") or [])
        ]
        if sandbox is not None:
            invited = collections.Counter(e for e in sandbox.members() if e.startswith("person"))
        else:
            invited = collections.Counter(i["body"]["email"] for i in fake.invitations)
    finally:
        for process in processes:
            serving.stop_server(process)
        if sandbox is not None:
            sandbox.close()
        else:
            awork_server.shutdown()
        slack.close()
    bound = people / per_second
    retried_429 = log.read_text().count(": 429, retrying")
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(progress)]
    return {
        "replicas": replicas,
        "store": "postgresql" if database_url else "sqlite",
        "stand_in": "invite-bot sandbox"
        if sandbox
        else f"test fake, {latency * 1000:.0f} ms a call",
        "people": people,
        "per_second": per_second,
        "seconds": round(finished - started, 2),
        "bound_seconds": bound,
        "ratio_to_bound": round((finished - started) / bound, 2),
        "invited": len(invited),
        "duplicates": sum(n - 1 for n in invited.values()),
        "lost": people - len(invited),
        "answered_429": retried_429,
        "share_429_percent": round(100 * retried_429 / (people + retried_429), 2),
        "progress_updates": len(progress),
        "closest_progress_gap_s": round(min(gaps, default=0), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--per-second", type=int, default=50)
    parser.add_argument("--awork", choices=("sandbox", "fake"), default="sandbox")
    parser.add_argument("--latency", type=float, default=0.03, help="the fake's time per call (s)")
    args = parser.parse_args()
    figures = measure(args.people, args.per_second, args.latency, args.awork)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
