"""The log is not an attack surface: what strangers post neither fills it, nor forges its lines,
nor leaves a response_url in it."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from bot.runtime import logs
from bot.runtime.app import Bot
from bot.runtime.web import wsgi_app
from tests.conftest import SIGNING_SECRET, build_bot
from tests.slack_requests import SlackDriver
from tests.test_hostile import call_wsgi

FORGED = "2026-01-01 00:00:00,000 CRITICAL bot.services.decisions: request R1 approved"
RECORD_START = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \S+: ")


@pytest.fixture(params=[logging.INFO])
def logged(request, settings, awork) -> Iterator[tuple[Bot, io.StringIO]]:
    """The bot, and its log as `invite-bot serve` writes it (text format, at INFO unless the
    test says LOG_LEVEL): logging is set up before the bot is built, as at start, so Bolt's
    loggers take its level."""
    stream = io.StringIO()
    handler = logs.prepare(logging.StreamHandler(stream), settings)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(request.param)
    logs.quiet_libraries(request.param)
    built = build_bot(settings, awork.handler)
    try:
        yield built, stream
    finally:
        built.shutdown(timeout=5)
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_unsigned_megabytes_write_under_a_kilobyte_of_log(logged):
    """Twenty unsigned 900 kB bodies: each is refused with 401, and the log gets one line that
    names the method, path, size and reason - under 1 kB, no body."""
    bot, stream = logged
    app = wsgi_app(bot)
    body = urlencode({"command": "/invite", "text": "a" * 900_000}).encode()
    for _ in range(20):
        assert call_wsgi(app, body, signed=False)[0] == 401
    text = stream.getvalue()
    assert len(text.encode()) < 1000, text[:2000]
    [line] = text.splitlines()
    assert f"refused POST /slack/events ({len(body)} bytes): signature does not match" in line


def test_a_newline_in_a_request_cannot_forge_a_log_line(logged):
    """A newline and a fake CRITICAL line in a request - signed (Bolt logs the unknown action)
    or not - stay inside one line: every line of the log starts a record of its own."""
    bot, stream = logged
    app = wsgi_app(bot)
    payload = {
        "type": "block_actions",
        "user": {"id": "U1"},
        "actions": [{"action_id": f"nothing\n{FORGED}", "value": "x"}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    call_wsgi(app, body)
    assert call_wsgi(app, f"command=/invite&text=x\n{FORGED}".encode(), signed=False)[0] == 401
    lines = stream.getvalue().splitlines()
    assert any(FORGED in line for line in lines)  # it was logged, escaped
    assert all(RECORD_START.match(line) for line in lines), lines


def test_response_urls_are_masked_in_logs(settings):
    """A response_url - as written, JSON- or URL-encoded - reads as hooks.slack.com/[redacted]."""
    stream = io.StringIO()
    handler = logs.prepare(logging.StreamHandler(stream), settings)
    record = logging.LogRecord(
        "bot.test",
        logging.WARNING,
        __file__,
        1,
        "answering %s, %s and %s",
        (
            "https://hooks.slack.com/actions/T1/123/SECRETPART",
            json.dumps("https://hooks.slack.com/actions/T1/123/SECRETPART"),
            urlencode({"response_url": "https://hooks.slack.com/actions/T1/123/SECRETPART"}),
        ),
        None,
    )
    handler.handle(record)
    text = stream.getvalue()
    assert "SECRETPART" not in text and text.count("hooks.slack.com/[redacted]") == 3, text


def test_the_address_a_person_asks_for_stays_out_of_the_log(logged, slack):
    """An inline ask: httpx's line for awork's name guess says `/users/autofill/{email}`, and no
    line holds the address, as none reaches /metrics."""
    bot, stream = logged
    SlackDriver(bot.app, SIGNING_SECRET).command("grace.hopper@example.com")
    slack.wait_for("chat.postEphemeral", timeout=10)
    bot.deps.wait_idle(10)
    text = stream.getvalue()
    assert "GET https://api.awork.com/api/v1/users/autofill/{email}" in text, text
    assert "grace.hopper" not in text


@pytest.mark.parametrize("logged", [logging.DEBUG], indirect=True)
def test_at_log_level_debug_bolt_logs_no_ack_body(logged, slack):
    """LOG_LEVEL=DEBUG: Bolt, which copies the root's level onto its own loggers, still logs at
    INFO - not every ack's body ("Responding with ... body"), which holds the address."""
    bot, stream = logged
    SlackDriver(bot.app, SIGNING_SECRET).command("grace.hopper@example.com")
    slack.wait_for("chat.postEphemeral", timeout=10)
    bot.deps.wait_idle(10)
    text = stream.getvalue()
    assert "Responding with" not in text and "grace.hopper" not in text, text


def test_only_the_path_segments_holding_an_address_are_left_out():
    """Hosts, ids and the query stay, so a line still says which call it was."""
    url = "https://api.awork.com/api/v1/users/autofill/ada%40example.com?x=1"
    assert logs.without_addresses(url) == "https://api.awork.com/api/v1/users/autofill/{email}?x=1"
    assert logs.without_addresses("/api/v1/users/3f2a/contactinfos") == (
        "/api/v1/users/3f2a/contactinfos"
    )
