"""Reminders and expiry of requests nobody decides on; times are stored, so restarts agree."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx

from bot.app import build
from bot.models import Status, utcnow
from tests.conftest import APPROVERS, make_settings
from tests.slack_requests import ADMIN_CHANNEL, GENERAL
from tests.test_scenarios import settle, submit


def age(bot, request_id: str, hours: float) -> None:
    """Pretend the request was made `hours` ago."""
    bot.store.update(request_id, created_at=utcnow() - timedelta(hours=hours))


def reminders(slack):
    return [c for c in slack.of("chat.postMessage") if c.args.get("thread_ts")]


def test_reminder_once_in_the_approval_thread(driver, slack, bot):
    """After INVITE_REMIND_AFTER (24 h): one reminder in the thread, never a second."""
    request_id = submit(driver, slack)
    settle(bot, request_id)
    bot.deps.courier.sweep()
    assert reminders(slack) == []
    age(bot, request_id, 25)
    bot.deps.courier.sweep()
    bot.deps.courier.sweep()
    [reminder] = reminders(slack)
    ref = bot.store.get(request_id).approval_message
    assert reminder.args["channel"] == ADMIN_CHANNEL and reminder.args["thread_ts"] == ref.ts
    assert "Still waiting" in reminder.args["text"] and "<@UREQ>" in reminder.args["text"]
    assert [m.kind for m in settle(bot, request_id).messages].count("reminder") == 1


def test_restart_neither_forgets_nor_repeats_a_reminder(settings, awork, slack, driver, bot):
    """A reminder decided before a restart is posted after it, once; a posted one is not redone."""
    request_id = submit(driver, slack)
    settle(bot, request_id)
    age(bot, request_id, 25)
    slack.errors["chat.postMessage"] = "service_unavailable"
    bot.deps.courier.sweep()  # decided on, but Slack is down
    assert bot.store.get(request_id).reminded_at is not None and reminders(slack)
    bot.shutdown(timeout=5)
    slack.errors.clear()
    for _ in range(2):
        again = build(
            settings, awork_transport=httpx.MockTransport(awork.handler), retry_sleep=lambda _: None
        )
        try:
            again.deps.courier.sweep(force=True)
            settle(again, request_id)
        finally:
            again.shutdown(timeout=5)
    delivered = [c for c in reminders(slack) if c.method == "chat.postMessage"]
    assert len(delivered) == 2  # the one Slack refused, and the one delivered after the restart


def test_expired_request_loses_its_buttons_and_the_requester_is_told(driver, slack, bot, awork):
    """After INVITE_EXPIRE_AFTER (7 d): expired, buttons gone, requester told; Approve does nothing."""
    request_id = submit(driver, slack)
    settle(bot, request_id)
    age(bot, request_id, 24 * 7 + 1)
    bot.deps.courier.sweep()
    request = settle(bot, request_id)
    assert request.status is Status.EXPIRED
    update = slack.of("chat.update")[-1].args
    assert "Expired" in json.dumps(update["blocks"]) and "actions" not in [
        b["type"] for b in update["blocks"]
    ]
    slack.wait_for(
        "chat.postEphemeral",
        where=lambda c: c.args["channel"] == GENERAL and "expired" in c.args["text"],
    )
    driver.click("approve_invite", request_id, APPROVERS[0])
    slack.wait_for(
        "chat.postEphemeral", where=lambda c: "expired without a decision" in c.args["text"]
    )
    assert awork.calls("POST", "/invitations") == []
    assert driver.submit_form({"email": "ada@example.com"}).body == ""  # may be asked for again


def test_durations_are_configurable_in_plain_units(tmp_path):
    """INVITE_REMIND_AFTER / INVITE_EXPIRE_AFTER accept '90m', '24h', '7d', seconds or ISO 8601."""
    settings = make_settings(tmp_path, INVITE_REMIND_AFTER="90m", INVITE_EXPIRE_AFTER="P3D")
    assert settings.invite_remind_after == timedelta(minutes=90)
    assert settings.invite_expire_after == timedelta(days=3)
    assert make_settings(tmp_path, INVITE_REMIND_AFTER="3600").invite_remind_after == timedelta(
        hours=1
    )
    assert make_settings(tmp_path).invite_expire_after == timedelta(days=7)
