"""Issue 12 parts 1-3: outcomes reach people. Later news goes by DM naming the channel where
they asked, mentions stay mentions and counts agree, and nothing approvers decide on is cut."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

from bot.domain.awork_models import InvitationResult, Role
from bot.domain.batches import BatchStatus, InviteBatch, Summary
from bot.domain.clock import utcnow
from bot.domain.details import InviteDetails
from bot.domain.records import ApprovalRule, InviteRequest, Status
from bot.ui import answers, approval, bulk_blocks, bulk_notices, forms, lists, mrkdwn, notices
from tests.conftest import APPROVERS
from tests.slack_requests import ADMIN_CHANNEL, GENERAL
from tests.test_bulk_scenarios import ask_inline, wait_batch
from tests.test_joining import invited, refuse_next_accept
from tests.test_scenarios import settle, submit, wait_status

A, B = APPROVERS


def dms_to(slack, user: str, needle: str = "") -> list:
    return [
        c
        for c in slack.of("chat.postMessage")
        if c.args["channel"] == f"D{user}" and needle in c.args.get("text", "")
    ]


def ephemerals_to(slack, user: str, needle: str = "") -> list:
    return [
        c
        for c in slack.of("chat.postEphemeral")
        if c.args["user"] == user and needle in c.args.get("text", "")
    ]


def quiet_batch(bot, batch_id: str, timeout: float = 5.0) -> InviteBatch:
    """Wait until Slack has been told everything about the batch and no delivery runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = bot.store.get_batch(batch_id)
        if not batch.needs_delivery() and batch.lease_owner is None:
            return batch
        time.sleep(0.01)
    raise AssertionError(f"{batch_id} still has deliveries: {bot.store.get_batch(batch_id)}")


def texts(message: list[dict]) -> str:
    return json.dumps(message, ensure_ascii=False)


def all_text(message: list[dict]) -> str:
    """The text of every section and context, joined as Slack would show it."""
    parts = []
    for block in message:
        if block.get("type") == "section":
            parts.append(block["text"]["text"])
        elif block.get("type") == "context":
            parts += [e["text"] for e in block["elements"]]
    return "\n".join(parts)


# --- 1. later news goes by DM -----------------------------------------------------------------


def test_a_decision_reaches_the_requester_by_dm_naming_the_channel(driver, slack, bot):
    """Approved: the requester hears it by DM from the bot (conversations.open + postMessage),
    naming <#channel> where they asked; no ephemeral carries it."""
    request_id = submit(driver, slack)
    driver.click("approve_invite", request_id, A)
    wait_status(bot, request_id, Status.INVITED)
    settle(bot, request_id)
    [told] = dms_to(slack, "UREQ", "approved your request")
    assert f"You asked in <#{GENERAL}>." in told.args["text"]
    assert any(c.args.get("users") == "UREQ" for c in slack.of("conversations.open"))
    assert ephemerals_to(slack, "UREQ", "approved") == []


def test_the_immediate_answer_to_asking_stays_ephemeral_and_promises_a_dm(driver, slack, bot):
    """ "Waiting for an approver" answers the submission itself: ephemeral where they asked,
    saying the decision will come by DM."""
    request_id = submit(driver, slack)
    [waiting] = ephemerals_to(slack, "UREQ", request_id)
    assert waiting.args["channel"] == GENERAL
    assert "tell you by DM when it is decided" in waiting.args["text"]
    assert dms_to(slack, "UREQ") == []


def test_a_refused_dm_falls_back_to_the_ephemeral_where_they_asked(driver, slack, bot):
    """Slack refuses the DM to the requester: the news goes ephemeral to the channel where they
    asked (the old way) rather than nowhere."""
    slack.refused[("conversations.open", "UREQ")] = "cannot_dm_bot"
    request_id = submit(driver, slack)
    driver.click("deny_invite", request_id, A)
    slack.wait_for("views.open")
    driver.submit_deny(request_id, "No budget", A)
    wait_status(bot, request_id, Status.DENIED)
    request = settle(bot, request_id)
    [told] = ephemerals_to(slack, "UREQ", "denied your request")
    assert told.args["channel"] == GENERAL and request.outcome_told


