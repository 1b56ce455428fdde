"""Issue 17, items 2 and 3, end to end through the real Bolt app: awork slower than the timeout,
or answering a success that is not JSON, invites each person once, and every message says
what happened - awork slow, then invited (its answer lost) - never "a restart", never
"refused". The store's clock is faked, the sweep run by hand: the settle window passes at once."""

from __future__ import annotations

import json

import httpx
import pytest

from bot.domain.batches import BatchStatus
from bot.domain.records import Status
from tests.conftest import APPROVERS, SIGNING_SECRET, build_bot
from tests.fakes.awork import FakeAwork, Fault, awork_user
from tests.fakes.clock import StoreClock
from tests.serving import wait_for
from tests.slack_requests import ADMIN_CHANNEL, SlackDriver
from tests.test_bulk_scenarios import ask_inline
from tests.test_scenarios import submit

APPROVER = APPROVERS[0]


class SlowAwork:
    """awork slower than the bot's timeout: each POST /invitations times out. With `late`,
    awork is still at work and creates the invitation only at `finish()`; else nothing is
    created. Later POSTs (after `answer_again`) are answered as usual."""

    def __init__(self, fake: FakeAwork, late: bool = True) -> None:
        self.fake = fake
        self.late = late
        self.slow = True
        self.pending: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        is_post = request.method == "POST" and request.url.path.endswith("/invitations")
        if not (is_post and self.slow):
            return self.fake.handler(request)
        self.fake.requests.append(request)
        if self.late:
            self.pending.append(request)
        raise httpx.ReadTimeout("timed out", request=request)

    def finish(self) -> None:
        for request in self.pending:
            self.fake._route(request, "/invitations")
        self.pending.clear()


@pytest.fixture
def slow_bot(settings, awork):
    """The real bot on a slow awork, its store's clock stopped (moved by the test)."""
    slow = SlowAwork(awork)
    bot = build_bot(settings, slow)
    bot.deps.catalog.refresh()
    clock = StoreClock(bot.store)
    yield bot, slow, clock
    bot.shutdown(timeout=5)


def unsure_and_told(bot, request_id: str):
    """The request is unsure and Slack has been told so (no delivery left, none running)."""
    request = bot.store.get(request_id)
    told = not request.needs_delivery() and request.lease_owner is None
    return request if request.unsure_since is not None and told else None


def sweep_until_settled(bot, clock, request_id: str):
    """Let each look come due and sweep, until the request is no longer being invited."""
    for _ in range(10):
        request = bot.store.get(request_id)
        if request.status is not Status.INVITING:
            return request
        clock.advance(max(0.0, (request.claim_until - bot.store.now()).total_seconds()))
        bot.deps.courier.sweep()
    raise AssertionError(f"{request_id} is still being invited")


def posts(awork) -> int:
    return len(awork.calls("POST", "/invitations"))


def dms_to(slack, user_dm: str) -> list[str]:
    return [c.args["text"] for c in slack.of("chat.postMessage") if c.args["channel"] == user_dm]


def approval_texts(slack) -> list[str]:
    return [
        json.dumps(c.args["blocks"])
        for c in slack.of("chat.update")
        if c.args["channel"] == ADMIN_CHANNEL
    ]


def test_slow_awork_invites_once_and_says_so_never_a_restart(slow_bot, slack, awork):
    """awork takes longer than the timeout: one POST; the approval message and the requester
    hear that awork is slow and it is being checked; once awork has it, "invited, but
    awork's answer was lost", with what to do - the invitee in Slack is told by DM, as no
    Accept button can be offered. No "restart", no "refused", no second POST."""
    bot, slow, clock = slow_bot
    slack.members["ada@example.com"] = "UADA"
    driver = SlackDriver(bot.app, SIGNING_SECRET)
    request_id = submit(driver, slack, {"email": "ada@example.com"})
    lookups = len(awork.calls("GET", "/users"))
    driver.click("approve_invite", request_id, APPROVER)
    wait_for(lambda: unsure_and_told(bot, request_id), 5, "the unsure request to be told")
    assert len(awork.calls("GET", "/users")) == lookups  # a lookup at once proves nothing
    assert any("awork is slow to answer" in text for text in approval_texts(slack))
    assert any("awork is slow to answer" in text for text in dms_to(slack, "DUREQ"))
    clock.advance(5)
    bot.deps.courier.sweep()  # the first look: awork is still at work
    assert bot.store.get(request_id).status is Status.INVITING
    slow.finish()
    request = sweep_until_settled(bot, clock, request_id)
    assert request.status is Status.INVITED and request.result.invitation_code is None
    assert posts(awork) == 1 and len(awork.invitations) == 1
    wait_for(lambda: not bot.store.get(request_id).needs_delivery(), 5, "the outcome told")
    final = approval_texts(slack)[-1]
    assert "invitation sent" in final and "awork's answer was lost" in final
    assert "resend the invitation from awork's user list" in final  # awork's email was skipped
    told = dms_to(slack, "DUREQ")[-1]
    assert "Invited, but awork's answer was lost" in told
    assert "awork's answer was lost" in dms_to(slack, "DUADA")[-1]
    assert "restart" not in slack.texts() and "refused" not in slack.texts()


