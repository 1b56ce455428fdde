"""Slack slower than the client's timeout, or answering 5xx after it posted: one live approval
message per request - found by its metadata and adopted instead of posted again - and copies that
happened anyway lose their buttons. Through the real Bolt app against the fake Slack."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from bot.domain.clock import utcnow
from bot.domain.records import Status
from bot.runtime import slack_clients
from bot.ui import mrkdwn
from bot.ui.copies import RETIRED_NOTE, has_buttons, retired
from tests.conftest import build_bot, make_settings
from tests.slack_requests import ADMIN_CHANNEL
from tests.test_scenarios import ADA, APPROVER, settle, submit, wait_status

TIMEOUT = 0.3  # SLACK_TIMEOUT here
LATE = 1.0  # when a slow Slack answers: after the client gave up


@pytest.fixture
def bot(tmp_path, slack, awork, monkeypatch):
    """The real bot waiting TIMEOUT for Slack, and slack_sdk's retries without its backoff."""
    monkeypatch.setattr(slack_clients, "RETRY_INTERVALS", FixedValueRetryIntervalCalculator(0.01))
    built = build_bot(make_settings(tmp_path, slack.url, SLACK_TIMEOUT=str(TIMEOUT)), awork.handler)
    assert built.deps.catalog.refresh()
    yield built
    built.shutdown(timeout=5)


def copies_of(slack, request_id: str, channel: str = ADMIN_CHANNEL, kind: str = "approval"):
    """The messages Slack shows in `channel` for the request's `kind`, oldest first."""
    return [
        m
        for m in slack.in_channel(channel)
        if (m.get("metadata") or {}).get("event_payload", {}).get("id") == request_id
        and m["metadata"]["event_payload"]["kind"] == kind
    ]


def posts_to(slack, channel: str) -> int:
    return len([c for c in slack.of("chat.postMessage") if c.args["channel"] == channel])


def later(bot, seconds: float = 2 * TIMEOUT + 1) -> None:
    """The Courier's wall clock `seconds` on: an attempt's answer can no longer be on its way."""
    bot.deps.courier.wall_clock = lambda: utcnow() + timedelta(seconds=seconds)


def events(bot, request_id: str) -> list[str]:
    return [e.event for e in bot.store.audit() if e.request_id == request_id]


def test_a_slow_post_is_found_and_adopted_and_its_buttons_work(driver, slack, bot, caplog):
    """Slack answers the approval post after the client's timeout: the sweep waits (logged as
    INFO, not an error), then finds the message by its metadata and adopts it - one post, one
    live copy, tracked - and its Approve works."""
    slack.mishap("chat.postMessage", late=LATE)
    request_id = submit(driver, slack)
    assert bot.deps.wait_idle()
    request = bot.store.get(request_id)
    assert request.approval_message is None
    assert [(m.kind, m.ts) for m in request.messages if m.kind == "approval"] == [("approval", "")]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        bot.deps.courier.sweep(force=True)  # too soon: the first post may still be on its way
    assert not slack.of("conversations.history")
    waiting = [r for r in caplog.records if "could not post the approval" in r.getMessage()]
    assert waiting and all(r.levelno == logging.INFO for r in waiting)  # expected, not an error
    later(bot)
    bot.deps.courier.sweep(force=True)
    request = settle(bot, request_id)
    [copy] = copies_of(slack, request_id)
    assert request.approval_message.ts == copy["ts"] and has_buttons(copy["blocks"])
    assert posts_to(slack, ADMIN_CHANNEL) == 1
    assert "message_adopted" in events(bot, request_id)
    assert all(m.ts for m in request.messages)  # the attempt is settled
    [look] = slack.of("conversations.history")
    assert look.args["include_all_metadata"] in ("1", "true", True)

    driver.click("approve_invite", request_id, APPROVER)
    wait_status(bot, request_id, Status.INVITED)
    settle(bot, request_id)
    [copy] = copies_of(slack, request_id)
    assert not has_buttons(copy["blocks"]) and "Approved by" in json.dumps(copy["blocks"])
    assert posts_to(slack, ADMIN_CHANNEL) == 1


