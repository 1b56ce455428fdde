"""Starting the real `invite-bot serve` process against loopback fakes (tests and benchmarks)."""

from __future__ import annotations

import compileall
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bot.runtime.allocator import TUNABLES
from tests.fakes.awork import API_KEY

SCRIPT = Path(sys.executable).parent / "invite-bot"

# A work lease of 1 + 1 + 1 s (awork's connect, write and read timeouts) + 1 s of margin: a
# server started after a kill takes the dead one's work over within seconds. A slow awork
# answers in SLOW seconds, within AWORK_TIMEOUT. A POST the test kills the bot during takes
# IN_FLIGHT seconds: it ends before the lease does, and after a restarted server could first
# act - one that took over before the lease ran out would send a second invitation.
# The settle window is shorter than the lease: a takeover comes after the dead holder's last
# send by a lease, so finding nobody it sends at once (the lease covered the POST in flight).
SHORT_LEASE = {"AWORK_TIMEOUT": "1", "INVITE_LEASE_MARGIN": "1", "INVITE_SETTLE_SECONDS": "3"}
LEASE = 4.0
SLOW = 0.5
IN_FLIGHT = 3.0
# Half that, for crash tests where awork is slow only for the POST the test kills the bot
# during (after the restart it answers at once): a lease of 2 s, a POST of 1.4 s in flight.
QUICK_LEASE = {"AWORK_TIMEOUT": "0.5", "INVITE_LEASE_MARGIN": "0.5", "INVITE_SETTLE_SECONDS": "2"}
QUICK_IN_FLIGHT = 1.4


def busiest_second(arrivals: list[float]) -> int:
    """The most of these times that fall in any one second (a gateway's sliding window)."""
    times = sorted(arrivals)
    return max((sum(1 for t in times[i:] if t < s + 1.0) for i, s in enumerate(times)), default=0)


def compiled() -> None:
    """The bot's modules compiled to bytecode beside their sources, as `pip install` leaves
    them in the image: where PYTHONDONTWRITEBYTECODE is set (as on these machines) every
    `invite-bot` process would otherwise compile them from source as it starts."""
    root = Path(__file__).resolve().parents[1]
    for package in ("bot", "handlers"):
        if not compileall.compile_dir(root / package, quiet=1):
            raise RuntimeError(f"{package} does not compile")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_env(
    slack_url: str,
    awork_url: str,
    db_path: str,
    signing_secret: str,
    bot_token: str,
    approvers: str,
    **extra: str,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AWORK_", "INVITE_"))}
    env.update(
        # As the image sets it (Dockerfile): `serve` then starts once, not once more to turn
        # glibc's thread caches off (bot/runtime/allocator.py; tests/test_lean_start.py starts it so).
        GLIBC_TUNABLES=TUNABLES,
        SLACK_BOT_TOKEN=bot_token,
        SLACK_SIGNING_SECRET=signing_secret,
        SLACK_API_URL=slack_url,
        AWORK_API_URL=awork_url,
        AWORK_API_KEY=API_KEY,
        INVITE_ADMIN_CHANNEL="CADMIN",
        INVITE_APPROVERS=approvers,
        INVITE_DB_PATH=db_path,
        **extra,
    )
    return env


def start_server(
    env: dict[str, str], port: int, log_path: Path, command: list[str] | None = None
) -> subprocess.Popen:
    """Start `invite-bot serve --http` and wait until /healthz answers."""
    process = launch(env, port, log_path, command)
    wait_healthy(process, port, log_path)
    return process


def start_servers(
    env: dict[str, str], ports: list[int], log_dir: Path, name: str = "serve"
) -> list[subprocess.Popen]:
    """Start one server per port at once, each logging to `<log_dir>/<name>-<port>.log`, and
    wait until all of them answer."""
    logs = [log_dir / f"{name}-{port}.log" for port in ports]
    processes = [launch(env, port, log) for port, log in zip(ports, logs, strict=True)]
    for process, port, log in zip(processes, ports, logs, strict=True):
        wait_healthy(process, port, log)
    return processes


def launch(
    env: dict[str, str], port: int, log_path: Path, command: list[str] | None = None
) -> subprocess.Popen:
    """Start `invite-bot serve --http` (or `command`) in its own process group, logging to
    `log_path`, without waiting for it."""
    command = command or [
        str(SCRIPT),
        "serve",
        "--http",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log = log_path.open("ab")
    # Own process group, so a kill reaches the server and anything it started.
    return subprocess.Popen(
        command,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=log_path.parent,
        start_new_session=True,
    )


def wait_healthy(process: subprocess.Popen, port: int, log_path: Path) -> None:
    """Wait until the server's /healthz answers; raise with its log if it exits or never does."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {log_path.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.02)  # a start takes ~0.5 s: looked at often, it is seen at once
    process.kill()
    raise RuntimeError(f"server did not start: {log_path.read_text()}")


def wait_for(check: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `check` until it is true; fail saying `what` was waited for after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def wait_for_approval_message(store, record_id: str, timeout: float = 10) -> None:
    """Wait until the server has stored where it posted `record_id`'s approval message (which a
    click then updates)."""
    wait_for(
        lambda: getattr(store.read(record_id), "approval_message", None) is not None,
        timeout,
        f"{record_id}'s approval message to be stored",
    )


def kill_server(process: subprocess.Popen) -> None:
    """kill -9 the whole server (master and worker), as a crash or an OOM kill would."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def post_signed(
    port: int, body: str, secret: str, client: httpx.Client | None = None, signed: bool = True
) -> httpx.Response:
    """POST a Slack-signed form body to a running server's /slack/events."""
    from slack_sdk.signature import SignatureVerifier

    ts = str(int(time.time()))
    signature = (
        SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
        if signed
        else "v0=bad"
    )
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }
    return (client or httpx).post(
        f"http://127.0.0.1:{port}/slack/events", content=body, headers=headers, timeout=30
    )


