"""A bulk request of 500 against an awork stand-in limited to 50 requests/s.

Starts the real server (`invite-bot serve --http`) against the loopback fakes: awork answers 429
with `ratelimit-reset` past 50 calls in any second (and 1,000 in any minute), and takes
`--latency` per call like a real network. A CSV of N people is attached to the /invite bulk form,
"Approve all N" is clicked, and the time until the summary is on the approval message is
compared with the limit's own bound (N / 50 s). Also printed: duplicates, lost invitations and
the share of awork calls answered 429.
Run: .venv/bin/python bench/bulk_throughput.py [--people 500] [--latency 0.03]
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot import bulk_blocks
from tests import serving
from tests.fakes.awork import FakeAwork
from tests.fakes.slack import FakeSlack
from tests.slack_requests import fixture, state_for

SECRET = "bench-signing-secret"
APPROVER = "UAPPROVER"


def bulk_submission(slack: FakeSlack, people: int) -> str:
    content = "email,first name,last name\n" + "".join(
        f"person{i:04d}@example.com,Person,{i:04d}\n" for i in range(people)
    )
    slack.files["people.csv"] = content.encode()
    files = [
        {
            "id": "F0BENCH",
            "name": "people.csv",
            "filetype": "csv",
            "size": len(content),
            "url_private": slack.file_url("people.csv"),
            "url_private_download": slack.file_url("people.csv"),
        }
    ]
    view = bulk_blocks.bulk_form("CGENERAL")
    payload = fixture("view_submission_real_capture_slack_machine.json")["payload"]
    payload["user"]["id"] = "UREQ"
    payload["view"] = {
        **payload["view"],
        **view,
        "state": {"values": state_for(view, {"people_file": files})},
    }
    return serving.interactive(payload)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--per-second", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.03, help="awork's time per call (s)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="invite-bulk-"))
    slack, awork = FakeSlack(), FakeAwork()
    awork.rate_limit = (args.per_second, 1000)
    awork.delay = args.latency
    awork_url, awork_server = awork.serve()
    env = serving.serve_env(
        slack.url,
        awork_url,
        str(workdir / "bulk.sqlite"),
        SECRET,
        "xoxb-bench",
        APPROVER,
        INVITE_SWEEP_SECONDS="3600",
        AWORK_RATE_PER_SECOND=str(args.per_second),
    )
    port = serving.free_port()
    process = serving.start_server(env, port, workdir / "serve.log")
    try:
        submitted = serving.post_signed(port, bulk_submission(slack, args.people), SECRET)
        assert submitted.status_code == 200 and not submitted.text, submitted.text
        post = slack.wait_for(
            "chat.postMessage",
            timeout=30,
            where=lambda c: c.args["channel"] == "CADMIN" and "people" in c.args["text"],
        )[0]
        batch_id = next(b for b in post.args["blocks"] if b["type"] == "actions")["elements"][0][
            "value"
        ]
        time.sleep(0.5)  # the message reference is stored, the catalog is warm
        calls_before = len(awork.requests)
        limited_before = awork.rate_limited
        started = time.monotonic()
        click = serving.button_click("approve_invite", batch_id, APPROVER)
        assert serving.post_signed(port, click, SECRET).status_code == 200
        summary = f"{args.people} invited"
        # A light poll: this process also plays awork, whose arrival times must not be skewed.
        seen, finished = 0, None
        while finished is None and time.monotonic() - started < 600:
            time.sleep(0.05)
            updates = slack.of("chat.update")
            for call in updates[seen:]:
                if summary in json.dumps(call.args.get("blocks") or []):
                    finished = call.at
            seen = len(updates)
        assert finished is not None, "no summary"
        elapsed = finished - started
        progress = [
            c
            for c in slack.of("chat.update")
            if f"of {args.people}* done" in json.dumps(c.args.get("blocks") or [])
        ]
    finally:
        serving.stop_server(process)
        awork_server.shutdown()
        slack.close()
    created = collections.Counter(i["body"]["email"] for i in awork.invitations)
    calls = len(awork.requests) - calls_before
    limited = awork.rate_limited - limited_before
    bound = args.people / args.per_second
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(progress)]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"bulk of {args.people}, awork limited to {args.per_second}/s, {args.latency * 1000:.0f} ms a call"
    )
    print(
        f"  done in {elapsed:.2f} s; the limit's bound is {bound:.1f} s: ratio {elapsed / bound:.2f}"
    )
    print(
        f"  invited {len(created)}, duplicates {sum(n - 1 for n in created.values())}, "
        f"lost {args.people - len(created)}"
    )
    print(f"  awork calls {calls}, answered 429: {limited} ({100 * limited / max(calls, 1):.1f} %)")
    print(f"  progress updates {len(progress)}, closest two {min(gaps, default=0):.2f} s apart")
    posts = [
        at
        for request, at in zip(awork.requests, awork.arrivals, strict=True)
        if request.method == "POST" and at >= started
    ]
    limited_at = [at - posts[0] for at in awork.limited_at if at >= started]
    print(
        f"  phases: click to first POST {posts[0] - started:.2f} s, POSTs {posts[-1] - posts[0]:.2f} s"
        f" (429s at: {', '.join(f'{t:.1f} s' for t in limited_at) or 'none'}), "
        f"last POST to summary {finished - posts[-1]:.2f} s"
    )


if __name__ == "__main__":
    main()
