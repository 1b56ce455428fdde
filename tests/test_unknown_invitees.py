"""An acceptance link goes to the requester only for an invitee Slack says is not a member.
When Slack did not say - a rate limit, a timeout, a missing scope - the link waits for Slack
to answer, and goes to the invitee if they are in Slack after all; awork's own email, not
skipped, has reached them meanwhile."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from bot.domain.awork_models import InvitationResult
from bot.domain.batches import BatchStatus, InviteBatch, Summary
from bot.domain.clock import utcnow
from bot.domain.details import InviteDetails
from bot.domain.records import InviteRequest, Status
from bot.ui.bulk_blocks import batch_approval_message
from tests.conftest import APPROVERS
from tests.slack_requests import ADMIN_CHANNEL
from tests.test_bulk_scenarios import ask_inline, wait_batch
from tests.test_link_delivery import age_invitation, assert_never_sent, code_of
from tests.test_scenarios import settle, submit, wait_status

APPROVER = APPROVERS[0]


def to_requester(slack) -> list[str]:
    """The texts of the bot's DMs to the requester."""
    return [c.args["text"] for c in slack.of("chat.postMessage") if c.args["channel"] == "DUREQ"]


def until(check, timeout: float = 5.0):
    """`check()` once it is true (polled until `timeout`)."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.01)
    return found


def test_a_link_waits_while_slack_does_not_say_whether_the_invitee_is_a_member(
    driver, slack, bot, awork
):
    """users.lookupByEmail failing at approval and at delivery: the invitation goes out with
    awork's email, the link goes to nobody; once Slack answers, the invitee's own DM has it."""
    slack.members["ada@example.com"] = "UADA"
    slack.errors["users.lookupByEmail"] = "internal_error"
    request_id = submit(driver, slack)
    driver.click("approve_invite", request_id, APPROVER)
    wait_status(bot, request_id, Status.INVITED)
    until(lambda: len(slack.of("users.lookupByEmail")) >= 2)  # at approval, before the link
    bot.deps.courier.sweep(force=True)
    request = until(lambda: (r := bot.store.get(request_id)).lease_owner is None and r)
    assert request.invitee_slack_id is None and not request.link_attempted
    assert request.needs_delivery() and not request.awork_email_skipped
    assert not awork.invitations[0]["body"].get("skipSendingEmail")
    code = code_of(awork, "ada@example.com")
    assert_never_sent(slack, code)
    assert not [t for t in to_requester(slack) if "accept" in t.lower() and "link" in t.lower()]

    del slack.errors["users.lookupByEmail"]
    bot.deps.courier.sweep(force=True)
    request = settle(bot, request_id)
    assert request.invitee_slack_id == "UADA" and request.link_sent_to == "UADA"
    dm = slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "DUADA")[-1]
    assert "accept_invite" in json.dumps(dm.args["blocks"])
    assert_never_sent(slack, code)


def test_a_link_whose_invitation_lapses_before_slack_says_goes_to_nobody(driver, slack, bot, awork):
    """Still not known once the invitation has run out: it lapses, the link went nowhere, and
    nobody is told Slack refused a DM (it did not); awork's email carried it."""
    slack.errors["users.lookupByEmail"] = "missing_scope"
    request_id = submit(driver, slack)
    driver.click("approve_invite", request_id, APPROVER)
    wait_status(bot, request_id, Status.INVITED)
    until(lambda: bot.store.get(request_id).lease_owner is None)
    age_invitation(bot, request_id, hours=25)
    bot.deps.courier.sweep(force=True)
    request = settle(bot, request_id)
    assert request.status is Status.LAPSED and not request.link_withheld
    assert_never_sent(slack, code_of(awork, "ada@example.com"))
    assert not [t for t in to_requester(slack) if "did not let me DM you" in t]


def messages_of(slack) -> list[str]:
    """The approval messages' blocks as posted and updated, in the order Slack had them."""
    return [
        json.dumps(c.args.get("blocks"))
        for c in list(slack.calls)
        if c.method in ("chat.postMessage", "chat.update") and c.args["channel"] == ADMIN_CHANNEL
    ]


def hide_emails(slack) -> None:
    slack.scopes = [s for s in slack.scopes if s != "users:read.email"]


def fail_users_list(slack) -> None:
    slack.errors["users.list"] = "internal_error"


