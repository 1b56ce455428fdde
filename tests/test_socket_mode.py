"""`invite-bot serve --socket`: Bolt's SocketModeHandler against a loopback Socket Mode server."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest
from websockets.sync.server import serve

from tests.conftest import BOT_TOKEN
from tests.serving import SCRIPT, free_port
from tests.slack_requests import fixture

pytestmark = pytest.mark.timeout(60)


class SocketModeServer:
    """Says hello, sends each queued envelope, pings, and records the acks that come back."""

    def __init__(self, envelopes: list[dict]) -> None:
        self.envelopes = envelopes
        self.acks: list[dict] = []
        self.port = free_port()
        # Pings, as Slack's end sends them, every 0.1 s: slack_sdk's receiving thread holds the
        # socket's lock in a recv of up to 3 s that its close must wait for, and a ping ends it.
        self.server = serve(self.handle, "127.0.0.1", self.port, ping_interval=0.1)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, connection) -> None:
        connection.send(
            json.dumps(
                {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A111"}}
            )
        )
        for envelope in self.envelopes:
            connection.send(json.dumps(envelope))
        for message in connection:
            self.acks.append(json.loads(message))

    def wait_for_ack(self, envelope_id: str, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ack in self.acks:
                if ack.get("envelope_id") == envelope_id:
                    return ack
            time.sleep(0.05)
        raise AssertionError(f"no ack for {envelope_id}: {self.acks}")


def test_socket_mode_acks_and_opens_the_form(tmp_path, slack, env):
    """A /invite and a workflow step run over Socket Mode are acked on the socket and answered
    (the form; the run completed); the token is checked with one auth.test; SIGTERM stops it."""
    command = dict(
        fixture("slash_command_bolt_tests.json")["payload"],
        command="/invite",
        text="",
        user_id="UREQ",
    )
    envelope = {
        "envelope_id": "env-1",
        "type": "slash_commands",
        "accepts_response_payload": True,
        "payload": command,
    }
    run = fixture("function_executed_bolt_tests.json")["payload"]
    run["event"].update(
        function={**run["event"]["function"], "callback_id": "invite_to_awork"},
        inputs={"requester": "UREQ"},  # no email: the run fails at once, naming the input
        function_execution_id="FxSOCKET1",
    )
    step = {"envelope_id": "env-2", "type": "events_api", "payload": run}
    socket_server = SocketModeServer([envelope, step])
    slack.socket_url = f"ws://127.0.0.1:{socket_server.port}/link"
    env["SLACK_APP_TOKEN"] = "xapp-1-test-app-token"
    log = (tmp_path / "socket.log").open("wb")
    process = subprocess.Popen(
        [str(SCRIPT), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        socket_server.wait_for_ack("env-1")
        view = slack.wait_for("views.open", timeout=10)[0].args["view"]
        assert view["callback_id"] == "invite_form"
        assert slack.of("apps.connections.open") and len(slack.of("auth.test")) == 1
        socket_server.wait_for_ack("env-2")
        failed = slack.wait_for("functions.completeError", timeout=10)[0].args
        assert failed["function_execution_id"] == "FxSOCKET1" and "Input email" in failed["error"]
    finally:
        process.terminate()
        code = process.wait(timeout=30)
        socket_server.server.shutdown()
    text = (tmp_path / "socket.log").read_text()
    assert code == 0 and "Socket Mode" in text and "stopped cleanly" in text
    assert "xapp-1-test-app-token" not in text and BOT_TOKEN not in text


def test_a_refused_app_token_stops_serve_in_one_line_and_fails_the_doctor(tmp_path, slack, env):
    """SLACK_APP_TOKEN refused by apps.connections.open: `serve` says so in one line before it
    starts anything (no traceback) and exits 2; `doctor` fails its "Slack to the bot" check;
    the token is not shown."""
    env["SLACK_APP_TOKEN"] = "xapp-1-revoked"
    slack.refused_tokens["xapp-1-revoked"] = "invalid_auth"
    run = subprocess.run(
        [str(SCRIPT), "serve"], env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr + run.stdout, run.stderr
    [line] = run.stderr.splitlines()
    assert line.startswith("invite-bot: Slack refused SLACK_APP_TOKEN (invalid_auth)")
    doctor = subprocess.run(
        [str(SCRIPT), "doctor"], env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    assert doctor.returncode == 1
    assert "Slack refused SLACK_APP_TOKEN (invalid_auth)" in doctor.stdout
    assert "xapp-1-revoked" not in doctor.stdout + doctor.stderr + run.stderr
