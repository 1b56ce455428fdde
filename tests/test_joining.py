"""Join from Slack: the invitee accepts with one click; the code never shows in a message."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import httpx

from bot.domain.records import Status
from tests.conftest import APPROVERS
from tests.fakes.awork import Fault
from tests.slack_requests import ADMIN_CHANNEL, GENERAL
from tests.test_scenarios import settle, submit, wait_status

APPROVER = APPROVERS[0]


def invited(driver, slack, bot, email: str = "ada@example.com", member: str = "UADA"):
    """An approved request whose invitee is the Slack member `member`; returns (id, DM ts)."""
    slack.members[email] = member
    request_id = submit(driver, slack, {"email": email, "firstName": "Ada"})
    driver.click("approve_invite", request_id, APPROVER)
    wait_status(bot, request_id, Status.INVITED)
    settle(bot, request_id)
    dm = next(m for m in bot.store.get(request_id).messages if m.kind == "invitee_dm")
    return request_id, dm


def refuse_next_accept(awork) -> None:
    """awork answers the next accept with its invalid-operation error."""
    body = {
        "code": "invalid-operation",
        "description": "The invitation code is not valid.",
        "link": "x",
    }
    awork.fail_next.append(Fault(400, body, path="/invitations/accept"))


def accept_calls(awork):
    return awork.calls("POST", "/invitations/accept")


def test_invitee_accepts_and_everyone_is_told(driver, slack, bot, awork, settings):
    """Accept: one awork accept with the stored code, DM -> 'You joined', message and requester updated."""
    request_id, dm = invited(driver, slack, bot)
    assert (
        driver.click("accept_invite", request_id, "UADA", channel=dm.channel, ts=dm.ts).status
        == 200
    )
    request = wait_status(bot, request_id, Status.JOINED)
    code = awork.invitations[0]["invitationCode"]
    [call] = accept_calls(awork)
    assert json.loads(call.content) == {"invitationCode": code}
    joined = slack.wait_for(
        "chat.update",
        where=lambda c: c.args["channel"] == dm.channel and "You joined" in c.args["text"],
    )[0]
    reset = awork.invitations[0]["passwordResetCode"]
    assert joined.args["ts"] == dm.ts and reset.replace("=", "%3D") in joined.args["text"]
    settle(bot, request_id)
    assert any(
        ":tada:" in json.dumps(c.args["blocks"]) and c.args["channel"] == ADMIN_CHANNEL
        for c in slack.of("chat.update")
    )
    told = slack.wait_for(
        "chat.postMessage",
        where=lambda c: "joined" in c.args["text"] and c.args["channel"] == "DUREQ",
    )[0]
    assert f"<#{GENERAL}>" in told.args["text"] and request.joined_at is not None
    assert awork.users[-1]["status"]["invitationAccepted"] is True


def test_someone_else_cannot_accept(driver, slack, bot, awork):
    """A click by anyone but the invitee is refused privately and awork is not called."""
    request_id, dm = invited(driver, slack, bot)
    driver.click("accept_invite", request_id, "UMALLORY", channel=dm.channel, ts=dm.ts)
    refusal = slack.wait_for("chat.postEphemeral", where=lambda c: c.args["user"] == "UMALLORY")[0]
    assert "someone else" in refusal.args["text"]
    assert accept_calls(awork) == [] and bot.store.get(request_id).status is Status.INVITED


def test_ten_fast_clicks_accept_once(driver, slack, bot, awork):
    """Ten simultaneous Accept clicks: one awork accept call, one 'You joined'."""
    request_id, dm = invited(driver, slack, bot)
    awork.delay = 0.05
    threads = [
        threading.Thread(
            target=driver.click,
            args=("accept_invite", request_id, "UADA"),
            kwargs={"channel": dm.channel, "ts": dm.ts},
        )
        for _ in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_status(bot, request_id, Status.JOINED)
    settle(bot, request_id)
    assert len(accept_calls(awork)) == 1
    assert len([c for c in slack.of("chat.update") if "You joined" in str(c.args.get("text"))]) == 1


def test_second_click_after_joining_is_explained(driver, slack, bot, awork):
    """Clicking Accept again after joining says so and calls awork no more."""
    request_id, dm = invited(driver, slack, bot)
    driver.click("accept_invite", request_id, "UADA", channel=dm.channel, ts=dm.ts)
    wait_status(bot, request_id, Status.JOINED)
    driver.click("accept_invite", request_id, "UADA", channel=dm.channel, ts=dm.ts)
    slack.wait_for("chat.postEphemeral", where=lambda c: "already joined" in c.args["text"])
    assert len(accept_calls(awork)) == 1


def test_lapsed_code_is_explained_and_invite_again_goes_through_approval(driver, slack, bot, awork):
    """After 24 h: the DM says so, the requester gets 'Invite again', which makes a new request."""
    request_id, dm = invited(driver, slack, bot)
    request = bot.store.get(request_id)
    bot.store.update(
        request_id,
        result=request.result.model_copy(
            update={"issued_at": request.result.issued_at - timedelta(hours=25)}
        ),
    )
    driver.click("accept_invite", request_id, "UADA", channel=dm.channel, ts=dm.ts)
    lapsed = wait_status(bot, request_id, Status.LAPSED)
    assert accept_calls(awork) == [] and "24 hours" in lapsed.lapse_reason
    slack.wait_for(
        "chat.update",
        where=lambda c: (
            c.args["channel"] == dm.channel and "no longer be accepted" in c.args["text"]
        ),
    )
    offer = slack.wait_for(
        "chat.postMessage",
        where=lambda c: c.args["channel"] == "DUREQ" and "no longer be accepted" in c.args["text"],
    )[0]
    button = next(b for b in offer.args["blocks"] if b["type"] == "actions")["elements"][0]
    assert (button["action_id"], button["value"]) == ("invite_again", request_id)
    admin_posts = len(
        [c for c in slack.of("chat.postMessage") if c.args["channel"] == ADMIN_CHANNEL]
    )
    driver.click("invite_again", request_id, "UREQ", channel="DUREQ")  # in the DM it came by
    slack.wait_for(
        "chat.postMessage", admin_posts + 1, where=lambda c: c.args["channel"] == ADMIN_CHANNEL
    )
    fresh_id = bot.store.get(request_id).reinvited_as
    fresh = settle(bot, fresh_id)
    assert (
        fresh.status is Status.PENDING
        and fresh.reinvite_of == request_id
        and fresh.details == request.details
    )
    driver.click("invite_again", request_id, "UREQ", channel="DUREQ")  # a second: nothing new
    slack.wait_for("chat.postEphemeral", where=lambda c: "Nothing changed" in c.args["text"])
    assert len([r for r in bot.store.requests() if r.reinvite_of == request_id]) == 1


def test_only_the_requester_can_invite_again(driver, slack, bot, awork):
    """'Invite again' from a stranger is refused privately."""
    request_id, dm = invited(driver, slack, bot)
    refuse_next_accept(awork)
    driver.click("accept_invite", request_id, "UADA", channel=dm.channel, ts=dm.ts)
    wait_status(bot, request_id, Status.LAPSED)
    driver.click("invite_again", request_id, "USTRANGER", channel=GENERAL)
    slack.wait_for(
        "chat.postEphemeral",
        where=lambda c: (
            c.args["user"] == "USTRANGER" and "Only the person who asked" in c.args["text"]
        ),
    )
    assert bot.store.get(request_id).reinvited_as is None


def test_refused_code_is_explained_and_nothing_is_stuck(driver, slack, bot, awork):
    """awork refusing the code: the DM explains, the request is settled, the requester can ask again."""
    request_id, dm = invited(driver, slack, bot)
    refuse_next_accept(awork)
    driver.click("accept_invite", request_id, "UADA", channel=dm.channel, ts=dm.ts)
    request = wait_status(bot, request_id, Status.LAPSED)
    assert request.lapse_reason == "The invitation code is not valid."
    slack.wait_for(
        "chat.update",
        where=lambda c: c.args["channel"] == dm.channel and "did not accept" in c.args["text"],
    )
    assert not settle(bot, request_id).needs_delivery()


def test_awork_down_on_accept_leaves_the_button_working(driver, slack, bot, awork):
    """awork unreachable: 'click again', the request stays invited, and the next click joins."""
    request_id, dm = invited(driver, slack, bot)
    awork.fail_next += [Fault(503, path="/invitations/accept")]
    driver.click("accept_invite", request_id, "UADA", channel=dm.channel, ts=dm.ts)
    slack.wait_for("chat.postEphemeral", where=lambda c: "not answering" in c.args["text"])
    assert wait_status(bot, request_id, Status.INVITED)
    driver.click("accept_invite", request_id, "UADA", channel=dm.channel, ts=dm.ts)
    wait_status(bot, request_id, Status.JOINED)


def test_codes_appear_in_no_message_but_the_invitees_own(driver, slack, bot, awork):
    """The invitation code is in no Slack message at all; the reset code only in the joined DM."""
    request_id, dm = invited(driver, slack, bot)
    driver.click("accept_invite", request_id, "UADA", channel=dm.channel, ts=dm.ts)
    wait_status(bot, request_id, Status.JOINED)
    settle(bot, request_id)
    code, reset = (
        awork.invitations[0]["invitationCode"].rstrip("="),
        awork.invitations[0]["passwordResetCode"].rstrip("="),
    )
    assert code not in slack.texts()
    elsewhere = [
        c.args
        for c in slack.calls
        if not (c.method == "chat.update" and c.args.get("channel") == dm.channel)
    ]
    assert reset not in json.dumps(elsewhere)


def test_interrupted_acceptance_is_settled_by_the_sweep(driver, slack, bot, awork):
    """A crash between Accept and awork's answer: the sweep asks awork and records 'joined'."""
    request_id, _ = invited(driver, slack, bot)
    request = bot.store.get(request_id)
    # Held by a lease that ran out (the crashed process's), not by this bot.
    bot.store.transition(request_id, {Status.INVITED}, Status.JOINING, claim=("gone:1:x", -1))
    awork.handler(
        httpx.Request(
            "POST",
            "https://api.awork.com/api/v1/invitations/accept",
            json={"invitationCode": request.result.invitation_code.get_secret_value()},
            headers={"Authorization": f"Bearer {awork.api_key}"},
        )
    )
    bot.deps.courier.sweep()
    assert settle(bot, request_id).status is Status.JOINED


def test_accept_whose_answer_was_lost_counts_as_joined(driver, slack, bot, awork):
    """A 502 on accept after awork took it: the bot asks awork and reports 'joined', no retry."""
    request_id, dm = invited(driver, slack, bot)
    awork.fail_next.append(Fault(502, path="/invitations/accept", after_processing=True))
    driver.click("accept_invite", request_id, "UADA", channel=dm.channel, ts=dm.ts)
    wait_status(bot, request_id, Status.JOINED)
    slack.wait_for(
        "chat.update",
        where=lambda c: c.args["channel"] == dm.channel and "You joined" in c.args["text"],
    )
    assert len(accept_calls(awork)) == 1
