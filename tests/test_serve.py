"""The real `invite-bot serve` process: waitress + Bolt's WSGI adapter, over loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from bot.store import SqliteStore
from tests import serving
from tests.conftest import APPROVERS, BOT_TOKEN, SIGNING_SECRET
from tests.serving import (
    QUICK_IN_FLIGHT,
    QUICK_LEASE,
    SCRIPT,
    SLOW,
    free_port,
    interactive,
    kill_server,
    serve_env,
    start_server,
    start_servers,
    stop_server,
    wait_for,
    wait_for_approval_message,
)
from tests.slack_requests import SlackDriver, fixture

pytestmark = pytest.mark.timeout(90)

# A restarted server takes a dead one's work over at its first sweep after the lease ran out:
# sweeping five times a second, that is within 0.2 s of it rather than within a second. The
# lease itself (QUICK_LEASE) is unchanged, so nothing is taken over any sooner than before.
TAKEOVER_SWEEPS = {"INVITE_SWEEP_SECONDS": "0.2"}


def post_signed(port: int, body: str, signed: bool = True) -> httpx.Response:
    return serving.post_signed(port, body, SIGNING_SECRET, signed=signed)


def message_stored(env: dict[str, str], record_id: str) -> None:
    """Wait until the server has stored where its approval message for `record_id` is."""
    store = SqliteStore(env["INVITE_DB_PATH"])
    try:
        wait_for_approval_message(store, record_id)
    finally:
        store.close()


def test_http_mode_serves_slack_requests(tmp_path, env, slack):
    """serve --http answers signed requests at /slack/events, refuses unsigned ones with 401."""
    port = free_port()
    process = start_server(env, port, tmp_path / "serve.log")
    try:
        driver = SlackDriver(None, SIGNING_SECRET)
        assert post_signed(port, driver.command_body()).status_code == 200
        assert (
            slack.wait_for("views.open", timeout=10)[0].args["view"]["callback_id"] == "invite_form"
        )
        assert post_signed(port, driver.command_body(), signed=False).status_code == 401
        assert httpx.get(f"http://127.0.0.1:{port}/slack/events").status_code == 405
        assert httpx.get(f"http://127.0.0.1:{port}/elsewhere").status_code == 404
        # The cache fills in the background right after start; ask until it has answered.
        search = {
            **fixture("block_suggestion_external_select_bolt.json")["payload"],
            "action_id": "roleId",
            "block_id": "roleId",
            "value": "mem",
        }
        deadline = time.monotonic() + 10
        while True:
            options = post_signed(port, interactive(search))
            assert options.status_code == 200
            if json.loads(options.text)["options"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert [o["text"]["text"] for o in json.loads(options.text)["options"]] == ["Member"]
    finally:
        stop_server(process)
    log = (tmp_path / "serve.log").read_text()
    assert f"serving Slack at http://127.0.0.1:{port}/slack/events" in log


def test_serve_asks_slack_for_auth_test_once(tmp_path, env, slack):
    """serve checks the token once (auth.test) and Bolt keeps that answer: a first request is
    authorized without asking Slack again, at start or before its ack."""
    port = free_port()
    process = start_server(env, port, tmp_path / "serve.log")
    try:
        assert (
            post_signed(port, SlackDriver(None, SIGNING_SECRET).command_body()).status_code == 200
        )
        slack.wait_for("views.open", timeout=10)
        assert len(slack.of("auth.test")) == 1
    finally:
        stop_server(process)


def test_serve_opens_forms_with_the_modal_client_that_does_not_wait(tmp_path, env, slack):
    """A views.open Slack throttles is not sent again on a trigger that dies in 3 s: serve's
    forms go through the modal client (2.5 s, connection retries only), not the bot's own."""
    slack.throttle["views.open"] = 1
    port = free_port()
    process = start_server(env, port, tmp_path / "serve.log")
    try:
        assert (
            post_signed(port, SlackDriver(None, SIGNING_SECRET).command_body()).status_code == 200
        )
        wait_for(
            lambda: "could not open the form" in (tmp_path / "serve.log").read_text(),
            10,
            "the refused views.open in the log",
        )
        assert slack.throttled == 1 and not slack.of("views.open")
    finally:
        stop_server(process)


