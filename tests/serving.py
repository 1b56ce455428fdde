"""Starting the real `invite-bot serve` process against loopback fakes (tests and benchmarks)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fakes.awork import API_KEY

SCRIPT = Path(sys.executable).parent / "invite-bot"


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
    # Own process group, so a kill reaches gunicorn's master and worker alike.
    process = subprocess.Popen(
        command,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=log_path.parent,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {log_path.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start: {log_path.read_text()}")


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