def test_an_approval_posts_attempt_is_noted_with_the_lease_before_it_leaves(driver, slack, bot):
    """The approval message's attempt is on the stored record when Slack gets the post - kept
    by the delivery lease's renewal right before it, not by a write of its own."""
    seen, writes = [], []
    answer, update = slack.answer, bot.store.update

    def answering(method, args, token=""):
        payload = (args.get("metadata") or {}).get("event_payload") or {}
        if method == "chat.postMessage" and payload.get("kind") == "approval":
            stored = bot.store.get(payload["id"])
            seen.append([(m.kind, m.ts) for m in stored.messages])
        return answer(method, args, token)

    slack.answer = answering
    bot.store.update = lambda record_id, **changes: (
        writes.append(changes) or update(record_id, **changes)
    )
    request_id = submit(driver, slack)
    request = settle(bot, request_id)
    assert seen == [[("approval", "")]]  # noted before it left, once
    assert not [w for w in writes if "messages" in w]
    assert request.approval_message is not None and all(m.ts for m in request.messages)


def test_a_lost_dm_is_posted_once_though_the_round_changed_the_record(driver, slack, bot):
    """Every DM answers late: in one delivery round the link DM is adopted (the record moves on)
    and the outcome DM's answer is lost - the next round sees that attempt and does not post
    the outcome DM again; the record comes due again as soon as the attempt can be looked for."""
    request_id = submit(driver, slack)
    settle(bot, request_id)
    slack.mishap("chat.postMessage", late=LATE, times=10)
    driver.click("approve_invite", request_id, APPROVER)
    wait_status(bot, request_id, Status.INVITED)
    assert bot.deps.wait_idle()
    later(bot)
    bot.deps.courier.sweep(force=True)  # adopts the link DM, posts the outcome DM: lost
    outcome = copies_of(slack, request_id, channel="DUREQ", kind="outcome_notice")
    assert len(outcome) == 1
    request = bot.store.get(request_id)
    [lost] = [m for m in request.messages if not m.ts]
    look_after = timedelta(seconds=bot.deps.courier.look_after + 1)
    assert request.next_delivery_at <= lost.at + look_after


def test_a_post_whose_delivery_lease_passed_on_is_not_sent(driver, slack, bot):
    """A delivery round outlived its lease (slow Slack calls) and another holder has the record
    now: the next post of the round is not sent - the holder delivers it."""
    from handlers.delivery.slack_errors import Unsettled

    request_id = submit(driver, slack)
    request = settle(bot, request_id)
    courier, sent = bot.deps.courier, len(slack.of("chat.postMessage"))
    courier.delivering.lease = (request_id, "me:1", 60.0)  # this thread's round, run out
    try:
        assert bot.store.lease(request_id, "elsewhere:1", seconds=60)
        with pytest.raises(Unsettled):
            courier.post(request, "reminder", ADMIN_CHANNEL, "still waiting")
        assert len(slack.of("chat.postMessage")) == sent
        bot.store.release(request_id, "elsewhere:1")
        courier.post(request, "reminder", ADMIN_CHANNEL, "still waiting")  # ours again
        assert len(slack.of("chat.postMessage")) == sent + 1
    finally:
        courier.delivering.lease = None


def test_a_post_right_after_the_lease_was_renewed_renews_it_no_sooner(
    driver, slack, bot, monkeypatch
):
    """Within `fresh_for` of the delivery lease's renewal a post writes nothing first; later,
    it renews the lease - and sends nothing once another holder has it."""
    import time

    from handlers.delivery.slack_errors import Unsettled

    request_id = submit(driver, slack)
    request = settle(bot, request_id)
    courier, store = bot.deps.courier, bot.store
    renewals: list[str] = []
    leased = store.leased
    monkeypatch.setattr(
        store, "leased", lambda rid, *a, **k: renewals.append(rid) or leased(rid, *a, **k)
    )
    sent = len(slack.of("chat.postMessage"))
    held = leased(request_id, "me:1", seconds=60)
    courier.delivering.lease = (request_id, "me:1", 60.0)
    try:
        courier._renewed(time.monotonic(), held)  # taken just now
        courier.post(request, "reminder", ADMIN_CHANNEL, "still waiting")
        assert renewals == [] and len(slack.of("chat.postMessage")) == sent + 1

        courier._renewed(time.monotonic() - courier.fresh_for, held)  # taken a while ago
        courier.post(request, "reminder_notice", ADMIN_CHANNEL, "still waiting")
        assert renewals == [request_id] and len(slack.of("chat.postMessage")) == sent + 2

        store.release(request_id, "me:1")
        assert store.lease(request_id, "elsewhere:1", seconds=60)  # after ours had run out
        courier._renewed(time.monotonic() - courier.fresh_for, held)
        with pytest.raises(Unsettled):
            courier.post(request, "outcome_notice", ADMIN_CHANNEL, "invited")
        assert len(slack.of("chat.postMessage")) == sent + 2
    finally:
        courier.delivering.lease = courier.delivering.renewed = None