@pytest.mark.parametrize("unknown", [fail_users_list, hide_emails], ids=["fails", "no-emails"])
def test_a_batch_whose_run_could_not_read_slacks_members_lists_links_only_once_it_can(
    driver, slack, bot, awork, unknown
):
    """users.list failing during a bulk run, or showing no emails (users:read.email missing):
    no list of links goes to the requester and the message says they wait; once Slack answers,
    the member in Slack gets their own DM, only the other is listed, and the message says so."""
    slack.members["b@y.com"] = "UBEE"
    granted = list(slack.scopes)
    unknown(slack)
    batch_id = ask_inline(driver, slack, "a@x.com b@y.com")
    driver.click("approve_invite", batch_id, APPROVER)
    batch = until(
        lambda: (
            (b := bot.store.get_batch(batch_id)).status is BatchStatus.DONE
            and b.lease_owner is None
            and b
        )
    )
    members = bot.deps.batches.members(batch)
    assert all(m.invitee_unknown and m.invitee_slack_id is None for m in members)
    bot.deps.courier.sweep(force=True)
    assert not [t for t in to_requester(slack) if "Acceptance links" in t]
    assert not bot.store.get_batch(batch_id).links_listed
    until(lambda: "2 acceptance links wait until Slack says" in messages_of(slack)[-1])

    slack.errors.pop("users.list", None)
    slack.scopes = granted
    bot.deps.courier.sweep(force=True)
    wait_batch(bot, batch_id, BatchStatus.DONE)
    [listed] = [t for t in to_requester(slack) if "Acceptance links" in t]
    assert "a@x.com" in listed and "b@y.com" not in listed
    bot.deps.courier.sweep(force=True)  # the member found in Slack: its own DM
    member = next(m for m in bot.deps.batches.members(batch) if m.details.email == "b@y.com")
    assert settle(bot, member.id).link_sent_to == "UBEE"
    dm = slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "DUBEE")[-1]
    assert "accept_invite" in json.dumps(dm.args["blocks"])
    assert code_of(awork, "b@y.com").rstrip("=") not in json.dumps(to_requester(slack))
    wait_batch(bot, batch_id, BatchStatus.DONE)
    shown = until(
        lambda: "1 in Slack was asked" in messages_of(slack)[-1] and messages_of(slack)[-1]
    )
    assert "wait until" not in shown
    assert "the acceptance link of the other one went to <@UREQ>" in shown


def test_a_link_still_waiting_on_slack_is_told_to_the_approvers_when_overdue(
    driver, slack, bot, awork
):
    """Slack still not saying whether the invitee is a member at INVITE_REMIND_AFTER (capped at
    12 h): the approvers and the requester are told the link has not gone, without it."""
    slack.errors["users.lookupByEmail"] = "missing_scope"
    request_id = submit(driver, slack)
    driver.click("approve_invite", request_id, APPROVER)
    wait_status(bot, request_id, Status.INVITED)
    until(lambda: bot.store.get(request_id).lease_owner is None)
    bot.deps.courier.sweep(force=True)
    request = until(lambda: (r := bot.store.get(request_id)).lease_owner is None and r)
    assert request.invitee_unknown and request.link_overdue_at is None
    age_invitation(bot, request_id, hours=13)
    bot.deps.courier.sweep(force=True)
    request = until(
        lambda: (r := bot.store.get(request_id)).outcome_told and r.lease_owner is None and r
    )
    assert request.link_overdue_at is not None and not request.link_attempted
    assert request.needs_delivery()  # still asked again, until Slack answers or it lapses
    waits = "waits until Slack says whether the invitee is in Slack"
    until(lambda: waits in messages_of(slack)[-1])
    told = [t for t in to_requester(slack) if "approved your request" in t]
    assert told and waits in told[-1] and "carries it meanwhile" in told[-1]
    assert_never_sent(slack, code_of(awork, "ada@example.com"))


def test_a_link_waiting_on_slack_goes_to_the_requester_once_slack_says_not_a_member(
    driver, slack, bot, awork
):
    """Slack answering at last that the invitee is no member (users_not_found): the link goes
    to the requester, the request is no longer marked as waiting (nor due at every sweep),
    and the approval message says where it went."""
    slack.errors["users.lookupByEmail"] = "internal_error"
    request_id = submit(driver, slack)
    driver.click("approve_invite", request_id, APPROVER)
    wait_status(bot, request_id, Status.INVITED)
    until(lambda: len(slack.of("users.lookupByEmail")) >= 2)
    request = until(lambda: (r := bot.store.get(request_id)).lease_owner is None and r)
    assert request.invitee_unknown
    bot.deps.courier.sweep(force=True)  # the round after it was marked: the message redrawn
    until(lambda: "waits until Slack says" in messages_of(slack)[-1])

    del slack.errors["users.lookupByEmail"]
    bot.deps.courier.sweep(force=True)
    request = settle(bot, request_id)
    assert not request.invitee_unknown and request.link_sent_to == "UREQ"
    assert request.link_notice_at(timedelta(hours=1)) is None
    assert [t for t in to_requester(slack) if code_of(awork, "ada@example.com").rstrip("=") in t]
    until(lambda: "The acceptance link went by DM to <@UREQ>" in messages_of(slack)[-1])


def test_a_batchs_message_counts_as_waiting_only_links_still_to_send():
    """A member not known to be in Slack who has joined (through awork's email) or lapsed is
    not counted as a link waiting for Slack."""
    batch = InviteBatch(
        requester_id="UREQ", entries=[InviteDetails(email=f"{n}@x.com") for n in "abc"]
    )
    result = InvitationResult(invitation_code="C", issued_at=utcnow())
    members = [
        InviteRequest(
            requester_id="UREQ",
            details=InviteDetails(email=f"{n}@x.com"),
            status=status,
            invitee_unknown=True,
            result=result,
            batch_id=batch.id,
        )
        for n, status in zip("abc", (Status.INVITED, Status.JOINED, Status.LAPSED), strict=True)
    ]
    summary = Summary(invited=members)
    _, blocks = batch_approval_message(
        batch.model_copy(update={"status": BatchStatus.DONE}), summary
    )
    shown = json.dumps(blocks)
    assert "1 acceptance link waits until Slack says" in shown
