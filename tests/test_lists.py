"""`/invite pending|mine|status|help` and the App Home tab."""

from __future__ import annotations

import json
import time

from bot.domain.details import InviteDetails
from bot.domain.records import Status
from tests.conftest import APPROVERS
from tests.slack_requests import GENERAL
from tests.test_scenarios import settle, submit, wait_status

APPROVER = APPROVERS[0]


def reply(driver, text: str, user: str) -> dict:
    response = driver.command(text, user=user)
    assert response.status == 200
    # Bolt answers a text-only ack as plain text, which Slack shows just the same.
    return json.loads(response.body) if response.body.startswith("{") else {"text": response.body}


def test_pending_lists_open_requests_with_their_buttons(driver, slack, bot):
    """Approvers see what waits for them, oldest first, each with Approve and Deny."""
    ids = [submit(driver, slack, {"email": f"p{i}@example.com"}) for i in range(3)]
    body = reply(driver, "pending", APPROVER)
    text = json.dumps(body["blocks"])
    assert "Waiting for a decision: 3" in text and all(i in text for i in ids)
    actions = [b for b in body["blocks"] if b["type"] == "actions"]
    assert [a["elements"][0]["value"] for a in actions] == ids
    assert {e["action_id"] for a in actions for e in a["elements"]} == {
        "approve_invite",
        "deny_invite",
    }


def test_pending_is_for_approvers_only(driver, slack):
    """Anyone else is told only approvers decide, and sees no requests."""
    submit(driver, slack)
    assert reply(driver, "pending", "URANDOM") == {
        "text": ":lock: Only approvers can decide on invitation requests."
    }


def test_pending_pages_stay_within_block_kit_limits(driver, slack, bot):
    """45 open requests: pages of at most 50 blocks, and the last page holds the rest."""
    for i in range(45):
        bot.deps.service.submit(InviteDetails(email=f"bulk{i}@example.com"), "UREQ", GENERAL)
    first, last = reply(driver, "pending", APPROVER), reply(driver, "pending 3", APPROVER)
    assert len(first["blocks"]) <= 50 and len(last["blocks"]) <= 50
    assert "Page 1 of 3" in json.dumps(first["blocks"]) and "Page 3 of 3" in json.dumps(
        last["blocks"]
    )
    assert len([b for b in last["blocks"] if b["type"] == "actions"]) == 5


def test_mine_shows_the_requesters_own_with_status(driver, slack, bot):
    """/invite mine lists only the caller's requests, newest first, with their status."""
    denied = submit(driver, slack, {"email": "old@example.com"})
    driver.submit_deny(denied, "no", APPROVER)
    wait_status(bot, denied, Status.DENIED)
    newer = submit(driver, slack, {"email": "new@example.com"})
    submit(driver, slack, {"email": "theirs@example.com"}, user="UOTHER")
    text = json.dumps(reply(driver, "mine", "UREQ")["blocks"])
    assert text.index(newer) < text.index(denied) and "theirs@example.com" not in text
    assert "denied" in text and "waiting for approval" in text


def test_status_shows_one_request_to_those_concerned(driver, slack, bot):
    """/invite status <id> answers the requester and approvers, and 'not found' to others."""
    request_id = submit(driver, slack)
    assert request_id in json.dumps(reply(driver, f"status {request_id}", "UREQ")["blocks"])
    assert "Approve" not in json.dumps(reply(driver, f"status {request_id}", APPROVER)["blocks"])
    assert "can't find" in reply(driver, f"status {request_id}", "URANDOM")["text"]
    assert "Usage" in reply(driver, "status", "UREQ")["text"]


def test_help_answers_privately_with_the_syntax(driver):
    """/invite help lists the subcommands."""
    text = reply(driver, "help", "UREQ")["text"]
    assert "/invite pending" in text and "/invite mine" in text and "/invite status" in text


def app_home_opened(driver, user: str):
    event = {
        "token": "verification_token", "team_id": "T111", "api_app_id": "A111", "type": "event_callback",
        "event": {"type": "app_home_opened", "user": user, "channel": "D111", "tab": "home", "event_ts": str(time.time())},
        "event_id": f"Ev{time.monotonic_ns()}", "event_time": int(time.time()),
    }  # fmt: skip
    return driver.send(json.dumps(event), content_type="application/json")


def test_app_home_shows_waiting_and_own_requests_and_follows_changes(driver, slack, bot):
    """Opening Home publishes 'Waiting for you'/'Your requests'; a change republishes it."""
    request_id = submit(driver, slack)
    assert app_home_opened(driver, APPROVER).status == 200
    published = slack.wait_for("views.publish", where=lambda c: c.args["user_id"] == APPROVER)[0]
    view = published.args["view"]
    assert (
        view["type"] == "home"
        and request_id in json.dumps(view)
        and "Waiting for a decision: 1" in json.dumps(view)
    )
    assert len(view["blocks"]) <= 100
    driver.click("approve_invite", request_id, APPROVER)
    wait_status(bot, request_id, Status.INVITED)
    settle(bot, request_id)
    later = slack.wait_for("views.publish", 2, where=lambda c: c.args["user_id"] == APPROVER)[-1]
    assert "Waiting for a decision: 0" in json.dumps(later.args["view"])