def test_pending_request_survives_kill_9(tmp_path, env, slack, awork_server):
    """Submit, kill -9, restart: Approve still invites; the DEBUG log holds no credential."""
    fake, _ = awork_server
    env["LOG_LEVEL"] = "DEBUG"
    slack.members["kim@example.com"] = "UKIM"
    port = free_port()
    process = start_server(env, port, tmp_path / "serve.log")
    try:
        assert post_signed(port, serving.form_submission("kim@example.com")).status_code == 200
        request_id = serving.approval_id_for(slack, "kim@example.com")
        message_stored(env, request_id)
        # Killed once its delivery round is over: killed inside one, the round's lease (four
        # Slack timeouts) would hold the next process's posts back until the sweep after it.
        store = SqliteStore(env["INVITE_DB_PATH"])
        try:
            serving.wait_for(
                lambda: store.get(request_id).lease_owner is None, 10, "the delivery round"
            )
        finally:
            store.close()
    finally:
        kill_server(process)
    process = start_server(env, port, tmp_path / "serve.log")
    try:
        click = serving.button_click("approve_invite", request_id, APPROVERS[0])
        assert post_signed(port, click).status_code == 200
        slack.wait_for(
            "chat.update",
            timeout=10,
            where=lambda c: "invitation sent" in json.dumps(c.args["blocks"]),
        )
        assert [i["body"]["email"] for i in fake.invitations] == ["kim@example.com"]
        slack.wait_for("chat.postMessage", timeout=10, where=lambda c: c.args["channel"] == "DUKIM")
    finally:
        stop_server(process)
    log = (tmp_path / "serve.log").read_text()
    assert "DEBUG" in log and "invitation created" in log
    code, reset = fake.invitations[0]["invitationCode"], fake.invitations[0]["passwordResetCode"]
    for secret in (code, code.rstrip("="), reset, BOT_TOKEN, SIGNING_SECRET, env["AWORK_API_KEY"]):
        assert secret not in log


def test_serve_without_configuration_says_what_is_missing(tmp_path):
    """No tokens set: exit code 2 and the names of the missing variables, no traceback."""
    env = serve_env("", "", str(tmp_path / "x.sqlite"), "", "", "")
    env.pop("AWORK_API_KEY")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--http"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN" in result.stderr and "Traceback" not in result.stderr
    assert "AWORK_API_KEY" not in result.stderr  # without it the awork sandbox answers
    assert SCRIPT.exists()


def _submit_and_approve(port: int, slack, email: str) -> str:
    assert post_signed(port, serving.form_submission(email)).status_code == 200
    request_id = serving.approval_id_for(slack, email)
    assert (
        post_signed(
            port, serving.button_click("approve_invite", request_id, APPROVERS[0])
        ).status_code
        == 200
    )
    return request_id


def test_sigterm_lets_the_running_invitation_finish(tmp_path, env, slack, awork_server):
    """SIGTERM while awork is slow to create the invitation: it completes, Slack is told, the
    store closes."""
    fake, _ = awork_server
    port = free_port()
    process = start_server(env, port, tmp_path / "serve.log")
    fake.post_delay = SLOW  # the POST the SIGTERM comes during; awork's other answers at once
    _submit_and_approve(port, slack, "slow@example.com")
    wait_for(lambda: fake.calls("POST", "/invitations"), 10, "the POST")
    process.terminate()  # SIGTERM while the POST is in flight
    assert process.wait(timeout=40) == 0
    assert len(fake.invitations) == 1
    assert any(
        "invitation sent" in json.dumps(c.args.get("blocks")) for c in slack.of("chat.update")
    )
    log = (tmp_path / "serve.log").read_text()
    assert "stopped cleanly" in log


