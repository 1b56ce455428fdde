"""The HTTP endpoint faces the internet: stalled clients, odd headers, metrics, readiness, logs."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from bot.awork.sandbox import Sandbox
from bot.store import SqliteStore
from tests import serving
from tests.conftest import SIGNING_SECRET
from tests.serving import command_submission, free_port, start_server, stop_server
from tests.slack_requests import SlackDriver

pytestmark = pytest.mark.timeout(120)

STALLED = 300


def stalled_connection(port: int) -> socket.socket:
    """Headers that promise a 100 kB body, and then nothing."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        b"POST /slack/events HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n"
    )
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed this connection (EOF or reset), looking without waiting."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(timeout)


def test_stalled_connections_hold_no_worker(tmp_path, env, slack):
    """300 stalled bodies: /healthz and a signed /invite still answer within 1 s; the stalled
    connections are closed after HTTP_BODY_TIMEOUT."""
    port = free_port()
    process = start_server({**env, "HTTP_BODY_TIMEOUT": "2"}, port, tmp_path / "serve.log")
    stalled: list[socket.socket] = []
    try:
        opened = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            stalled = list(pool.map(lambda _: stalled_connection(port), range(STALLED)))
        time.sleep(0.3)  # the server has read all their headers
        started = time.monotonic()
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        health_took = time.monotonic() - started
        started = time.monotonic()
        invite = serving.post_signed(port, command_submission(""), SIGNING_SECRET)
        invite_took = time.monotonic() - started
        assert (health.status_code, invite.status_code) == (200, 200)
        assert health_took < 1 and invite_took < 1, (health_took, invite_took)
        assert slack.wait_for("views.open", timeout=5)
        assert not any(closed_by_server(sock) for sock in stalled[:20])  # still within the deadline
        deadline = opened + 2 + 5
        while time.monotonic() < deadline and not all(closed_by_server(s) for s in stalled):
            time.sleep(0.2)
        assert all(closed_by_server(sock) for sock in stalled)
    finally:
        for sock in stalled:
            sock.close()
        stop_server(process)


def test_a_deadline_under_a_second_is_kept_not_rounded_down(tmp_path, env):
    """HTTP_BODY_TIMEOUT=0.5: the server serves, and a request that stalls is closed after
    about half a second (waitress's own setting takes whole seconds: 0.5 was 0, which closed
    every connection at once)."""
    port = free_port()
    process = start_server({**env, "HTTP_BODY_TIMEOUT": "0.5"}, port, tmp_path / "serve.log")
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        sock = stalled_connection(port)
        opened = time.monotonic()
        try:
            while not closed_by_server(sock):
                assert time.monotonic() - opened < 5, "the stalled request was never closed"
                time.sleep(0.02)
            assert 0.4 < time.monotonic() - opened < 2
        finally:
            sock.close()
    finally:
        stop_server(process)


def test_slow_drip_body_is_cut_at_the_deadline(tmp_path, env):
    """A body sent a byte at a time (never idle) is still closed at the request deadline."""
    port = free_port()
    process = start_server({**env, "HTTP_BODY_TIMEOUT": "1"}, port, tmp_path / "serve.log")
    try:
        sock = stalled_connection(port)
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 8 and not closed:
            try:
                sock.sendall(b"a")
            except OSError:
                closed = True
                break
            closed = closed_by_server(sock)
            time.sleep(0.25)
        assert closed
        assert 0.7 < time.monotonic() - started < 4
        sock.close()
    finally:
        stop_server(process)


def test_odd_timestamp_is_401_without_traceback(tmp_path, env):
    """A non-numeric (or absurdly long) X-Slack-Request-Timestamp gets 401 and no traceback."""
    port = free_port()
    log = tmp_path / "serve.log"
    process = start_server(env, port, log)
    try:
        for stamp in ("abc", "12e3", "", "1" * 5000, "\u0661\u0662".encode()):
            response = httpx.post(
                f"http://127.0.0.1:{port}/slack/events",
                content=command_submission(""),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Slack-Request-Timestamp": stamp,
                    "X-Slack-Signature": "v0=00",
                },
            )
            assert response.status_code == 401, stamp
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    finally:
        stop_server(process)
    assert "Traceback" not in log.read_text()


def test_huge_page_number_gets_the_normal_answer(driver, slack):
    """`/invite mine 999…` (thousands of digits) answers with the list, not an error."""
    answer = driver.command(text="mine " + "9" * 5000)
    assert answer.status == 200
    body = json.loads(answer.body)
    assert "went wrong" not in body.get("text", "")
    assert body.get("blocks")
    for text in ("pending " + "9" * 5000, "status " + "9" * 5000, "9" * 5000, "bulk 1e999999"):
        answer = driver.command(text=text, user="UAPPROVER1")
        assert answer.status == 200
        assert "went wrong" not in answer.body, text


