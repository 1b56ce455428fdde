"""Issue 17 part 9: a requester whose DMs Slack refuses (deactivated, not taking the bot's
messages) hears the invitation's result where they asked, as they hear a denial - and an
acceptance link meant for their DM is withheld, never posted to that channel."""

from __future__ import annotations

import json

import pytest

from bot.domain.batches import BatchStatus
from bot.domain.records import Status
from tests.conftest import APPROVERS
from tests.fakes.awork import awork_user
from tests.slack_requests import ADMIN_CHANNEL, GENERAL
from tests.test_bulk_scenarios import ask_inline, wait_batch
from tests.test_link_delivery import quiet
from tests.test_scenarios import settle, submit, wait_status

APPROVER = APPROVERS[0]
WITHHELD = "Slack did not let me DM you"
# What Slack answers a DM to a requester it will not let the bot reach, and where.
REFUSALS = [
    ("conversations.open", "UREQ", "user_disabled"),
    ("conversations.open", "UREQ", "cannot_dm_bot"),
    ("chat.postMessage", "DUREQ", "not_in_channel"),
]


def refuse(slack, method: str, target: str, error: str) -> None:
    slack.refused[(method, target)] = error


def told_in_channel(slack, needle: str) -> list:
    """The requester's ephemerals where they asked that contain `needle`."""
    return [
        c
        for c in slack.of("chat.postEphemeral")
        if c.args["user"] == "UREQ" and c.args["channel"] == GENERAL and needle in c.args["text"]
    ]


def aloud(slack) -> str:
    """Everything the bot sent to Slack but its refused DMs to the requester, as one string."""
    return json.dumps(
        [
            c.args
            for c in list(slack.calls)
            if not (c.method == "chat.postMessage" and c.args.get("channel") == "DUREQ")
        ]
    )


def codes(awork) -> list[str]:
    """The invitation codes awork made, as they would appear in a link (see test_link_delivery)."""
    return [i["invitationCode"].rstrip("=") for i in awork.invitations]


def fail_as_already_member(awork) -> None:
    awork.users.append(awork_user("ada@example.com", "Ada", "Lovelace", created_on="2020-01-01"))


def fail_for_seats(awork) -> None:
    awork.seats_free = 0


@pytest.mark.parametrize("refusal", REFUSALS, ids=[r[2] for r in REFUSALS])
@pytest.mark.parametrize(
    ("status", "before", "words"),
    [
        (Status.INVITED, None, "is invited to awork. " + WITHHELD),
        (Status.FAILED, fail_for_seats, "awork refused"),
        (Status.FAILED, fail_as_already_member, "already in the awork workspace"),
    ],
    ids=["invited", "failed", "already-member"],
)
def test_a_requests_result_reaches_a_refused_requester_where_they_asked(
    driver, slack, bot, awork, refusal, status, before, words
):
    """Slack refuses the requester's DM: the result (invited, failed, already a member) comes
    as an ephemeral where they asked, once; the approval message says the link was not sent."""
    refuse(slack, *refusal)
    request_id = submit(driver, slack)
    if before is not None:
        before(awork)
    driver.click("approve_invite", request_id, APPROVER)
    wait_status(bot, request_id, status)
    request = settle(bot, request_id)
    bot.deps.courier.sweep(force=True)
    [told] = told_in_channel(slack, "approved")
    assert words in told.args["text"] and f"<#{GENERAL}>" in told.args["text"]
    assert request.outcome_told and not settle(bot, request_id).delivery_failures
    if status is Status.INVITED:
        assert request.link_attempted and request.link_sent_to is None
        [shown] = [c for c in slack.of("chat.update") if c.args["channel"] == ADMIN_CHANNEL][-1:]
        assert "could not be sent by DM" in json.dumps(shown.args["blocks"])
        assert "link_withheld" in [e.event for e in bot.store.audit()]


@pytest.mark.parametrize("refusal", REFUSALS, ids=[r[2] for r in REFUSALS])
def test_a_batchs_summary_reaches_a_refused_requester_where_they_asked(
    driver, slack, bot, awork, refusal
):
    """A batch: the summary comes where they asked, counting the links Slack would not let the
    bot DM them; the approval message says so too; the batch settles instead of retrying them;
    the invitee in Slack gets theirs."""
    refuse(slack, *refusal)
    slack.members["b@y.com"] = "UBEE"
    batch_id = ask_inline(driver, slack, "a@x.com b@y.com c@x.com owner@ncnstn.com")
    driver.click("approve_invite", batch_id, APPROVER)
    batch = wait_batch(bot, batch_id, BatchStatus.DONE)
    bot.deps.courier.sweep(force=True)
    [told] = told_in_channel(slack, "approved your request")
    text = told.args["text"]
    assert "*3 invited* · 1 already a member" in text and f"<#{GENERAL}>" in text
    assert "the acceptance links of 2 people who are not in this Slack" in text
    assert "awork's own email carries them" in text
    assert batch.links_listed and not wait_batch(bot, batch_id, BatchStatus.DONE).delivery_failures
    slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "DUBEE")
    shown = json.dumps(
        [c for c in slack.of("chat.update") if c.args["channel"] == ADMIN_CHANNEL][-1].args
    )
    assert "2 acceptance links could not be sent: Slack refused <@UREQ> the DM" in shown
    assert "went to <@UREQ> by DM" not in shown