def interactive(payload: dict) -> str:
    import json
    from urllib.parse import urlencode

    return urlencode({"payload": json.dumps(payload)})


def form_submission(email: str, user: str = "UREQ", channel: str = "CGENERAL") -> str:
    """A view_submission of the invite form, shaped like the captured payload."""
    from bot.ui import forms
    from tests.slack_requests import fixture, state_for

    view = forms.invite_form(channel, advanced=False)
    payload = fixture("view_submission_real_capture_slack_machine.json")["payload"]
    payload["user"]["id"] = user
    payload["view"] = {
        **payload["view"],
        **view,
        "state": {"values": state_for(view, {"email": email})},
    }
    return interactive(payload)


def button_click(action_id: str, request_id: str, user: str) -> str:
    """A block_actions click on an approval message button, shaped like the captured payload."""
    from tests.slack_requests import fixture

    payload = fixture("block_actions_message_button_real_capture_slack_machine.json")["payload"]
    payload["user"]["id"] = user
    payload["actions"] = [
        {
            "action_id": action_id,
            "block_id": f"decide-{request_id}",
            "type": "button",
            "value": request_id,
            "action_ts": str(time.time()),
        }
    ]
    return interactive(payload)


def approval_id_for(slack, text: str, timeout: float = 15) -> str:
    """The request (or batch) id on the approval message whose text has `text` (an email,
    "40 people")."""
    post = slack.wait_for(
        "chat.postMessage",
        timeout=timeout,
        where=lambda c: c.args["channel"] == "CADMIN" and text in c.args["text"],
    )[0]
    return next(b for b in post.args["blocks"] if b["type"] == "actions")["elements"][0]["value"]


def command_submission(text: str, user: str = "UREQ", channel: str = "CGENERAL") -> str:
    """A `/invite <text>` slash command, shaped like the captured payload."""
    from urllib.parse import urlencode

    from tests.slack_requests import fixture

    payload = fixture("slash_command_bolt_tests.json")["payload"]
    payload.update(command="/invite", text=text, user_id=user, channel_id=channel)
    payload["trigger_id"] = f"trig.{time.monotonic_ns()}"
    return urlencode(payload)