def test_a_round_begins_on_a_decisions_lease_only_if_that_change_took_it_for_long_enough(
    driver, slack, bot
):
    """A round starts without a write of its own only on a lease the change before it took:
    not on an older one of this thread's the record still names (that change was refused),
    nor on one shorter than a round's."""
    import time

    from bot.store.leasing import DeliveryLease

    request_id = submit(driver, slack)
    settle(bot, request_id)
    courier, store = bot.deps.courier, bot.store
    owner = courier.lease_here().owner
    assert store.lease(request_id, owner, seconds=60)  # an older lease of this thread's
    refused = courier.lease_here()
    ok, current = store.transition(request_id, {Status.DENIED}, Status.PENDING, lease=refused)
    assert not ok and current.lease_owner == owner
    assert not courier._took(refused, current, request_id, owner, 60)
    short = DeliveryLease(owner, 30, sent=time.monotonic())
    assert not courier._took(short, current, request_id, owner, 60)
    taken = DeliveryLease(owner, 60, sent=time.monotonic())
    assert courier._took(taken, current, request_id, owner, 60)


def test_a_post_right_after_an_attempt_was_noted_in_its_round_looks_for_it(driver, slack, bot):
    """Within the lease's first seconds a post does not renew it, yet it sees an attempt of
    its kind noted earlier in the round: that one may still reach Slack, so nothing is sent."""
    import time

    from handlers.delivery.slack_errors import Unsettled

    request_id = submit(driver, slack)
    request = settle(bot, request_id)
    courier, store = bot.deps.courier, bot.store
    held = store.leased(request_id, "me:1", seconds=60)
    courier.delivering.lease = (request_id, "me:1", 60.0)
    try:
        courier._renewed(time.monotonic(), held)
        courier._note_attempt(request_id, "reminder", ADMIN_CHANNEL, courier.wall_clock())
        sent = len(slack.of("chat.postMessage"))
        with pytest.raises(Unsettled):
            courier.post(request, "reminder", ADMIN_CHANNEL, "still waiting")
        assert len(slack.of("chat.postMessage")) == sent
    finally:
        courier.delivering.lease = courier.delivering.renewed = None


def test_a_round_inside_another_leaves_the_outer_rounds_lease_as_it_was(driver, slack, bot):
    """A batch's message delivered while one of its members is (a round inside a round): the
    outer round's lease, renewal and notes are as they were once the inner one is done."""
    first = submit(driver, slack)
    settle(bot, first)
    second = submit(driver, slack, {**ADA, "email": "bob@example.com"})
    settle(bot, second)
    courier = bot.deps.courier
    outer = ((first, "me:1", 60.0), (1.0, bot.store.get(first)), {"shown": 1}, None)
    for name, value in zip(("lease", "renewed", "noted", "placed"), outer, strict=True):
        setattr(courier.delivering, name, value)
    try:
        courier._sync(second, 1.0, lambda record: record)
        assert (
            courier.delivering.lease,
            courier.delivering.renewed,
            courier.delivering.noted,
            courier.delivering.placed,
        ) == outer
    finally:
        courier.delivering.lease = courier.delivering.renewed = None


def test_a_rounds_closing_carried_by_another_write_gives_back_only_its_own_lease():
    """The closing handed to the work lease's renewal gives the delivery lease back only while
    it is still the round's, and writes what the round noted only on the version it left."""
    from types import SimpleNamespace

    from bot.store.leasing import closing as round_closing

    closing = round_closing("me:1", {"shown_status": Status.INVITING}, seen=7)
    released = {"lease_owner": None, "lease_until": None}
    assert closing(SimpleNamespace(lease_owner="me:1", version=7)) == {
        "shown_status": Status.INVITING,
        **released,
    }
    assert closing(SimpleNamespace(lease_owner="me:1", version=8)) == released
    assert closing(SimpleNamespace(lease_owner="elsewhere:1", version=7)) == {}


def test_a_rounds_last_post_after_a_renewal_keeps_what_the_round_noted(driver, slack, bot):
    """The round's last post renews the lease first (the round was slow): what the round noted
    (the approval message shows the denial) is still written with its closing - the message is
    updated once, not again by another round."""
    request_id = submit(driver, slack)
    settle(bot, request_id)
    courier = bot.deps.courier
    courier.fresh_for = 0.0  # every post renews the lease first
    assert bot.deps.service.deny(request_id, APPROVER, "not now").ok
    updates = len(slack.of("chat.update"))
    courier.sync(request_id)
    assert len(slack.of("chat.update")) == updates + 1
    stored = bot.store.get(request_id)
    assert stored.shown_status is Status.DENIED and not stored.needs_delivery()