@pytest.mark.parametrize("refusal", REFUSALS, ids=[r[2] for r in REFUSALS])
def test_no_acceptance_link_reaches_a_channel_when_the_requesters_dm_is_refused(
    driver, slack, bot, awork, refusal
):
    """Links meant for a refused requester's DM (a request's, a batch's) are in no ephemeral, no
    channel post and no message update, however many sweeps follow; the outcomes did arrive."""
    refuse(slack, *refusal)
    request_id = ask_inline(driver, slack, "ada@example.com --no-email")
    driver.click("approve_invite", request_id, APPROVER)
    wait_status(bot, request_id, Status.INVITED)
    settle(bot, request_id)
    batch_id = ask_inline(driver, slack, "a@x.com b@x.com --no-email")
    driver.click("approve_invite", batch_id, APPROVER)
    wait_batch(bot, batch_id, BatchStatus.DONE)
    for _ in range(2):
        bot.deps.courier.sweep(force=True)
    said = aloud(slack)
    assert len(codes(awork)) == 3 and not [code for code in codes(awork) if code in said]
    assert "accept?code=" not in said
    [single] = told_in_channel(slack, "ada@example.com is invited")
    assert "awork's own email was skipped" in single.args["text"]
    assert "resend the invitation from awork's user list" in single.args["text"]
    [batch] = told_in_channel(slack, batch_id)[-1:]
    assert "resend the invitations from awork's user list" in batch.args["text"]


def test_slack_failing_for_now_is_no_refusal_and_the_dm_waits_for_a_sweep(
    driver, slack, bot, awork
):
    """`internal_error` on the requester's DM is Slack's passing trouble: nothing is said in the
    channel, no link is withheld; once Slack answers, a sweep DMs the link and both results."""
    refuse(slack, "conversations.open", "UREQ", "internal_error")
    invited = submit(driver, slack)
    failed = submit(driver, slack, {"email": "bo@example.com"})
    awork.seats_free = 1  # the first gets the last seat, the second fails
    for request_id, status in ((invited, Status.INVITED), (failed, Status.FAILED)):
        driver.click("approve_invite", request_id, APPROVER)
        wait_status(bot, request_id, status)
        assert quiet(bot, request_id).delivery_failures == 1
    assert told_in_channel(slack, "approved") == [] and not bot.store.get(invited).link_attempted
    slack.refused.clear()
    bot.deps.courier.sweep(force=True)
    assert settle(bot, invited).link_sent_to == "UREQ" and settle(bot, failed).outcome_told
    dms = [c.args["text"] for c in slack.of("chat.postMessage") if c.args["channel"] == "DUREQ"]
    assert [t for t in dms if "accept?code=" in t] and len([t for t in dms if "approved" in t]) == 2
    assert told_in_channel(slack, "approved") == []


def test_a_persons_dm_channel_is_opened_once_and_again_after_a_refused_post(bot, slack):
    """Two DMs to one person ask conversations.open once; after Slack refuses a post to that
    channel, the next DM opens it afresh."""
    courier = bot.deps.courier
    assert courier.dm("UADA", "one") and courier.dm("UADA", "two")
    assert len(slack.of("conversations.open")) == 1
    [channel] = {c.args["channel"] for c in slack.of("chat.postMessage")}
    slack.refused[("chat.postMessage", channel)] = "not_in_channel"
    assert courier.dm("UADA", "three") is None
    del slack.refused[("chat.postMessage", channel)]
    assert courier.dm("UADA", "four")
    assert len(slack.of("conversations.open")) == 2


def test_a_dm_to_a_kept_channel_that_is_gone_goes_to_the_channel_opened_afresh(bot, slack):
    """When the DM channel kept for a person is gone (channel_not_found), the same DM is posted
    once more in the channel Slack opens now, and that one is kept."""
    courier = bot.deps.courier
    assert courier.dm("UADA", "one")[0] == "DUADA"
    slack.refused[("chat.postMessage", "DUADA")] = "channel_not_found"
    slack.dm_ids["UADA"] = "DUADA2"
    assert courier.dm("UADA", "two")[0] == "DUADA2"
    assert courier.dm("UADA", "three")[0] == "DUADA2"
    posted = [(c.args["channel"], c.args["text"]) for c in slack.of("chat.postMessage")]
    assert posted[1:] == [("DUADA", "two"), ("DUADA2", "two"), ("DUADA2", "three")]
    assert len(slack.of("conversations.open")) == 2


def test_a_persons_dm_channel_is_asked_for_again_after_a_day(bot, slack):
    """A day on, conversations.open is asked again (it says when a person was deactivated; a
    post to their old channel would not)."""
    now = [0.0]
    courier = bot.deps.courier
    courier.dm_channels.clock = lambda: now[0]
    assert courier.dm("UADA", "one")
    now[0] += 24 * 3600 - 1
    assert courier.dm("UADA", "two")
    assert len(slack.of("conversations.open")) == 1
    now[0] += 2
    assert courier.dm("UADA", "three")
    assert len(slack.of("conversations.open")) == 2