def test_nothing_on_a_request_path_reads_the_whole_store(driver, slack, bot, monkeypatch):
    """Inline and form invites, duplicate checks, approve, deny, lists, App Home and the
    sweep use indexed lookups only: the store's full scans fail the test if called."""

    def scan(*_args, **_kwargs):
        raise AssertionError("a full scan of the store on a request path")

    monkeypatch.setattr(bot.store, "requests", scan)
    monkeypatch.setattr(bot.store, "batches", scan)
    first = submit(driver, slack, {"email": "one@example.com"})
    second = submit(driver, slack, {"email": "two@example.com"})
    assert "already" in reply(driver, "one@example.com", "UREQ")["text"]  # duplicate, inline
    reply(driver, "three@example.com four@example.com", "UREQ")  # an inline batch
    driver.click("approve_invite", first, APPROVER)
    driver.submit_deny(second, "not now", APPROVER)
    wait_status(bot, first, Status.INVITED)
    for text, user in (("pending", APPROVER), ("mine", "UREQ"), (f"status {first}", "UREQ")):
        assert reply(driver, text, user)
    assert app_home_opened(driver, APPROVER).status == 200
    slack.wait_for("views.publish")
    bot.deps.courier.sweep(force=True)
    assert settle(bot, first).status is Status.INVITED


def test_a_failure_awork_did_not_refuse_is_not_called_refused():
    """A failed request whose answer was lost lists as "did not go through"; a refusal as refused."""
    from bot.domain.records import Failure, InviteRequest
    from bot.ui.answers import already_decided
    from bot.ui.lists import item_line as request_line

    def failed(retryable: bool) -> InviteRequest:
        failure = Failure(code="answer-lost", message="lost", retryable=retryable)
        return InviteRequest(
            requester_id="UREQ",
            details=InviteDetails(email="ada@example.com"),
            status=Status.FAILED,
            failure=failure,
            decided_by="UAPP",
        )

    lost, refused = failed(retryable=True), failed(retryable=False)
    assert "did not go through" in request_line(lost) and "refused" not in request_line(lost)
    assert "awork refused" in request_line(refused)
    assert "did not go through" in already_decided(lost)
    assert "awork refused" in already_decided(refused)


def test_every_pending_request_can_be_reached_past_the_old_cap_of_500(driver, slack, bot):
    """530 pending: the count says 530 and the last page holds the newest; one read of the
    approvers' list per answer, which decodes no record."""
    from bot.domain.records import InviteRequest

    for i in range(530):
        bot.store.add(
            InviteRequest(requester_id="UREQ", details=InviteDetails(email=f"q{i}@x.com"))
        )
    reads = []
    listing = bot.store.approvable_listing
    bot.store.approvable_listing = lambda: reads.append(1) or listing()
    first = reply(driver, "pending", APPROVER)
    assert "Waiting for a decision: 530" in json.dumps(first["blocks"]) and len(reads) == 1
    last = json.dumps(reply(driver, "pending 27", APPROVER)["blocks"])
    assert "q529@x.com" in last and "Page 27 of 27" in last and "q509@x.com" not in last
    home = app_home_opened(driver, APPROVER) and slack.wait_for("views.publish")[0]
    assert "Waiting for a decision: 530" in json.dumps(home.args["view"])


def test_an_approvers_list_entry_written_before_summaries_still_lists(tmp_path):
    """A sqlitedict store from before: its index entry holds the id; the record is read."""
    from bot.domain.records import InviteRequest
    from bot.store import SqliteStore

    store = SqliteStore(str(tmp_path / "old.sqlite"))
    try:
        request = store.add(
            InviteRequest(requester_id="U1", details=InviteDetails(email="o@x.com"))
        )
        with store._lock():
            [key] = [k for k, _ in store._range("ia|")]
            store._db[key] = request.id  # as the index was written before
        [item] = store.approvable_listing()
        assert (item.id, item.email, item.status) == (request.id, "o@x.com", "pending")
    finally:
        store.close()


def test_mine_and_the_app_home_count_and_reach_every_own_request(driver, slack, bot):
    """130 of one's own: the true count on both, and the last page holds the oldest (the
    store's read of 100 hid 30 before)."""
    from bot.domain.records import InviteRequest

    for i in range(130):
        bot.store.add(
            InviteRequest(requester_id="UREQ", details=InviteDetails(email=f"m{i}@x.com"))
        )
    first = json.dumps(reply(driver, "mine", "UREQ")["blocks"])
    assert "Your invitation requests: 130" in first and "Page 1 of 4" in first
    last = json.dumps(reply(driver, "mine 4", "UREQ")["blocks"])
    assert "m0@x.com" in last and "m10@x.com" not in last and "Page 4 of 4" in last
    app_home_opened(driver, "UREQ")
    home = json.dumps(slack.wait_for("views.publish")[0].args["view"])
    assert "Your invitation requests: 130" in home and "newest 40 of 130" in home