def test_a_round_inside_this_threads_round_on_the_same_record_does_nothing(driver, slack, bot):
    """A delivery asked for while this thread's own round holds the record (a batch's member
    noting link news on the batch it is delivering) does nothing: the lease stays the outer
    round's, which goes round again for what changed."""
    request_id = submit(driver, slack)
    settle(bot, request_id)
    courier, store = bot.deps.courier, bot.store
    store.update(request_id, waiting_told=False)  # something to deliver
    seen = {}

    def deliver(record):
        seen["inner"] = courier._sync(request_id, 0, lambda r: pytest.fail("delivered inside"))
        seen["holder"] = store.get(request_id).lease_owner
        return courier._posted_last(record, "waiting_notice", ("CASK", "9.2"), waiting_told=True)

    courier._sync(request_id, 1.0, deliver)
    assert seen == {"inner": None, "holder": courier.lease_here().owner}
    assert store.get(request_id).waiting_told


@pytest.mark.parametrize("passed_on", [False, True])
def test_the_rounds_last_post_is_placed_by_its_closing_write(driver, slack, bot, passed_on):
    """Where a round's last post went is written with the round's lease given back, its audit
    line with it - and, when the lease passed on meanwhile, in a write of its own."""
    request_id = submit(driver, slack)
    settle(bot, request_id)
    courier, store = bot.deps.courier, bot.store
    store.update(request_id, waiting_told=False)  # the requester's notice still to be placed
    revised = []
    revise = store.revise
    store.revise = lambda rid, *a, **k: revised.append(rid) or revise(rid, *a, **k)

    def deliver(record):
        placed = courier._posted_last(record, "waiting_notice", ("CASK", "9.1"), waiting_told=True)
        if passed_on:  # our lease ran out and another holder has it now
            store.update(request_id, lease_owner="elsewhere:1")
        return placed

    try:
        courier._sync(request_id, 1.0, deliver)
    finally:
        store.revise = revise
    stored = store.get(request_id)
    assert stored.waiting_told and ("waiting_notice", "9.1") in [
        (m.kind, m.ts) for m in stored.messages
    ]
    assert revised == ([request_id] if passed_on else [])
    posted = [e.detail for e in store.audit() if e.event == "message_posted"]
    assert {"kind": "waiting_notice", "channel": "CASK", "ts": "9.1"} in posted


def test_a_copy_slack_posted_before_a_5xx_loses_its_buttons(driver, slack, bot):
    """Slack posts the message but answers 500, and slack_sdk sends it again: the older copy
    loses its buttons and points to the newer, which is tracked and whose Approve works."""
    slack.mishap("chat.postMessage", status=500)
    request_id = submit(driver, slack)
    request = settle(bot, request_id)
    older, newer = copies_of(slack, request_id)
    assert request.approval_message.ts == newer["ts"]
    assert has_buttons(newer["blocks"]) and not has_buttons(older["blocks"])
    assert RETIRED_NOTE in json.dumps(older["blocks"])
    assert older["metadata"]["event_payload"]["retired"] is True
    assert "message_retired" in events(bot, request_id)

    driver.click("approve_invite", request_id, APPROVER)
    wait_status(bot, request_id, Status.INVITED)
    settle(bot, request_id)
    assert not [m for m in copies_of(slack, request_id) if has_buttons(m["blocks"])]
    assert "Approved by" in json.dumps(copies_of(slack, request_id)[-1]["blocks"])


def test_copies_found_when_looking_keep_only_the_newest_live(driver, slack, bot):
    """A 5xx after posting, then an answer too late: the look finds both copies, adopts the
    newer, retires the older, and posts no third."""
    slack.mishap("chat.postMessage", status=500)
    slack.mishap("chat.postMessage", late=LATE)
    request_id = submit(driver, slack)
    assert bot.deps.wait_idle()
    later(bot)
    bot.deps.courier.sweep(force=True)
    request = settle(bot, request_id)
    _older, newer = copies_of(slack, request_id)
    assert request.approval_message.ts == newer["ts"]
    assert [m["ts"] for m in copies_of(slack, request_id) if has_buttons(m["blocks"])] == [
        newer["ts"]
    ]
    assert posts_to(slack, ADMIN_CHANNEL) == 2


def test_without_the_history_scope_it_is_posted_again_and_said(driver, slack, bot, caplog):
    """A token without channels:history cannot look: the message is posted again (it may show
    twice) and the log names the scope to add."""
    slack.scopes = [s for s in slack.scopes if s != "channels:history"]
    slack.mishap("chat.postMessage", late=LATE)
    request_id = submit(driver, slack)
    assert bot.deps.wait_idle()
    later(bot)
    bot.deps.courier.sweep(force=True)
    request = settle(bot, request_id)
    _first, second = copies_of(slack, request_id)
    assert request.approval_message.ts == second["ts"]
    assert "missing_scope" in caplog.text and "channels:history" in caplog.text
    [reposted] = [e for e in bot.store.audit() if e.event == "message_reposted"]
    assert reposted.detail == {"kind": "approval", "looked": False}


