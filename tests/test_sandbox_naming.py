"""Issue 12 part 9: in sandbox mode (no AWORK_API_KEY) the bot's awork calls name the sandbox,
so no log line suggests that a real call went to api.awork.com."""

from __future__ import annotations

import json
import logging

from bot.awork.sandbox import API_URL
from bot.runtime.app import build
from tests.conftest import APPROVERS, SIGNING_SECRET, approval_request_id, make_settings
from tests.slack_requests import SlackDriver


def test_sandbox_requests_are_logged_with_the_sandbox_host(tmp_path, slack, caplog):
    """Every httpx "HTTP Request" line of a sandbox run - catalog and the invitation POST -
    names awork-sandbox.invalid, never api.awork.com (whatever AWORK_API_URL says)."""
    settings = make_settings(tmp_path, slack.url, AWORK_API_KEY="")
    assert "api.awork.com" in settings.awork_api_url
    bot = build(settings)
    caplog.set_level(logging.INFO, logger="httpx")
    try:
        assert bot.deps.catalog.refresh()
        driver = SlackDriver(bot.app, SIGNING_SECRET)
        driver.command("ada@example.com")
        request_id = approval_request_id(slack)
        driver.click("approve_invite", request_id, APPROVERS[0])
        slack.wait_for("chat.update", where=lambda c: "invitation sent" in json.dumps(c.args))
    finally:
        bot.shutdown(timeout=5)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("HTTP Request")]
    awork_lines = [line for line in lines if "/api/v1/" in line]
    assert any("POST http://awork-sandbox.invalid/api/v1/invitations" in x for x in awork_lines)
    assert all(API_URL in line for line in awork_lines), awork_lines
    assert not [line for line in lines if "awork.com" in line]