def test_the_requester_hears_of_the_reminder_by_dm_once(driver, slack, bot):
    """INVITE_REMIND_AFTER passed: the approvers' thread gets its reminder and the requester a DM
    saying so (with the expiry and the channel) - once, however many sweeps follow."""
    request_id = submit(driver, slack)
    settle(bot, request_id)
    bot.store.update(request_id, created_at=utcnow() - timedelta(hours=25))
    bot.deps.courier.sweep()
    bot.deps.courier.sweep(force=True)
    request = settle(bot, request_id)
    [told] = dms_to(slack, "UREQ", "still waiting")
    text = told.args["text"]
    assert "reminded the approvers" in text and "expires <!date^" in text
    assert f"<#{GENERAL}>" in text and request.reminder_told
    assert [m.kind for m in request.messages].count("reminder_notice") == 1


def test_a_batch_reminder_and_outcome_reach_the_requester_by_dm(driver, slack, bot):
    """A batch: the reminder and, once approved, the summary go to the requester by DM."""
    batch_id = ask_inline(driver, slack, "a@x.com b@x.com")
    quiet_batch(bot, batch_id)
    bot.store.update(batch_id, created_at=utcnow() - timedelta(hours=25))
    bot.deps.courier.sweep()
    quiet_batch(bot, batch_id)
    [reminded] = dms_to(slack, "UREQ", "still waiting")
    assert "2 people" in reminded.args["text"] and f"<#{GENERAL}>" in reminded.args["text"]
    driver.click("approve_invite", batch_id, A)
    wait_batch(bot, batch_id, BatchStatus.DONE)
    [told] = dms_to(slack, "UREQ", "approved your request")
    assert f"<#{GENERAL}>" in told.args["text"]
    assert ephemerals_to(slack, "UREQ", "approved") == []


def test_invite_again_is_answered_in_the_dm_it_was_clicked_in(driver, slack, bot, awork):
    """The lapse arrives by DM with "Invite again"; the click's "waiting" answer comes in that DM
    too, not as an ephemeral in the channel of the first request."""
    request_id, dm = invited(driver, slack, bot)
    refuse_next_accept(awork)
    driver.click("accept_invite", request_id, "UADA", channel=dm.channel, ts=dm.ts)
    wait_status(bot, request_id, Status.LAPSED)
    settle(bot, request_id)
    assert dms_to(slack, "UREQ", "no longer be accepted")
    driver.click("invite_again", request_id, "UREQ", channel="DUREQ")
    slack.wait_for("chat.postMessage", where=lambda c: "is waiting" in c.args.get("text", ""))
    fresh = settle(bot, bot.store.get(request_id).reinvited_as)
    assert fresh.waiting_told and dms_to(slack, "UREQ", fresh.id)
    assert ephemerals_to(slack, "UREQ", fresh.id) == []


def test_news_names_the_channel_only_when_it_is_one():
    """The channel line is left out for an unknown origin and for a direct message."""
    denied = request(status=Status.DENIED, decided_by=A, deny_reason="no")
    assert notices.outcome_notice(denied).endswith(f"You asked in <#{GENERAL}>.")
    for origin in (None, "D0123ABC"):
        assert "You asked" not in notices.outcome_notice(
            denied.model_copy(update={"origin_channel": origin})
        )


# --- 2. mentions stay mentions, and the words fit ----------------------------------------------


def request(**changes) -> InviteRequest:
    base = InviteRequest(
        id="inv-1",
        requester_id="U0REQ",
        origin_channel=GENERAL,
        details=InviteDetails(email="ada@example.com", first_name="Ada"),
    )
    return base.model_copy(update=changes)


def batch(count: int = 4, **changes) -> InviteBatch:
    entries = [InviteDetails(email=f"p{i}@example.com") for i in range(count)]
    base = InviteBatch(
        id="bat-1",
        requester_id="U0REQ",
        origin_channel=GENERAL,
        entries=entries,
        status=BatchStatus.DONE,
        decided_by=A,
        approvals=[A],
    )
    return base.model_copy(update=changes)


