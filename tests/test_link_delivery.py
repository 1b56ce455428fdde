"""Issue 11 part 8: an invitee's link goes only to the invitee. A DM to an invitee in Slack
that Slack refuses is retried by the outbox and never rerouted to the requester; when it is
still undelivered after INVITE_REMIND_AFTER, the approval message tells the approvers - without
the link or the code."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from bot.domain.awork_models import INVITATION_VALIDITY, InvitationResult
from bot.domain.batches import BatchStatus
from bot.domain.clock import utcnow
from bot.domain.details import InviteDetails
from bot.domain.records import InviteRequest, Status
from tests.conftest import APPROVERS, SIGNING_SECRET, build_bot, make_settings
from tests.slack_requests import ADMIN_CHANNEL, GENERAL, SlackDriver
from tests.test_bulk_scenarios import ask_inline, wait_batch
from tests.test_scenarios import settle, submit, wait_status

APPROVER = APPROVERS[0]
OVERDUE = "could not be delivered to"


def code_of(awork, email: str) -> str:
    return next(i["invitationCode"] for i in awork.invitations if i["body"]["email"] == email)


def assert_never_sent(slack, code: str) -> None:
    """Not in any Slack call the bot made (texts, blocks, views), as typed or as in a link
    (the fake's codes are URL-safe but for the trailing '=')."""
    assert code.rstrip("=") not in slack.texts()


def quiet(bot, record_id: str, timeout: float = 5.0):
    """Wait until no delivery holds the record's lease (the click's work is over)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = bot.store.read(record_id)
        if record.lease_owner is None and record.delivery_failures:
            return record
        time.sleep(0.01)
    raise AssertionError(bot.store.read(record_id))


def updates_of(slack, needle: str) -> list:
    return [c for c in slack.of("chat.update") if needle in json.dumps(c.args.get("blocks"))]


def age_invitation(bot, request_id: str, hours: float) -> None:
    """Pretend awork made the invitation `hours` ago."""
    result = bot.store.get(request_id).result
    issued = utcnow() - timedelta(hours=hours)
    bot.store.update(request_id, result=result.model_copy(update={"issued_at": issued}))


# --- when the approvers hear of it ------------------------------------------------------------


def test_the_notice_comes_after_remind_after_at_the_latest_halfway_through_the_code():
    """INVITE_REMIND_AFTER after the invitation, capped at 12 h of the code's 24; only for an
    undelivered DM to an invitee in Slack, and once."""
    issued = utcnow()
    request = InviteRequest(
        status=Status.INVITED,
        requester_id="UREQ",
        details=InviteDetails(email="ada@example.com"),
        invitee_slack_id="UADA",
        result=InvitationResult(invitation_code="C", issued_at=issued),
    )
    assert request.link_notice_at(timedelta(hours=1)) == issued + timedelta(hours=1)
    assert request.link_notice_at(timedelta(hours=24)) == issued + INVITATION_VALIDITY / 2
    for done in (
        {"link_attempted": True},
        {"link_overdue_at": utcnow()},
        {"invitee_slack_id": None},
        {"status": Status.LAPSED},
    ):
        assert request.model_copy(update=done).link_notice_at(timedelta(hours=1)) is None


# --- single requests ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target"), [("conversations.open", "UADA"), ("chat.postMessage", "DUADA")]
)
def test_a_refused_invitee_dm_is_retried_and_never_goes_to_the_requester(
    driver, slack, bot, awork, method, target
):
    """Slack refuses the invitee's DM (opening it, or posting in it): nothing goes to the
    requester, the message says it is retried, and a sweep after Slack recovers delivers it."""
    slack.members["ada@example.com"] = "UADA"
    slack.refused[(method, target)] = "internal_error"
    request_id = submit(driver, slack)
    driver.click("approve_invite", request_id, APPROVER)
    wait_status(bot, request_id, Status.INVITED)
    slack.wait_for(
        "chat.update", where=lambda c: "has not been delivered yet" in json.dumps(c.args)
    )
    request = quiet(bot, request_id)
    assert request.link_sent_to is None and not request.link_attempted and request.needs_delivery()
    bot.deps.courier.sweep(force=True)  # still refused: still to nobody else
    code = code_of(awork, "ada@example.com")
    assert_never_sent(slack, code)
    assert [c for c in slack.of(method) if target in (c.args.get("users"), c.args.get("channel"))]
    assert "accept?code=" not in slack.texts()
    assert not [c for c in slack.of("chat.postMessage") if c.args["channel"] == "DUREQ"]
    assert bot.store.get(request_id).link_overdue_at is None  # not yet INVITE_REMIND_AFTER
    assert not updates_of(slack, OVERDUE)

    slack.refused.clear()
    bot.deps.courier.sweep(force=True)
    request = settle(bot, request_id)
    assert request.link_sent_to == "UADA" and request.link_attempted
    dm = slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "DUADA")[-1]
    assert "accept_invite" in json.dumps(dm.args["blocks"])
    assert updates_of(slack, "<@UADA> was asked by DM to accept it")
    told = slack.wait_for(
        "chat.postMessage", where=lambda c: "approved your request" in c.args["text"]
    )[0]
    assert told.args["channel"] == "DUREQ" and "<@UADA>" in told.args["text"]
    assert f"<#{GENERAL}>" in told.args["text"]
    assert_never_sent(slack, code)


def test_an_undelivered_link_is_told_to_the_approvers_after_remind_after(tmp_path, slack, awork):
    """Still undelivered INVITE_REMIND_AFTER (1 h here) after the invitation: the approval
    message (and the requester) hear it once, without the link, whatever the back-off; the
    outbox keeps trying and delivers it once Slack lets it."""
    settings = make_settings(tmp_path, slack.url, INVITE_REMIND_AFTER="1h")
    bot = build_bot(settings, awork.handler)
    try:
        bot.deps.catalog.refresh()
        driver = SlackDriver(bot.app, SIGNING_SECRET)
        slack.members["ada@example.com"] = "UADA"
        slack.refused[("conversations.open", "UADA")] = "cannot_dm_bot"
        request_id = submit(driver, slack)
        driver.click("approve_invite", request_id, APPROVER)
        wait_status(bot, request_id, Status.INVITED)
        quiet(bot, request_id)
        bot.deps.courier.sweep()
        assert not updates_of(slack, OVERDUE)

        age_invitation(bot, request_id, hours=2)
        bot.deps.courier.sweep()  # due by the notice time, though backing off for minutes
        request = bot.store.get(request_id)
        assert request.link_overdue_at is not None and not request.link_attempted
        [update] = updates_of(slack, OVERDUE)
        words = json.dumps(update.args["blocks"])
        assert update.args["channel"] == ADMIN_CHANNEL and "<@UADA>" in words
        assert "open a direct message with the bot" in words and "keeps trying" in words
        told = slack.wait_for(
            "chat.postMessage", where=lambda c: "approved your request" in c.args["text"]
        )[0]
        assert OVERDUE in told.args["text"] and told.args["channel"] == "DUREQ"
        bot.deps.courier.sweep(force=True)
        events = [e.event for e in bot.store.audit() if e.request_id == request_id]
        assert events.count("link_undelivered") == 1 and len(updates_of(slack, OVERDUE)) == 1
        assert_never_sent(slack, code_of(awork, "ada@example.com"))

        slack.refused.clear()
        bot.deps.courier.sweep(force=True)
        assert settle(bot, request_id).link_sent_to == "UADA"
        assert OVERDUE not in json.dumps(slack.of("chat.update")[-1].args["blocks"])
        assert "link_delivered_late" in [e.event for e in bot.store.audit()]
        assert_never_sent(slack, code_of(awork, "ada@example.com"))
    finally:
        bot.shutdown(timeout=5)


# --- batch members -------------------------------------------------------------------------


def test_a_batch_members_refused_dm_stays_theirs_and_the_batch_message_tells_of_it(
    driver, slack, bot, awork
):
    """A batch: the member in Slack whose DM is refused is not on the requester's list of
    links and gets no approval message of its own; 12 h on (INVITE_REMIND_AFTER 24 h, capped)
    the batch's message says it could not be delivered; then a sweep delivers it."""
    slack.members["b@y.com"] = "UBEE"
    slack.refused[("conversations.open", "UBEE")] = "internal_error"
    batch_id = ask_inline(driver, slack, "a@x.com b@y.com")
    driver.click("approve_invite", batch_id, APPROVER)
    batch = wait_batch(bot, batch_id, BatchStatus.DONE)
    member = next(m for m in bot.deps.batches.members(batch) if m.invitee_slack_id == "UBEE")
    quiet(bot, member.id)
    links = slack.wait_for(
        "chat.postMessage",
        where=lambda c: c.args["channel"] == "DUREQ" and "Acceptance links" in c.args["text"],
    )[0]
    assert "a@x.com" in links.args["text"] and "b@y.com" not in links.args["text"]
    assert not [c for c in slack.of("chat.postMessage") if "b@y.com from" in c.args["text"]]
    assert_never_sent(slack, code_of(awork, "b@y.com"))

    age_invitation(bot, member.id, hours=13)
    bot.deps.courier.sweep()
    batch = wait_batch(bot, batch_id, BatchStatus.DONE)
    assert batch.link_news == batch.shown_link_news == 1
    [update] = updates_of(slack, OVERDUE)
    assert update.args["ts"] == batch.approval_message.ts and "<@UBEE>" in json.dumps(update.args)
    assert_never_sent(slack, code_of(awork, "b@y.com"))

    slack.refused.clear()
    bot.deps.courier.sweep(force=True)
    assert settle(bot, member.id).link_sent_to == "UBEE"
    slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "DUBEE")
    batch = wait_batch(bot, batch_id, BatchStatus.DONE)
    assert batch.shown_link_news == 2
    assert OVERDUE not in json.dumps(slack.of("chat.update")[-1].args["blocks"])
    assert_never_sent(slack, code_of(awork, "b@y.com"))