def test_absent_after_the_settle_window_is_sent_once_more(slow_bot, slack, awork):
    """awork never created it: no second POST during the window; once it ended with the
    person absent, one more POST, which invites (with a code: the usual link)."""
    bot, slow, clock = slow_bot
    slow.late = False
    driver = SlackDriver(bot.app, SIGNING_SECRET)
    request_id = submit(driver, slack, {"email": "grace@example.com"})
    driver.click("approve_invite", request_id, APPROVER)
    wait_for(lambda: unsure_and_told(bot, request_id), 5, "the unsure request to be told")
    for _ in range(4):  # the looks at 5, 15, 35 and 75 s
        request = bot.store.get(request_id)
        clock.advance((request.claim_until - bot.store.now()).total_seconds())
        bot.deps.courier.sweep()
        assert posts(awork) == 1
    slow.slow = False
    request = sweep_until_settled(bot, clock, request_id)
    assert request.status is Status.INVITED and request.result.invitation_code is not None
    assert posts(awork) == 2 and len(awork.invitations) == 1


def test_a_member_from_before_found_after_a_timeout_is_already_in(slow_bot, slack, awork):
    """The address belonged to a member all along: after the look, "already in", not invited."""
    bot, slow, clock = slow_bot
    slow.late = False
    awork.users.append(awork_user("old@example.com", "O", "Ld", created_on="2020-01-01T00:00:00Z"))
    driver = SlackDriver(bot.app, SIGNING_SECRET)
    request_id = submit(driver, slack, {"email": "old@example.com"})  # the bot did not know
    driver.click("approve_invite", request_id, APPROVER)
    wait_for(lambda: unsure_and_told(bot, request_id), 5, "the unsure request to be told")
    request = sweep_until_settled(bot, clock, request_id)
    assert request.status is Status.FAILED and request.failure.code == "already-exist-error"
    assert awork.invitations == [] and posts(awork) == 1


def test_a_success_that_is_not_json_is_no_refusal_and_keeps_the_address_taken(
    settings, slack, awork
):
    """awork creates the invitation and answers 200 with a page that is not JSON: unsure,
    never "refused"; meanwhile a new request for the address is turned away as still open;
    the look finds the invitation: invited, one POST."""
    bot = build_bot(settings, awork.handler)
    clock = StoreClock(bot.store)
    try:
        driver = SlackDriver(bot.app, SIGNING_SECRET)
        awork.fail_next.append(
            Fault(200, path="/invitations", after_processing=True, raw=b"<html>OK</html>")
        )
        request_id = submit(driver, slack, {"email": "lin@example.com"})
        driver.click("approve_invite", request_id, APPROVER)
        wait_for(lambda: unsure_and_told(bot, request_id), 5, "the unsure request to be told")
        again = json.loads(driver.submit_form({"email": "lin@example.com"}, user="UOTHER").body)
        assert request_id in again["errors"]["email"]
        request = sweep_until_settled(bot, clock, request_id)
        assert request.status is Status.INVITED and request.failure is None
        assert posts(awork) == 1 and len(awork.invitations) == 1
        assert "refused" not in slack.texts()
    finally:
        bot.shutdown(timeout=5)


def test_a_bulk_run_in_slow_awork_posts_each_person_once(slow_bot, slack, awork):
    """Three people while awork is slower than the timeout: three POSTs, the batch's message
    says awork is slow for 3, and the sweep settles them: 3 invited, no POST repeated."""
    bot, slow, clock = slow_bot
    driver = SlackDriver(bot.app, SIGNING_SECRET)
    batch_id = ask_inline(driver, slack, "a@x.com b@x.com c@x.com")
    driver.click("approve_invite", batch_id, APPROVER)
    wait_for(
        lambda: any("awork is slow to answer for 3" in text for text in approval_texts(slack)),
        5,
        "the batch's message to say awork is slow",
    )
    batch = bot.store.get_batch(batch_id)
    assert batch.status is BatchStatus.RUNNING and batch.unsure == 3 and posts(awork) == 3
    slow.finish()
    clock.advance((batch.claim_until - bot.store.now()).total_seconds())
    bot.deps.courier.sweep()  # the members' looks, and the run taken up again
    wait_for(
        lambda: bot.store.get_batch(batch_id).status is BatchStatus.DONE, 5, "the run to finish"
    )
    summary = bot.deps.batches.summary(bot.store.get_batch(batch_id))
    assert len(summary.invited) == 3 and posts(awork) == 3 and len(awork.invitations) == 3
    wait_for(lambda: any("3 invited" in text for text in approval_texts(slack)), 5, "the summary")
    assert "restart" not in slack.texts() and "refused" not in slack.texts()