def member(email: str, slack_id: str | None = None) -> InviteRequest:
    return InviteRequest(
        requester_id="U0REQ",
        status=Status.INVITED,
        details=InviteDetails(email=email),
        invitee_slack_id=slack_id,
        link_attempted=True,
    )


def test_the_bulk_summary_keeps_mentions_and_dm_in_their_case():
    """No case change: `<@U0REQ>` stays a mention (not `<@u0req>`) and "DM" stays "DM"."""
    summary = Summary(invited=[member("a@x.com", "U0ADA"), member("b@x.com")])
    text = all_text(bulk_blocks.summary_blocks(batch(2), summary))
    assert "<@U0REQ>" in text and "by DM" in text
    assert "<@u0" not in text and " dm" not in text
    assert "1 in Slack was asked by DM to accept; the acceptance link of the other one went" in text


def test_the_bulk_summary_says_all_when_nobody_is_in_slack():
    """Nobody in Slack: "the acceptance links of all 4", never "the other 4"."""
    summary = Summary(invited=[member(f"p{i}@x.com") for i in range(4)])
    text = all_text(bulk_blocks.summary_blocks(batch(4), summary))
    assert "The acceptance links of all 4 went to <@U0REQ> by DM." in text
    assert "other" not in text
    one = all_text(bulk_blocks.summary_blocks(batch(1), Summary(invited=[member("p@x.com")])))
    assert "The acceptance link went to <@U0REQ> by DM." in one


def test_counts_agree_with_their_nouns():
    """ "1 already a member", "1 person", "1 seat" - and plurals for more."""
    assert "1 already a member" in bulk_blocks.summary_line(Summary(already=["a@x.com"]))
    assert "2 already members" in bulk_blocks.summary_line(Summary(already=["a@x", "b@x"]))
    one = batch(1, status=BatchStatus.PENDING, decided_by=None, approvals=[])
    text, message = bulk_blocks.batch_approval_message(one)
    assert "1 person" in text and "1 people" not in texts(message)
    assert "Approve all 1" not in texts(message)
    assert "1 person" in bulk_notices.batch_waiting_notice(one)
    assert "*1 person*" in lists.item_line(one)
    seats = request(details=InviteDetails(email="a@x.com", new_workspace=True, booked_seats=1))
    assert "1 seat" in texts(approval.approval_message(seats)[1])
    assert "1 seats" not in texts(approval.approval_message(seats)[1])


def test_the_link_whereabouts_say_you_to_the_one_who_got_it():
    """The requester who got the link hears "you", not "went by DM to <@themselves>"; an
    invitee reading about their own DM likewise."""
    result = InvitationResult.model_validate({"invitationCode": "SECRET"})
    to_requester = request(status=Status.INVITED, decided_by=A, link_sent_to="U0REQ", result=result)
    notice = notices.outcome_notice(to_requester)
    assert "<@U0REQ>" not in notice and "I sent you its acceptance link by DM" in notice
    # The approvers still read who got it.
    assert "went by DM to <@U0REQ>" in texts(approval.approval_message(to_requester)[1])
    own = request(
        status=Status.INVITED,
        decided_by=A,
        link_sent_to="U0REQ",
        invitee_slack_id="U0REQ",
        result=result,
    )
    assert "You were asked by DM to accept it." in notices.outcome_notice(own)