def test_a_slow_dm_with_a_button_is_adopted_not_sent_twice(driver, slack, bot):
    """The invitee's Accept DM answered too late: found in the DM by its metadata and adopted;
    the invitee has one DM, and the request knows where it is."""
    slack.members["ada@example.com"] = "UADA"
    request_id = submit(driver, slack)
    settle(bot, request_id)
    slack.mishap("chat.postMessage", late=LATE)  # the next post: the invitee's DM
    driver.click("approve_invite", request_id, APPROVER)
    wait_status(bot, request_id, Status.INVITED)
    assert bot.deps.wait_idle()
    assert not bot.store.get(request_id).link_attempted
    later(bot)
    bot.deps.courier.sweep(force=True)
    request = settle(bot, request_id)
    [dm] = copies_of(slack, request_id, channel="DUADA", kind="invitee_dm")
    assert posts_to(slack, "DUADA") == 1 and request.link_sent_to == "UADA"
    assert next(m.ts for m in request.messages if m.kind == "invitee_dm") == dm["ts"]


def test_the_client_waits_slack_timeout_and_modals_keep_theirs(tmp_path):
    """Posts wait SLACK_TIMEOUT (30 s by default); views.open keeps 2.5 s for its trigger."""
    settings = make_settings(tmp_path)
    assert slack_clients.slack_client(settings).timeout == 30
    assert slack_clients.modal_client(settings).timeout == 2.5
    longer = make_settings(tmp_path, SLACK_TIMEOUT="45")
    assert slack_clients.slack_client(longer).timeout == 45


def test_the_fake_reads_history_as_slack_documents_it(slack):
    """conversations.history: newest first, no thread replies, `oldest` exclusive unless
    `inclusive`, pages by `limit` and cursor, metadata only when asked; replies oldest first;
    a private channel needs groups:history."""
    web = WebClient(token="xoxb-test", base_url=slack.url)
    meta = {"event_type": "awork_invite_request", "event_payload": {"id": "inv-1"}}
    posted = [
        web.chat_postMessage(channel="CX", text=f"m{i}", metadata=meta)["ts"] for i in range(3)
    ]
    web.chat_postMessage(channel="CX", text="reply", thread_ts=posted[0])
    page = web.conversations_history(channel="CX", limit=2)
    assert [m["text"] for m in page["messages"]] == ["m2", "m1"] and page["has_more"]
    assert "metadata" not in page["messages"][0]
    rest = web.conversations_history(
        channel="CX", limit=2, cursor=page["response_metadata"]["next_cursor"]
    )
    assert [m["text"] for m in rest["messages"]] == ["m0"] and not rest["has_more"]
    after = web.conversations_history(channel="CX", oldest=posted[0], include_all_metadata=True)
    assert [m["text"] for m in after["messages"]] == ["m2", "m1"]
    assert after["messages"][0]["metadata"] == meta
    both = web.conversations_history(channel="CX", oldest=posted[0], inclusive=True)
    assert [m["text"] for m in both["messages"]] == ["m2", "m1", "m0"]
    thread = web.conversations_replies(channel="CX", ts=posted[0])
    assert [m["text"] for m in thread["messages"]] == ["m0", "reply"]
    slack.channels["CPRIVATE"] = {"is_private": True}
    slack.scopes = [s for s in slack.scopes if s != "groups:history"]
    with pytest.raises(SlackApiError) as refused:
        web.conversations_history(channel="CPRIVATE")
    assert refused.value.response["error"] == "missing_scope"
    assert refused.value.response["needed"] == "groups:history"


def test_a_retired_copy_keeps_its_words_and_loses_its_buttons():
    """The older copy: its text and blocks without actions or a sandbox label (the client adds
    that again), and a closing note that the newer copy is the live one."""
    message = mrkdwn.label_sandbox(
        {
            "text": "Invite ada@example.com?",
            "blocks": [mrkdwn.section("*Who:* ada"), {"type": "actions", "elements": []}],
        }
    )
    text, blocks = retired(message["text"], message["blocks"])
    assert text == "Invite ada@example.com?" and not has_buttons(blocks)
    assert blocks == [mrkdwn.section("*Who:* ada"), mrkdwn.context(RETIRED_NOTE)]
