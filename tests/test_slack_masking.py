"""Secrets are masked in what the bot sends to Slack, as in its logs."""

from __future__ import annotations

import json

from bot.domain.records import Status
from bot.runtime.logs import MASK
from tests.fakes.awork import API_KEY, Fault
from tests.slack_requests import ADMIN_CHANNEL
from tests.test_scenarios import APPROVER, submit, wait_settled, wait_status


def test_awork_error_echoing_the_api_key_reaches_slack_masked(driver, slack, bot, awork):
    """awork's validation message quoting the API key reaches the requester's DM and the
    approval message with the key masked."""
    body = {
        "code": "validation-failed",
        "description": "The model is not valid.",
        "validationErrors": [{"property": "email", "message": f"not allowed for key {API_KEY}"}],
    }
    awork.fail_next.append(Fault(400, body, path="/invitations"))
    request_id = submit(driver, slack)
    driver.click("approve_invite", request_id, APPROVER)
    wait_status(bot, request_id, Status.FAILED)
    [update] = wait_settled(slack, request_id, f"not allowed for key {MASK}")
    assert update.args["channel"] == ADMIN_CHANNEL
    [told] = slack.wait_for(
        "chat.postMessage",
        where=lambda c: (
            c.args["channel"] == "DUREQ" and "not allowed for key" in json.dumps(c.args)
        ),
    )
    assert f"not allowed for key {MASK}" in json.dumps(told.args)
    assert API_KEY not in slack.texts()
    for asker in ("UREQ", APPROVER):  # answered in the ack's body, not by a Web API call
        answer = driver.command(text=f"status {request_id}", user=asker)
        assert "not allowed for key" in answer.body, asker
        assert API_KEY not in answer.body and MASK in answer.body, asker
