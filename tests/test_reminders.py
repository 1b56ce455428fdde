"""Reminders and expiry of requests nobody decides on; times are stored, so restarts agree."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from pydantic import ValidationError

from bot.domain.clock import utcnow
from bot.domain.records import Status
from tests.conftest import APPROVERS, build_bot, make_settings
from tests.slack_requests import ADMIN_CHANNEL, GENERAL
from tests.test_scenarios import settle, submit, wait_status


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
        again = build_bot(settings, awork.handler)
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
        "chat.postMessage",
        where=lambda c: (
            c.args["channel"] == "DUREQ"
            and "expired" in c.args["text"]
            and f"<#{GENERAL}>" in c.args["text"]
        ),
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
    with pytest.raises(ValidationError):
        make_settings(tmp_path, INVITE_EXPIRE_AFTER="0")  # would expire every request at once


def invited(driver, slack, bot, email: str = "ada@example.com") -> str:
    """An approved request, invited in awork, with Slack told."""
    request_id = submit(driver, slack, {"email": email})
    driver.click("approve_invite", request_id, APPROVERS[0])
    wait_status(bot, request_id, Status.INVITED)
    return settle(bot, request_id).id


def test_invitee_who_joined_through_awork_email_is_marked_joined(driver, slack, bot, awork):
    """Accepted in awork (not via Slack): the next look at awork's members marks it joined."""
    request_id = invited(driver, slack, bot)
    user = next(
        u
        for u in awork.users
        if any(c["value"] == "ada@example.com" for c in u["userContactInfos"])
    )
    user["status"]["invitationAccepted"] = True
    assert bot.deps.catalog.refresh()
    bot.deps.courier.sweep()  # looked at once per catalog period, not at every sweep
    assert bot.store.get(request_id).status is Status.INVITED
    bot.store.update(request_id, followed_at=utcnow() - timedelta(minutes=5))  # a period on
    bot.deps.courier.sweep()
    request = settle(bot, request_id)
    assert request.status is Status.JOINED
    assert ":tada:" in json.dumps(slack.of("chat.update")[-1].args["blocks"])
    slack.wait_for(
        "chat.postMessage",
        where=lambda c: "joined" in c.args["text"] and c.args["channel"] == "DUREQ",
    )


def test_code_that_ran_out_unaccepted_offers_invite_again(driver, slack, bot):
    """24 h later, awork shows no acceptance: lapsed, and the requester is offered 'Invite again'."""
    request_id = invited(driver, slack, bot)
    request = bot.store.get(request_id)
    issued = request.result.issued_at - timedelta(hours=25)
    bot.store.update(request_id, result=request.result.model_copy(update={"issued_at": issued}))
    bot.deps.catalog.members_seen_at = issued  # last look at awork was before the code ran out
    bot.deps.courier.sweep()
    assert bot.store.get(request_id).status is Status.INVITED
    assert bot.deps.catalog.refresh()
    bot.store.update(request_id, followed_at=utcnow() - timedelta(minutes=5))  # a period on
    bot.deps.courier.sweep()
    lapsed = settle(bot, request_id)
    assert lapsed.status is Status.LAPSED and "ran out" in lapsed.lapse_reason
    offer = slack.wait_for(
        "chat.postMessage", where=lambda c: "invite_again" in json.dumps(c.args.get("blocks"))
    )[0]
    assert offer.args["channel"] == "DUREQ"