def test_crash_during_the_invite_call_is_settled_at_the_next_start(
    tmp_path, env, slack, awork_server
):
    """kill -9 while awork is answering, started again at once: the next start takes over
    once the lease expired (awork has finished by then), finds the invitation, sends no
    second."""
    fake, _ = awork_server
    env.update(QUICK_LEASE, **TAKEOVER_SWEEPS)
    port = free_port()
    process = start_server(env, port, tmp_path / "serve.log")
    fake.post_delay = QUICK_IN_FLIGHT
    request_id = _submit_and_approve(port, slack, "crash@example.com")
    wait_for(lambda: fake.calls("POST", "/invitations"), 10, "the POST")
    kill_server(process)
    fake.post_delay = 0  # the dead process's POST still takes its time
    process = start_server(env, port, tmp_path / "serve.log")  # at once, as systemd would
    try:
        slack.wait_for(
            "chat.update",
            timeout=30,
            where=lambda c: "invitation sent" in json.dumps(c.args.get("blocks")),
        )
        assert len(fake.invitations) == 1 and len(fake.calls("POST", "/invitations")) == 1
        assert request_id in (tmp_path / "serve.log").read_text()
    finally:
        stop_server(process)


def test_two_processes_on_one_store_invite_once(tmp_path, env, slack, awork_server):
    """Two bot processes sharing a store file; 20 concurrent Approve clicks over both: 1 invitation."""
    fake, _ = awork_server
    fake.delay = 0.2
    ports = [free_port(), free_port()]
    processes = start_servers(env, ports, tmp_path)  # side by side, as a deploy starts them
    try:
        assert post_signed(ports[0], serving.form_submission("twin@example.com")).status_code == 200
        request_id = serving.approval_id_for(slack, "twin@example.com")
        clicks = [
            (ports[i % 2], serving.button_click("approve_invite", request_id, APPROVERS[i % 2]))
            for i in range(20)
        ]
        with ThreadPoolExecutor(20) as pool:
            statuses = list(pool.map(lambda click: post_signed(*click).status_code, clicks))
        assert statuses == [200] * 20
        slack.wait_for(
            "chat.update",
            timeout=15,
            where=lambda c: "invitation sent" in json.dumps(c.args.get("blocks")),
        )
        slack.wait_for(
            "chat.postEphemeral",
            19,
            timeout=15,
            where=lambda c: "Nothing changed" in c.args["text"],
        )
        assert len(fake.calls("POST", "/invitations")) == 1 and len(fake.invitations) == 1
    finally:
        for process in processes:
            stop_server(process)


def test_bad_bot_token_is_one_clear_line(tmp_path, env, slack):
    """A token Slack refuses: exit 2 with one line naming SLACK_BOT_TOKEN, no traceback, no token."""
    slack.errors["auth.test"] = "invalid_auth"
    result = subprocess.run(
        [str(SCRIPT), "serve", "--http", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "Slack refused SLACK_BOT_TOKEN (invalid_auth)" in result.stderr
    assert (
        "Traceback" not in result.stderr + result.stdout
        and BOT_TOKEN not in result.stderr + result.stdout
    )


def test_bulk_run_killed_midway_is_finished_by_the_next_start(tmp_path, env, slack, awork_server):
    """kill -9 during a 40-person run: the restarted server finishes it, one invitation each."""
    fake, _ = awork_server
    env.update(QUICK_LEASE, **TAKEOVER_SWEEPS)
    port = free_port()
    process = start_server(env, port, tmp_path / "serve.log")
    people = [f"bulk{i}@example.com" for i in range(40)]
    try:
        command = serving.command_submission(" ".join(people))
        assert post_signed(port, command).status_code == 200
        batch_id = serving.approval_id_for(slack, "40 people")
        message_stored(env, batch_id)
        fake.delay = SLOW / 2  # within QUICK_LEASE's 0.5 s timeout
        click = serving.button_click("approve_invite", batch_id, APPROVERS[0])
        assert post_signed(port, click).status_code == 200
        wait_for(lambda: len(fake.calls("POST", "/invitations")) >= 5, 10, "five POSTs")
    finally:
        kill_server(process)
    wait_for(
        lambda: len(fake.invitations) == len(fake.calls("POST", "/invitations")),
        10,
        "awork to finish what the dead process sent",
    )
    sent_before_restart = len(fake.invitations)
    fake.delay = 0
    process = start_server(env, port, tmp_path / "serve.log")
    try:
        slack.wait_for(
            "chat.update", timeout=20, where=lambda c: "40 invited" in json.dumps(c.args["blocks"])
        )
    finally:
        stop_server(process)
    assert 0 < sent_before_restart < 40
    assert sorted(i["body"]["email"] for i in fake.invitations) == sorted(people)