def test_metrics_readyz_and_json_logs(tmp_path, env, slack):
    """/metrics speaks Prometheus with the documented families; /readyz is 200 when the store
    and Slack auth are fine; LOG_FORMAT=json gives JSON lines carrying a request id."""
    port = free_port()
    log = tmp_path / "serve.log"
    process = start_server({**env, "LOG_FORMAT": "json"}, port, log)
    try:
        deadline = time.monotonic() + 10
        while httpx.get(f"http://127.0.0.1:{port}/readyz").status_code != 200:
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.1)
        assert serving.post_signed(port, command_submission(""), SIGNING_SECRET).status_code == 200
        slack.wait_for("views.open")
        inline = command_submission("ada@example.com")
        assert serving.post_signed(port, inline, SIGNING_SECRET).status_code == 200
        slack.wait_for("chat.postMessage")
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        stop_server(process)
    for family in (
        "invitebot_http_requests_total",
        "invitebot_ack_seconds_bucket",
        "invitebot_request_events_total",
        "invitebot_invitations_total",
        "invitebot_awork_calls_total",
        "invitebot_awork_call_seconds_bucket",
        "invitebot_awork_rate_limited_total",
        "invitebot_slack_calls_total",
        "invitebot_slack_retries_total",
        "invitebot_outbox_depth",
    ):
        assert f"# TYPE {family.removesuffix('_total').removesuffix('_bucket')}" in text, family
    assert 'invitebot_http_requests_total{code="200",endpoint="/slack/events"} 2.0' in text
    assert 'invitebot_slack_calls_total{method="views.open",outcome="ok"} 1.0' in text
    assert 'invitebot_awork_calls_total{endpoint="/users/me",method="GET",status="200"}' in text
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert len(lines) == len(log.read_text().splitlines())
    # The listener stored the request; the awork call after the ack logs under the same id.
    stored = next(line for line in lines if "stored (requester" in line["message"])
    autofill = next(line for line in lines if "/users/autofill/" in line["message"])
    assert stored["request_id"] == autofill["request_id"]
    # awork's autofill path holds the address; its metric label does not.
    assert 'endpoint="/users/autofill/{email}"' in text and "@" not in text


def test_readyz_says_what_is_missing(bot, slack, caplog):
    """/readyz is 503 naming the reason while Slack refuses the token or the store is closed;
    the log says so once as the token is refused, and once as it passes again."""
    from bot.runtime.web import wsgi_app

    app = wsgi_app(bot)

    def get(path: str) -> tuple[str, bytes]:
        seen: list[str] = []
        body = b"".join(
            app({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, lambda s, h: seen.append(s))
        )
        return seen[0], body

    assert get("/readyz")[0].startswith("200")  # Slack accepted the token as the app was made
    caplog.set_level(logging.INFO, logger="bot.runtime.app")
    slack.errors["auth.test"] = "invalid_auth"
    for _ in range(2):  # five minutes on, and five more: asked again
        bot._slack_checked = 0.0
        bot.check_slack_auth()
    status, body = get("/readyz")
    assert status.startswith("503") and b"invalid_auth" in body
    said = [r for r in caplog.records if r.name == "bot.runtime.app"]
    assert [r.levelname for r in said] == ["ERROR"]
    assert "not ready: Slack refused the token (invalid_auth)" in said[0].getMessage()
    del slack.errors["auth.test"]
    bot._slack_checked = 0.0
    bot.check_slack_auth()
    assert get("/readyz")[0].startswith("200")
    said = [r for r in caplog.records if r.name == "bot.runtime.app"]
    assert said[-1].levelname == "INFO" and "ready again" in said[-1].getMessage()
    bot.store.close()
    status, body = get("/readyz")
    assert status.startswith("503") and b"store unreachable" in body
    assert get("/healthz")[0].startswith("200")  # alive all the same


def test_request_id_follows_the_request_into_follow_up_work(bot, driver, slack, caplog):
    """The work after the ack logs under the same request id as the listener that acked."""
    import logging

    from bot.runtime.logs import REQUEST_ID

    seen: list[tuple[str, str | None]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record.getMessage(), REQUEST_ID.get()))

    handler = Capture(level=logging.INFO)
    logging.getLogger().addHandler(handler)
    old_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.INFO)
    try:
        driver.command(text="ada@example.com")
        slack.wait_for("chat.postMessage")
        assert bot.deps.wait_idle()  # the follow-up work, and its log lines, are done
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(old_level)
    stored = next(rid for message, rid in seen if "stored (requester" in message)
    later = [
        rid for message, rid in seen if "HTTP Request" in message and "api.awork.com" in message
    ]
    assert stored and later and set(later) == {stored}


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_store_files_are_private(tmp_path, umask):
    """The store file, its lock, its WAL journals and the sandbox file are 0600 whatever the
    umask; an old file that others could read is tightened."""
    old = os.umask(umask)
    try:
        loose = tmp_path / "old.sqlite"
        loose.write_bytes(b"")
        loose.chmod(0o644)
        for path in (tmp_path / "store.sqlite", loose):
            store = SqliteStore(str(path))
            store.set_meta("x", 1)
            files = [path, path.with_name(path.name + ".lock")]
            files += [path.with_name(path.name + s) for s in ("-wal", "-shm")]
            for file in files:
                assert file.exists(), file
                assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
            store.close()
        sandbox = Sandbox(str(tmp_path / "sandbox.sqlite"))
        assert stat.S_IMODE((tmp_path / "sandbox.sqlite").stat().st_mode) == 0o600
        sandbox.close()
    finally:
        os.umask(old)


