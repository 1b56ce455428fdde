"""Faults that happen in production: crashes mid-invite, Slack outages. (awork answers that
get lost are tests/test_settling.py and tests/test_settling_scenarios.py.)"""

from __future__ import annotations

import json
import socket
import threading
from datetime import timedelta

import httpx

from bot.domain.clock import utcnow
from bot.domain.records import Status
from tests.conftest import APPROVERS, build_bot
from tests.slack_requests import ADMIN_CHANNEL, GENERAL
from tests.test_scenarios import settle, submit, wait_status

APPROVER = APPROVERS[0]
DEAD = f"{socket.gethostname()}:4194303:dead"  # whose lease has run out


def crash_mid_invite(bot, request_id: str, owner: str = DEAD, lease_left: float = -1.0):
    """Leave a request as a process killed during its awork call would: INVITING, held by a
    lease with `lease_left` seconds to run (run out, by default)."""
    started = utcnow()
    ok, request = bot.store.transition(
        request_id, {Status.PENDING}, Status.INVITING, decided_by=APPROVER, decided_at=started,
        claimed_by=owner, claimed_at=started, invite_started_at=started, attempts=1,
        claim_until=bot.store.now() + timedelta(seconds=lease_left),
    )  # fmt: skip
    assert ok
    return request


def approval_updates(slack, needle: str):
    return [c for c in slack.of("chat.update") if needle in json.dumps(c.args["blocks"])]


# --- crash during the invite call -----------------------------------------------------------


def test_orphan_whose_invitation_reached_awork_is_marked_invited_without_resending(
    driver, slack, bot, awork
):
    """Killed after awork created the invitation: the restart finds the user and sends nothing."""
    request_id = submit(driver, slack)
    settle(bot, request_id)
    crash_mid_invite(bot, request_id)
    awork.handler(
        httpx.Request(
            "POST",
            "https://api.awork.com/api/v1/invitations",
            json={"email": "ada@example.com", "workspaceId": awork.workspace["id"]},
            headers={"Authorization": f"Bearer {awork.api_key}"},
        )
    )
    posts_before = len(awork.calls("POST", "/invitations"))
    bot.deps.courier.sweep()
    request = settle(bot, request_id)
    assert request.status is Status.INVITED and request.result.invitation_code is None
    assert len(awork.calls("POST", "/invitations")) == posts_before and len(awork.invitations) == 1
    assert approval_updates(slack, "invitation sent")
    told = slack.wait_for(
        "chat.postMessage", where=lambda c: "approved your request" in c.args["text"]
    )[0]
    assert "awork's answer was lost" in told.args["text"] and "restart" not in told.args["text"]
    assert "awork's own email carries it" in told.args["text"]
    assert told.args["channel"] == "DUREQ"
    assert [e.event for e in bot.store.audit() if e.request_id == request_id][-3:][:2] == [
        "recovering",
        "invited",
    ]


def test_orphan_that_never_reached_awork_is_invited_once(driver, slack, bot, awork):
    """Killed before the POST left: the restart invites exactly once and DMs the link."""
    request_id = submit(driver, slack)
    settle(bot, request_id)
    crash_mid_invite(bot, request_id)
    bot.deps.courier.sweep()
    request = settle(bot, request_id)
    assert request.status is Status.INVITED and request.result.invitation_code is not None
    assert len(awork.calls("POST", "/invitations")) == 1
    assert request.link_sent_to == "UREQ"


def test_live_claim_is_left_alone_until_its_lease_expires(driver, slack, bot, awork):
    """A claim whose lease runs is not taken over, whatever its process id says (none is
    consulted: this one names a pid that does not exist); once expired, it is."""
    request_id = submit(driver, slack)
    settle(bot, request_id)
    crash_mid_invite(bot, request_id, owner=DEAD, lease_left=600)
    bot.deps.courier.sweep(force=True)
    assert (
        bot.store.get(request_id).claimed_by == DEAD and awork.calls("POST", "/invitations") == []
    )
    bot.store.update(request_id, claim_until=bot.store.now() - timedelta(seconds=1))
    bot.deps.courier.sweep()
    assert settle(bot, request_id).status is Status.INVITED
    assert len(awork.calls("POST", "/invitations")) == 1