def test_an_admin_role_approval_names_both_approvers():
    """Two approvals: the message, the requester's news and a late click name both approvers."""
    two = request(
        status=Status.INVITED,
        decided_by=B,
        approvals=[A, B],
        approvals_needed=2,
        approval_rule=ApprovalRule.TWO,
        link_sent_to="U0REQ",
        result=InvitationResult.model_validate({"invitationCode": "SECRET"}),
    )
    headline = approval.approval_message(two)[1]
    approved = next(b for b in headline if "invitation sent" in texts([b]))
    assert f"Approved by <@{A}> and <@{B}>" in texts([approved])
    assert f"<@{A}> and <@{B}> approved your request" in notices.outcome_notice(two)
    assert f"approved by <@{A}> and <@{B}>" in answers.already_decided(two)
    done = batch(2, decided_by=B, approvals=[A, B], approval_rule=ApprovalRule.TWO)
    summary = Summary(invited=[member("a@x.com", "U0ADA"), member("b@x.com", "U0BOB")])
    assert f"Approved by <@{A}> and <@{B}>" in all_text(bulk_blocks.summary_blocks(done, summary))
    assert f"<@{A}> and <@{B}> approved" in bulk_notices.batch_outcome_notice(done, summary)


def test_no_message_text_is_case_changed():
    """Guard: no .capitalize(), .title() or .upper()/.lower() on the text of a message builder."""
    for module in (approval, notices, answers, bulk_blocks, lists):
        with open(module.__file__, encoding="utf-8") as file:
            source = file.read()
        assert not re.search(r"\.(capitalize|title|swapcase|upper|lower)\(\)", source), module


# --- 3. nothing silently cut --------------------------------------------------------------------


def long_request(**changes) -> InviteRequest:
    details = InviteDetails(
        email="ada@example.com",
        first_name="A" * 100,
        last_name="L" * 100,
        position="P" * 200,
        skip_sending_email=True,
        new_workspace=True,
        plan_id="business",
        booked_seats=12,
        note=("&<>" * 333)[:999] + "Z",
    )
    teams = [f"Team {i:02d} " + "x" * 140 for i in range(60)]
    return request(details=details, team_names=teams, role_name="R" * 200, **changes)


def test_a_long_approval_summary_keeps_its_last_lines():
    """Many long team names: the message still shows "Welcome email: not sent" and the new
    workspace's plan and seats; the team list ends "and N more"; no block over 3,000."""
    _, message = approval.approval_message(long_request())
    text = all_text(message)
    assert "*Welcome email:* not sent" in text
    assert "*New workspace:*" in text and "12 seats" in text
    assert "and 40 more" in text
    assert all(len(b["text"]["text"]) <= 3000 for b in message if b["type"] == "section")
    assert len(message) <= 50
    assert [b["type"] for b in message][-1] == "actions"  # the buttons too


def test_a_long_note_is_split_not_cut():
    """A note that escapes to 5,000 characters is spread over sections, entities whole, its end
    kept."""
    _, message = approval.approval_message(long_request())
    quoted = [b["text"]["text"] for b in message if b["type"] == "section"]
    quoted = [t for t in quoted if t.startswith("> ")]
    assert len(quoted) >= 2 and quoted[-1].endswith("Z")
    joined = "".join(t.removeprefix("> ").replace("\n> ", "") for t in quoted)
    assert joined == mrkdwn.escape(long_request().details.note)


def test_a_long_batch_message_keeps_its_last_lines():
    """Ten people with the longest names: role, teams and "Welcome email: not sent" still show."""
    entries = [
        InviteDetails(
            email=f"{'p' * 60}{i}@{'e' * 60}.com",
            first_name="F" * 100,
            last_name="L" * 100,
            skip_sending_email=True,
        )
        for i in range(12)
    ]
    pending = InviteBatch(
        requester_id="U0REQ", entries=entries, role_name="Member", team_names=["Design"] * 30
    )
    _, message = bulk_blocks.batch_approval_message(pending)
    text = all_text(message)
    assert "*Welcome email:* not sent" in text and "*Role:* Member" in text
    assert "and 2 more" in text and "and 10 more" in text
    assert all(len(b["text"]["text"]) <= 3000 for b in message if b["type"] == "section")


def test_pieces_never_split_an_entity_or_a_mention():
    """A line broken to fit breaks before `&amp;` and `<@…>`, not inside."""
    line = "x" * 2997 + "&amp; <@U0123> tail"
    first, second = mrkdwn.pieces(line)
    assert first == "x" * 2997 and second.startswith("&amp;")
    mention = "y" * 2990 + "<@U0123456789> tail"
    first, second = mrkdwn.pieces(mention)
    assert first == "y" * 2990 and second.startswith("<@U0123456789>")


