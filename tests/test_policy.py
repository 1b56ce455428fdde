"""Approval policy: no approving one's own request, two approvers for admin roles, self-approve."""

from __future__ import annotations

import json
import threading
import time

from bot.domain.records import Status
from tests.conftest import APPROVERS, SIGNING_SECRET, build_bot, make_settings
from tests.fakes.awork import ROLE_ADMIN
from tests.slack_requests import SlackDriver
from tests.test_scenarios import settle, submit, wait_status

A, B = APPROVERS


def test_approvers_cannot_approve_their_own_request_when_another_can(driver, slack, bot, awork):
    """The requester-approver is refused privately; the other approver's click invites."""
    request_id = submit(driver, slack, {"email": "own@example.com"}, user=A)
    driver.click("approve_invite", request_id, A)
    slack.wait_for(
        "chat.postEphemeral",
        where=lambda c: c.args["user"] == A and "your own request" in c.args["text"],
    )
    assert bot.store.get(request_id).status is Status.PENDING and awork.invitations == []
    driver.click("approve_invite", request_id, B)
    wait_status(bot, request_id, Status.INVITED)


def test_a_lone_approver_may_approve_their_own(tmp_path, slack, awork):
    """With a single approver there is nobody else: their own request is theirs to approve."""
    settings = make_settings(tmp_path, slack.url, INVITE_APPROVERS=A)
    lone = build_bot(settings, awork.handler)
    try:
        driver = SlackDriver(lone.app, SIGNING_SECRET)
        request_id = submit(driver, slack, {"email": "solo@example.com"}, user=A)
        driver.click("approve_invite", request_id, A)
        assert wait_status(lone, request_id, Status.INVITED).decided_by == A
        assert [i["body"]["email"] for i in awork.invitations] == ["solo@example.com"]
    finally:
        lone.shutdown(timeout=5)


def test_admin_role_needs_two_distinct_approvers(driver, slack, bot, awork):
    """An admin-role invitation: '1 of 2 approvals', the same approver again changes nothing, the second invites."""
    request_id = submit(driver, slack, {"email": "boss@example.com", "roleId": ROLE_ADMIN})
    assert bot.store.get(request_id).approvals_needed == 2
    driver.click("approve_invite", request_id, A)
    slack.wait_for(
        "chat.update", where=lambda c: "1 of 2 approvals" in json.dumps(c.args["blocks"])
    )
    slack.wait_for(
        "chat.postEphemeral",
        where=lambda c: c.args["user"] == A and "second approver" in c.args["text"],
    )
    driver.click("approve_invite", request_id, A)
    slack.wait_for(
        "chat.postEphemeral",
        2,
        where=lambda c: c.args["user"] == A and "second approver" in c.args["text"],
    )
    assert bot.store.get(request_id).status is Status.PENDING and awork.invitations == []
    driver.click("approve_invite", request_id, B)
    request = wait_status(bot, request_id, Status.INVITED)
    assert request.approvals == [A, B] and len(awork.calls("POST", "/invitations")) == 1


def test_admin_role_under_concurrent_clicks_still_invites_once(driver, slack, bot, awork):
    """Ten simultaneous clicks by both approvers on an admin-role request: one invitation."""
    request_id = submit(driver, slack, {"email": "race@example.com", "roleId": ROLE_ADMIN})
    awork.delay = 0.05
    threads = [
        threading.Thread(target=driver.click, args=("approve_invite", request_id, APPROVERS[i % 2]))
        for i in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    request = wait_status(bot, request_id, Status.INVITED)
    settle(bot, request_id)
    assert (
        sorted(request.approvals) == sorted(APPROVERS)
        and len(awork.calls("POST", "/invitations")) == 1
    )


def test_self_approve_skips_approval_for_approvers_only(tmp_path, slack, awork):
    """INVITE_SELF_APPROVE: an approver's request is invited at once; anyone else's waits."""
    settings = make_settings(tmp_path, slack.url, INVITE_SELF_APPROVE="true")
    bot = build_bot(settings, awork.handler)
    try:
        bot.deps.catalog.refresh()
        driver = SlackDriver(bot.app, SIGNING_SECRET)
        own = submit(driver, slack, {"email": "self@example.com"}, user=A)
        assert wait_status(bot, own, Status.INVITED).decided_by == A
        other = submit(driver, slack, {"email": "other@example.com"}, user="UREQ")
        assert settle(bot, other).status is Status.PENDING
        boss = submit(
            driver, slack, {"email": "selfboss@example.com", "roleId": ROLE_ADMIN}, user=A
        )
        deadline = time.monotonic() + 5  # the self-approval runs right after the ack
        while bot.store.get(boss).approvals != [A] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert settle(bot, boss).approvals == [A] and bot.store.get(boss).status is Status.PENDING
    finally:
        bot.shutdown(timeout=5)


def test_approvers_may_be_a_slack_user_group(tmp_path, slack, awork):
    """INVITE_APPROVERS with a group id: its members approve; membership changes are followed."""
    slack.groups["S0APPROVERS"] = ["UGROUPIE"]
    settings = make_settings(tmp_path, slack.url, INVITE_APPROVERS="S0APPROVERS")
    bot = build_bot(settings, awork.handler)
    try:
        bot.directory.refresh(force=True)
        driver = SlackDriver(bot.app, SIGNING_SECRET)
        first = submit(driver, slack, {"email": "g1@example.com"})
        driver.click("approve_invite", first, "UOUTSIDER")
        slack.wait_for(
            "chat.postEphemeral",
            where=lambda c: c.args["user"] == "UOUTSIDER" and "Only approvers" in c.args["text"],
        )
        driver.click("approve_invite", first, "UGROUPIE")
        assert wait_status(bot, first, Status.INVITED).decided_by == "UGROUPIE"
        slack.groups["S0APPROVERS"] = ["UOUTSIDER"]
        bot.directory.refresh(force=True)
        second = submit(driver, slack, {"email": "g2@example.com"})
        driver.click("approve_invite", second, "UOUTSIDER")
        assert wait_status(bot, second, Status.INVITED).decided_by == "UOUTSIDER"
    finally:
        bot.shutdown(timeout=5)