def sample(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_count_outcomes_awork_calls_and_429s(bot):
    """Audit events count requests by outcome and invitations by result; awork calls are
    counted by endpoint and status, 429s on their own."""
    import httpx as _httpx

    from bot.awork.ratelimit import RateLimiter, RateLimitTransport

    before = sample("invitebot_invitations_total", result="failed", code="insufficient-seats")
    bot.store.record("invite_failed", "inv-x", code="insufficient-seats", retryable=False)
    bot.store.record("denied", "inv-y", "UAPPROVER1", reason="no")
    assert (
        sample("invitebot_invitations_total", result="failed", code="insufficient-seats")
        == before + 1
    )
    assert sample("invitebot_request_events_total", event="denied") >= 1
    from tests.fakes.clock import FakeClock

    answers = iter([_httpx.Response(429, headers={"ratelimit-reset": "0"}), _httpx.Response(200)])
    clock = FakeClock()  # the limiter's pause after the 429 passes at once
    transport = RateLimitTransport(
        _httpx.MockTransport(lambda request: next(answers)),
        RateLimiter(50, 1000, clock=clock, sleep=clock.sleep),
    )
    limited = sample("invitebot_awork_rate_limited_total")
    calls = sample("invitebot_awork_calls_total", method="GET", endpoint="/teams", status="429")
    for _ in range(2):
        transport.handle_request(_httpx.Request("GET", "https://api.awork.com/api/v1/teams"))
    assert clock.waits == [1.0]  # the second call waited out the 429's pause
    assert sample("invitebot_awork_rate_limited_total") == limited + 1
    assert (
        sample("invitebot_awork_calls_total", method="GET", endpoint="/teams", status="429")
        == calls + 1
    )


def test_follow_up_work_waits_for_acks_but_not_long():
    """Work after the ack waits while requests are being answered, and at most `patience`."""
    import threading

    from bot.runtime.deps import AckGate

    gate = AckGate(patience=0.3)
    ran = threading.Event()

    def follow_up() -> None:
        gate.wait_quiet()
        ran.set()

    with gate.answering():
        threading.Thread(target=follow_up).start()
        assert not ran.wait(0.1)  # still answering: the follow-up holds back
    assert ran.wait(0.2)  # answered: it runs at once
    ran.clear()
    started = time.monotonic()
    with gate.answering():
        threading.Thread(target=follow_up).start()
        assert ran.wait(2)  # an answer that takes long does not hold it past its patience
    assert 0.25 < time.monotonic() - started < 1.5


def test_modal_opens_while_slow_work_fills_the_pool(tmp_path, slack, awork):
    """A form opens within its trigger's life even while every follow-up thread is busy with
    slow work (modals have their own pool)."""
    import threading

    from tests.conftest import build_bot, make_settings

    built = build_bot(make_settings(tmp_path, slack.url, INVITE_THREADS="4"), awork.handler)
    release = threading.Event()
    try:
        for _ in range(4):
            built.deps.later(release.wait, 10)
        driver = SlackDriver(built.app, SIGNING_SECRET)
        assert driver.command().status == 200
        assert slack.wait_for("views.open", timeout=2)
    finally:
        release.set()
        built.shutdown(timeout=5)


def test_every_listener_answers_before_slow_work(bot, driver, slack, awork):
    """With Slack and awork both taking 0.6 s a call, every listener still answers within
    0.5 s (acks inline; views.open, posts and awork calls run after); the work still happens."""
    from tests.test_lists import app_home_opened

    driver.submit_form({"email": "first@example.com"})  # one request to click on, made quickly
    request_id = bot.store.listed("UREQ")[0].id
    # Longer than an ack may take: a listener that made one of these calls inline would fail.
    slack.delay = awork.delay = 0.6
    actions = {
        "/invite (form)": lambda: driver.command(),
        "/invite inline": lambda: driver.command(text="ada@example.com"),
        "/invite inline batch": lambda: driver.command(text="b1@example.com b2@example.com"),
        "form submission": lambda: driver.submit_form({"email": "grace@example.com"}),
        "deny click": lambda: driver.click("deny_invite", request_id, "UAPPROVER2"),
        "deny reason": lambda: driver.submit_deny(request_id, "not now", "UAPPROVER2"),
        "approve click": lambda: driver.click("approve_invite", request_id, "UAPPROVER1"),
        "accept click": lambda: driver.click("accept_invite", request_id, "UREQ"),
        "invite again": lambda: driver.click("invite_again", request_id, "UREQ"),
        "retry failed": lambda: driver.click("retry_failed", "bat-none", "UAPPROVER1"),
        "App Home": lambda: app_home_opened(driver, "UAPPROVER1"),
    }
    for name, act in actions.items():
        started = time.monotonic()
        assert act().status == 200, name
        assert time.monotonic() - started < 0.5, name
    # ... and what they left for after the ack is done.
    assert slack.wait_for("views.open", count=2, timeout=10)
    assert slack.wait_for(
        "chat.postMessage", timeout=15, where=lambda c: "grace@example.com" in c.args["text"]
    )
    assert slack.wait_for("views.publish", timeout=10)
    slack.delay = awork.delay = 0.0


def test_a_modal_is_not_opened_once_its_trigger_has_died():
    """A modal that could not start within 2.5 s of the ack is dropped, not opened late."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from bot.runtime import deps

    pool = ThreadPoolExecutor(max_workers=1)
    busy, opened = threading.Event(), []
    pool.submit(busy.wait, 5)
    deps.Deps._submit(pool, opened.append, ("late",), expires=0.05)
    expired = time.monotonic() + 0.05  # after the submit: its trigger's life has run out then
    deps.Deps._submit(pool, opened.append, ("in time",), expires=None)
    while time.monotonic() <= expired:
        time.sleep(expired - time.monotonic() + 0.001)
    busy.set()
    pool.shutdown(wait=True)
    assert opened == ["in time"]


def test_wait_idle_waits_for_what_follow_up_work_hands_on(bot):
    """`Deps.wait_idle` returns once the follow-up work, and the work it handed on, has run."""
    import threading

    release, done = threading.Event(), []

    def first() -> None:
        release.wait(5)
        bot.deps.later(done.append, "second")

    bot.deps.later(first)
    assert not bot.deps.wait_idle(timeout=0.05)  # `first` is still waiting
    release.set()
    assert bot.deps.wait_idle() and done == ["second"]


def test_metrics_show_the_work_after_acks_queued_or_running(bot):
    """invitebot_work_after_acks_pending counts, per pool, the work handed on and not done -
    queued beyond the pool's threads as well as running - and drops back once it is done."""
    import threading

    from prometheus_client import REGISTRY

    def pending(pool: str) -> float:
        labels = {"pool": pool}
        return REGISTRY.get_sample_value("invitebot_work_after_acks_pending", labels) or 0.0

    before = {pool: pending(pool) for pool in ("work", "modals")}
    release = threading.Event()
    for _ in range(bot.deps.settings.threads + 4):  # 4 wait for a thread
        bot.deps.later(release.wait, 5)
    bot.deps.open_modal(release.wait, 5)
    assert pending("work") == before["work"] + bot.deps.settings.threads + 4
    assert pending("modals") == before["modals"] + 1
    release.set()
    assert bot.deps.wait_idle()
    assert {pool: pending(pool) for pool in ("work", "modals")} == before


def test_readiness_does_not_wait_for_awork(tmp_path, slack, awork):
    """/readyz turns ready on Slack auth and the store even while awork has not answered."""
    import threading

    from tests.conftest import build_bot, make_settings

    answer = threading.Event()  # awork answers nothing until the readiness is seen

    def held(request):
        answer.wait(10)
        return awork.handler(request)

    built = build_bot(make_settings(tmp_path, slack.url, INVITE_SWEEP_SECONDS="30"), held)
    try:
        built.start_background()
        deadline = time.monotonic() + 5
        while built.not_ready() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert built.not_ready() is None
    finally:
        answer.set()
        built.shutdown(timeout=5)


def test_export_file_is_private(tmp_path, settings):
    """`invite-bot export FILE` writes the store (codes included) readable by its owner only."""
    import subprocess
    import sys

    from bot.store import SqliteStore

    SqliteStore(settings.invite_db_path).close()
    out = tmp_path / "store.jsonl"
    out.write_text("")
    out.chmod(0o644)
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "",
        "INVITE_DB_PATH": settings.invite_db_path,
        "INVITE_DATABASE_URL": "",
    }
    env.pop("INVITE_DATABASE_URL")
    done = subprocess.run(
        [sys.executable, "-m", "bot", "export", str(out)],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        preexec_fn=lambda: os.umask(0o022),
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