def test_an_admin_role_option_keeps_its_marker_however_long_the_name():
    """A 100-character admin role: the name is cut, "(admin)" stays, within 75 characters."""
    [option] = forms.role_options([Role(id="r1", name="N" * 100, isAdminRole=True)])
    text = option["text"]["text"]
    assert text.endswith("… (admin)") and len(text) == 75


def test_app_home_says_when_it_shows_fewer_requests_than_there_are():
    """More own requests than the App Home lists: it says how many and names `/invite mine`."""
    mine = [request(id=f"inv-{i}") for i in range(55)]
    view = lists.home_view([], mine, approver=True)
    text = all_text(view["blocks"])
    assert "*Your invitation requests: 55*" in text
    assert f"Showing the newest {lists.HOME_SHOWN} of 55" in text
    assert "`/invite mine`" in text and "`/invite mine 2`" in text
    assert len(view["blocks"]) <= 100
    few = all_text(lists.home_view([], mine[:3], approver=False)["blocks"])
    assert "Showing" not in few


def test_the_invitee_dm_shows_the_role_even_when_awork_chooses_it():
    """The invitee's DM always has a *Role:* line: the chosen role, or awork's default."""
    _, chosen = notices.invitee_dm(request(role_name="Project Manager"))
    assert "*Role:* Project Manager" in texts(chosen)
    _, default = notices.invitee_dm(request())
    assert "*Role:* awork's default role" in texts(default)


def test_the_admin_channel_message_stays_in_the_channel(driver, slack, bot):
    """The approval message itself is unchanged by part 1: posted to the approvers' channel."""
    request_id = submit(driver, slack)
    assert bot.store.get(request_id).approval_message.channel == ADMIN_CHANNEL


def test_a_reminder_posted_before_the_upgrade_is_not_told_again():
    """A stored request from before requesters heard of reminders (no reminder_told) whose
    reminder was posted counts as told: no late DM after the upgrade; new ones still are."""
    from bot.domain.batches import InviteBatch
    from bot.domain.details import InviteDetails
    from bot.domain.records import InviteRequest

    stored = InviteRequest(
        id="inv-old", requester_id="U1", details=InviteDetails(email="old@example.com")
    ).model_dump(mode="json")
    stored.pop("reminder_told")
    assert InviteRequest.model_validate({**stored, "reminder_posted": True}).reminder_told
    assert not InviteRequest.model_validate({**stored, "reminder_posted": False}).reminder_told
    old_batch = InviteBatch(
        requester_id="U1", entries=[InviteDetails(email="b@example.com")]
    ).model_dump(mode="json")
    old_batch.pop("reminder_told")
    assert InviteBatch.model_validate({**old_batch, "reminder_posted": True}).reminder_told


def test_an_unnamed_workspace_is_not_awork_on_awork():
    """Without the workspace's name from awork, the invitee reads "invited you to awork",
    "You joined awork" - never "awork on awork"; with it, the name and "on awork"."""
    from bot.domain.awork_models import Workspace

    unnamed = InviteRequest(
        requester_id="UREQ",
        details=InviteDetails(email="grace@example.com"),
        status=Status.JOINED,
        result=InvitationResult(),
    )
    named = unnamed.model_copy(
        update={"result": InvitationResult(workspace=Workspace(name="Acme"))}
    )
    texts = [
        notices.invitee_dm(unnamed)[0],
        str(notices.invitee_dm(unnamed)[1]),
        notices.answer_lost_dm(unnamed),
        notices.joined_dm(unnamed, "https://x/p")[0],
        notices.joined_dm(unnamed, None)[0],
    ]
    assert all("awork on awork" not in t and "awork* on awork" not in t for t in texts)
    assert "invited you to awork." in texts[1] and texts[3].startswith(":tada: You joined awork.")
    assert "*Acme* on awork" in str(notices.invitee_dm(named)[1])
    assert notices.joined_dm(named, None)[0] == ":tada: You joined Acme on awork."