def test_two_sweepers_recover_an_orphan_once(driver, slack, bot, awork, settings):
    """Two processes' sweeps racing over one orphan: one takes it, one invitation."""
    request_id = submit(driver, slack)
    settle(bot, request_id)
    crash_mid_invite(bot, request_id)
    other = build_bot(settings, awork.handler)
    try:
        awork.delay = 0.05
        threads = [threading.Thread(target=b.deps.courier.sweep) for b in (bot, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert bot.store.get(request_id).status is Status.INVITED
        assert len(awork.calls("POST", "/invitations")) == 1
    finally:
        other.shutdown(timeout=5)


def test_sweep_runs_at_start(settings, awork, slack, driver, bot):
    """A restarted bot settles an orphan by itself, without any click."""
    request_id = submit(driver, slack)
    settle(bot, request_id)
    crash_mid_invite(bot, request_id)
    bot.shutdown(timeout=5)
    again = build_bot(settings, awork.handler)
    try:
        again.start_background()
        wait_status(again, request_id, Status.INVITED)
        assert len(awork.invitations) == 1
    finally:
        again.shutdown(timeout=5)


# --- Slack failures -------------------------------------------------------------------------


def test_failed_approval_post_is_redone_by_the_sweep(driver, slack, bot):
    """chat.postMessage failing at submit: the request is kept and its message posted later, once."""
    slack.errors["chat.postMessage"] = "internal_error"
    slack.ephemeral_blocked.add(GENERAL)
    slack.errors["conversations.open"] = "internal_error"
    response = driver.submit_form({"email": "late@example.com"})
    assert response.status == 200 and response.body == ""
    assert bot.deps.wait_idle()  # the delivery after the ack has been tried
    [request] = list(bot.store.requests())
    assert (
        request.status is Status.PENDING
        and request.approval_message is None
        and request.needs_delivery()
    )
    slack.errors.clear()
    slack.ephemeral_blocked.clear()
    bot.deps.courier.sweep()  # backing off: not due yet
    assert len(slack.of("chat.postMessage")) == 1
    bot.store.update(request.id, next_delivery_at=utcnow())
    bot.deps.courier.sweep()
    request = settle(bot, request.id)
    assert request.delivery_failures == 0
    posted = [c for c in slack.of("chat.postMessage") if c.args["channel"] == ADMIN_CHANNEL]
    assert len(posted) == 2  # one failed, one delivered
    assert request.approval_message.channel == ADMIN_CHANNEL and request.waiting_told
    notices = [c.args["text"] for c in slack.of("chat.postEphemeral")]
    # blocked (while the channel was unreachable), then sent once the approval was posted
    assert len(notices) == 2 and "waiting for an approver" in notices[1]


def test_requester_hears_when_the_approvers_could_not_be_reached(driver, slack, bot, caplog):
    """Approval post refused: the requester hears it is saved; the log says what to fix."""
    slack.errors["chat.postMessage"] = "channel_not_found"
    driver.submit_form({"email": "lost@example.com"})
    told = slack.wait_for("chat.postEphemeral")[0].args["text"]
    assert "saved your request" in told and "could not reach the approvers" in told
    assert "check INVITE_ADMIN_CHANNEL" in caplog.text


def test_outbox_survives_a_restart(settings, awork, slack, bot, driver):
    """Slack down at submit, process restarted: the new process posts the approval message."""
    slack.errors["chat.postMessage"] = "service_unavailable"
    driver.submit_form({"email": "later@example.com"})
    assert bot.deps.wait_idle()  # the delivery after the ack has been tried
    [request] = list(bot.store.requests())
    bot.shutdown(timeout=5)
    slack.errors.clear()
    again = build_bot(settings, awork.handler)
    try:
        again.start_background()
        slack.wait_for("chat.postMessage", 2, where=lambda c: c.args["channel"] == ADMIN_CHANNEL)
        assert settle(again, request.id).approval_message is not None
    finally:
        again.shutdown(timeout=5)


def test_slack_rate_limit_is_retried_by_slack_sdk(driver, slack, bot):
    """HTTP 429 with Retry-After from Slack: slack_sdk's retry handler posts again."""
    slack.throttle["chat.postMessage"] = 1
    slack.retry_after = "0"  # slack_sdk still waits its jitter (up to 1 s), not 1-2 s
    request_id = submit(driver, slack)
    request = settle(bot, request_id)
    assert request.approval_message is not None
    assert slack.throttled == 1


def test_every_posted_message_is_kept_with_the_request(driver, slack, bot):
    """Approval, notices and the link DM each leave their channel and ts on the request."""
    slack.members["ada@example.com"] = "UADA"
    request_id = submit(driver, slack)
    driver.click("approve_invite", request_id, APPROVER)
    wait_status(bot, request_id, Status.INVITED)
    request = settle(bot, request_id)
    kinds = [(m.kind, m.channel) for m in request.messages]
    assert kinds == [
        ("approval", ADMIN_CHANNEL),
        ("waiting_notice", GENERAL),
        ("invitee_dm", "DUADA"),
        ("outcome_notice", "DUREQ"),
    ]
    assert all(m.ts for m in request.messages)
    logged = [
        e for e in bot.store.audit() if e.event == "message_posted" and e.request_id == request_id
    ]
    assert [e.detail["kind"] for e in logged] == [k for k, _ in kinds]


def test_own_expired_lease_without_a_worker_is_taken_over(driver, slack, bot, awork):
    """A request this very process claimed, whose worker thread died (nobody works on it here)
    and whose lease expired, is settled by this process's own sweep - not left until restart."""
    request_id = submit(driver, slack)
    settle(bot, request_id)
    crash_mid_invite(bot, request_id, owner=bot.deps.service.instance_id)
    assert not bot.deps.service.is_active(request_id)
    bot.deps.courier.sweep()
    assert settle(bot, request_id).status is Status.INVITED
    assert len(awork.calls("POST", "/invitations")) == 1
