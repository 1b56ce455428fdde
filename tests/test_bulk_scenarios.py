"""Issue 4 items 1 and 2 end to end: signed slash commands, forms and clicks through the real
Bolt app, with the loopback fake Slack and the spec-following fake awork."""

from __future__ import annotations

import itertools
import json
import time

import pytest

from bot.domain.batches import BatchStatus
from bot.domain.records import Status
from bot.ui import bulk_blocks
from tests.conftest import APPROVERS, approval_request_id, build_bot
from tests.fakes.awork import ROLE_ADMIN, ROLE_PM, TEAM_DESIGN, TEAM_ENGINEERING, Fault
from tests.fakes.clock import FakeClock
from tests.slack_requests import ADMIN_CHANNEL, GENERAL

APPROVER = APPROVERS[0]


def approval_posts(slack):
    return [
        c
        for c in slack.of("chat.postMessage")
        if c.args["channel"] == ADMIN_CHANNEL and not c.args.get("thread_ts")
    ]


def wait_batch(bot, batch_id: str, status: BatchStatus, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = bot.store.get_batch(batch_id)
        if batch and batch.status is status and not batch.needs_delivery():
            return batch
        time.sleep(0.02)
    raise AssertionError(f"{batch_id}: {bot.store.get_batch(batch_id)}")


def posted_emails(awork) -> list[str]:
    return sorted(json.loads(r.content)["email"] for r in awork.calls("POST", "/invitations"))


def ask_inline(driver, slack, text: str, user: str = "UREQ") -> str:
    seen = len(approval_posts(slack))
    response = driver.command(text, user=user)
    assert response.status == 200
    assert "warning" not in response.body, response.body
    batch_id = approval_request_id(slack, seen)
    slack.wait_for("chat.postEphemeral", where=lambda c: batch_id in c.args.get("text", ""))
    return batch_id


# --- inline ---------------------------------------------------------------------------------


def test_one_address_inline_makes_a_request_without_the_form(driver, slack, bot):
    """`/invite ada@example.com` stores a request and asks the approvers; no modal opens."""
    request_id = ask_inline(driver, slack, "ada@example.com")
    assert slack.of("views.open") == []
    request = bot.store.get(request_id)
    assert request.details.email == "ada@example.com" and request.status is Status.PENDING
    assert request.requester_id == "UREQ" and request.origin_channel == GENERAL


def test_inline_several_people_with_role_teams_and_no_email(driver, slack, bot, awork):
    """The issue's example becomes one batch; approving it invites both with role and teams."""
    slack.members["b@y.com"] = "UBEE"
    batch_id = ask_inline(
        driver,
        slack,
        'a@x.com b@y.com role:"Project Manager" team:Design team:engineering --no-email',
    )
    post = approval_posts(slack)[0].args
    buttons = next(b for b in post["blocks"] if b["type"] == "actions")["elements"]
    assert [(b["action_id"], b["text"]["text"]) for b in buttons] == [
        ("approve_invite", "Approve all 2"),
        ("deny_invite", "Deny"),
    ]
    driver.click("approve_invite", batch_id, APPROVER)
    wait_batch(bot, batch_id, BatchStatus.DONE)
    bodies = [json.loads(r.content) for r in awork.calls("POST", "/invitations")]
    assert sorted(b["email"] for b in bodies) == ["a@x.com", "b@y.com"]
    for body in bodies:
        assert body["roleId"] == ROLE_PM
        assert body["teamIds"] == [TEAM_DESIGN, TEAM_ENGINEERING]
        assert body["skipSendingEmail"] is True
    # The summary on the approval message, without any link or code in the channel.
    summary = slack.wait_for(
        "chat.update", where=lambda c: "2 invited" in json.dumps(c.args["blocks"])
    )[-1]
    assert "accept?code" not in json.dumps(summary.args)  # no link in the channel
    # b@y.com is in Slack: a DM with the Accept button; a@x.com's link goes to the requester.
    slack.wait_for(
        "chat.postMessage",
        where=lambda c: c.args["channel"] == "DUBEE" and "accept_invite" in json.dumps(c.args),
    )
    link_dm = slack.wait_for(
        "chat.postMessage",
        where=lambda c: c.args["channel"] == "DUREQ" and "Acceptance links" in c.args["text"],
    )[0]
    assert "a@x.com" in link_dm.args["text"] and "b@y.com" not in link_dm.args["text"]
    code = next(i["invitationCode"] for i in awork.invitations if i["body"]["email"] == "a@x.com")
    channel_text = json.dumps([c.args for c in slack.calls if c.args.get("channel") != "DUREQ"])
    assert code not in channel_text  # the code only in the requester's DM


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a@x.com role:Boss", "There is no role “Boss”. Roles: Admin, Member, Project Manager."),
        ("a@x.com team:Sales", "There is no team “Sales”. Teams: Design, Engineering."),
        ("a@x.com role:", "Give a role name"),
        ("ada", "not an email address"),
    ],
)
def test_inline_mistakes_are_answered_privately_and_nothing_is_asked(
    driver, slack, bot, text, expected
):
    """Unknown names, missing names and non-addresses are answered with the choices; no request."""
    response = driver.command(text)
    assert response.status == 200
    body = json.loads(response.body)
    assert expected in body["text"] and body["response_type"] == "ephemeral"
    assert list(bot.store.requests()) == [] and bot.store.batches() == []
    assert approval_posts(slack) == []


def test_an_ambiguous_role_prefix_lists_the_matches(driver, bot, awork):
    """'Pro' matching two roles is answered with both names."""
    awork.roles.append({"id": "r-po", "name": "Product Owner", "isAdminRole": False})
    bot.deps.catalog.refresh()
    body = json.loads(driver.command("a@x.com role:Pro").body)
    assert "matches more than one role: Product Owner, Project Manager" in body["text"]


def test_inline_member_or_open_request_is_told_at_once(driver, slack, bot):
    """An address already in awork, or already asked for, is answered without bothering admins."""
    body = json.loads(driver.command("owner@ncnstn.com").body)
    assert "already in the awork workspace" in body["text"]
    ask_inline(driver, slack, "ada@example.com")
    body = json.loads(driver.command("ada@example.com").body)
    assert "already an open request" in body["text"]
    assert len(approval_posts(slack)) == 1


def test_help_explains_inline_and_bulk(driver):
    """`/invite help` answers privately with the inline syntax and an example."""
    text = driver.command("help").body
    assert 'role:"Project Manager"' in text and "--no-email" in text
    assert "/invite bulk" in text


# --- the bulk form --------------------------------------------------------------------------


def submit_bulk(driver, fields, user="UREQ"):
    return driver.view_submission(bulk_blocks.bulk_form(GENERAL), fields, user)


def test_bulk_command_opens_the_bulk_form(driver, slack):
    """`/invite bulk` opens the list form at once: a textarea, a CSV file input, role and teams."""
    driver.command("bulk")
    view = slack.wait_for("views.open")[0].args["view"]
    assert view["callback_id"] == "bulk_invite_form"
    kinds = {b["block_id"]: b["element"]["type"] for b in view["blocks"] if b["type"] == "input"}
    assert kinds == {
        "people": "plain_text_input",
        "people_file": "file_input",
        "roleId": "external_select",
        "teamIds": "multi_external_select",
        "skipSendingEmail": "checkboxes",
    }


def test_bulk_form_errors_name_the_line(driver, bot):
    """A bad line is a field error naming it; nothing is stored."""
    response = submit_bulk(driver, {"people": "ada@example.com\nnope\n"})
    errors = json.loads(response.body)["errors"]
    assert "Line 2" in errors["people"]
    assert bot.store.batches() == []


def csv_file(files, name: str, content: str, url: str | None = None) -> list[dict]:
    """A file object as Slack puts it in a file_input's state (files:read), served by `files`."""
    return files.file(name, content, url)


def test_bulk_csv_file_becomes_one_batch_with_one_approval_message(slack, awork, files, tmp_path):
    """60 people from a CSV: one message ("Approve all 60"), one POST each on approval."""
    from tests.conftest import SIGNING_SECRET, make_settings
    from tests.slack_requests import SlackDriver

    # The fake awork has no rate limit and this test is not about the bot's: at its default 50
    # calls a second, the run's ~65 calls would wait most of a second for the last ones.
    settings = make_settings(tmp_path, slack.url, AWORK_RATE_PER_SECOND="1000")
    bot = build_bot(settings, awork.handler)
    try:
        assert bot.deps.catalog.refresh()
        driver = SlackDriver(bot.app, SIGNING_SECRET)
        content = "email,first name,last name\n" + "".join(
            f"p{i}@example.com, P{i}, Test\n" for i in range(60)
        )
        attached = csv_file(files, "people.csv", content)
        response = submit_bulk(driver, {"people_file": attached, "roleId": ROLE_PM})
        assert response.status == 200 and response.body == ""
        assert files.requests[0].headers["Authorization"].startswith("Bearer xoxb-")
        batch_id = approval_request_id(slack)
        assert "Approve all 60" in json.dumps(approval_posts(slack)[0].args["blocks"])
        driver.click("approve_invite", batch_id, APPROVER)
        batch = wait_batch(bot, batch_id, BatchStatus.DONE)
        assert posted_emails(awork) == sorted(f"p{i}@example.com" for i in range(60))
        assert len(bot.deps.batches.summary(batch).invited) == 60
    finally:
        bot.shutdown(timeout=5)
    links = [
        c
        for c in slack.of("chat.postMessage")
        if c.args["channel"] == "DUREQ" and "Acceptance links" in c.args["text"]
    ]
    assert len(links) == 3  # each under Slack's recommended 4,000 characters
    assert all(len(c.args["text"]) < 4000 for c in links)
    assert sum(c.args["text"].count("accept the invitation") for c in links) == 60
    assert len(approval_posts(slack)) == 1


def test_bulk_file_on_a_foreign_host_gets_no_token(driver, slack, bot, files):
    """The bot token is only sent to Slack's file hosts; another URL is refused as a field error."""
    attached = csv_file(files, "x.csv", "a@x.com\n", url="https://evil.example/x.csv")
    response = submit_bulk(driver, {"people_file": attached})
    assert "can't read that file" in json.loads(response.body)["errors"]["people_file"]
    assert files.requests == []


def test_bulk_typed_list_with_members_and_repeats_left_out(driver, slack, bot):
    """Members and repeats are left out and said on the message and to the requester."""
    response = submit_bulk(
        driver, {"people": "owner@ncnstn.com\nada@example.com\nADA@example.com\ngrace@example.com"}
    )
    assert response.body == ""
    batch_id = approval_request_id(slack)
    batch = bot.store.get_batch(batch_id)
    assert [e.email for e in batch.entries] == ["ada@example.com", "grace@example.com"]
    text = json.dumps(approval_posts(slack)[0].args["blocks"])
    assert "already in awork: owner@ncnstn.com" in text and "listed twice" in text


# --- deciding and summarising -------------------------------------------------------------


def test_deny_a_batch_with_a_reason(driver, slack, bot, awork):
    """Deny opens the reason modal; the batch is denied once, nobody is invited, requester told."""
    batch_id = ask_inline(driver, slack, "a@x.com b@x.com")
    driver.click("deny_invite", batch_id, APPROVER)
    view = slack.wait_for("views.open")[0].args["view"]
    assert view["private_metadata"] == batch_id and "2 people" in json.dumps(view)
    response = driver.view_submission(view, {"reason": "Use the agency account"}, APPROVER)
    assert response.body == ""
    wait_batch(bot, batch_id, BatchStatus.DENIED)
    assert awork.calls("POST", "/invitations") == []
    slack.wait_for(
        "chat.postMessage",
        where=lambda c: (
            c.args["channel"] == "DUREQ" and "denied your request" in c.args.get("text", "")
        ),
    )
    driver.click("approve_invite", batch_id, APPROVERS[1])
    slack.wait_for(
        "chat.postEphemeral",
        where=lambda c: "Nothing changed" in c.args.get("text", "") and batch_id in c.args["text"],
    )
    assert awork.calls("POST", "/invitations") == []


def test_failures_are_summarised_and_retry_failed_invites_them_once(driver, slack, bot, awork):
    """Seats run out: the summary lists failures with reasons and a Retry button that works once."""
    awork.seats_free = 2
    batch_id = ask_inline(driver, slack, "a@x.com b@x.com c@x.com d@x.com")
    driver.click("approve_invite", batch_id, APPROVER)
    wait_batch(bot, batch_id, BatchStatus.DONE)
    update = slack.wait_for(
        "chat.update", where=lambda c: "2 failed" in json.dumps(c.args["blocks"])
    )[-1]
    text = json.dumps(update.args["blocks"])
    assert "no free seats left" in text and "retry_failed" in text
    awork.seats_free = 5
    driver.click("retry_failed", batch_id, APPROVERS[1])
    driver.click("retry_failed", batch_id, APPROVER)
    batch = wait_batch(bot, batch_id, BatchStatus.DONE)
    deadline = time.monotonic() + 5
    while bot.store.get_batch(batch_id).run < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    batch = wait_batch(bot, batch_id, BatchStatus.DONE)
    assert batch.run == 2
    assert len(posted_emails(awork)) == 6  # four first tries, and the two that failed once more
    assert sorted(i["body"]["email"] for i in awork.invitations) == [
        "a@x.com",
        "b@x.com",
        "c@x.com",
        "d@x.com",
    ]
    summary = bot.deps.batches.summary(batch)
    assert len(summary.invited) == 4 and summary.failed == []
    slack.wait_for("chat.update", where=lambda c: "4 invited" in json.dumps(c.args["blocks"]))


def test_admin_role_batch_needs_two_approvers(driver, slack, bot, awork):
    """A batch into the admin role shows "1 of 2 approvals" and runs only after the second."""
    batch_id = ask_inline(driver, slack, "a@x.com b@x.com role:admin")
    assert bot.store.get_batch(batch_id).entries[0].role_id == ROLE_ADMIN
    driver.click("approve_invite", batch_id, APPROVER)
    slack.wait_for("chat.update", where=lambda c: "1 of 2 approvals" in json.dumps(c.args))
    driver.click("approve_invite", batch_id, APPROVER)
    assert awork.calls("POST", "/invitations") == []
    driver.click("approve_invite", batch_id, APPROVERS[1])
    wait_batch(bot, batch_id, BatchStatus.DONE)
    assert posted_emails(awork) == ["a@x.com", "b@x.com"]


def test_progress_is_shown_at_most_every_two_seconds(slack, tmp_path, awork):
    """A run of 4.5 s (on a fake clock: each invitation takes 0.1 s) updates its message with
    "n of N done", never twice within 2 s."""
    from tests.conftest import SIGNING_SECRET, make_settings
    from tests.slack_requests import SlackDriver

    clock = FakeClock()

    def slow_awork(request):
        if request.method == "POST" and request.url.path.endswith("/invitations"):
            clock.sleep(0.1)
        return awork.handler(request)

    bot = build_bot(make_settings(tmp_path, slack.url), slow_awork)
    bot.deps.catalog.refresh()
    bot.deps.batches.concurrency = 1
    bot.deps.courier.progress_clock = slack.clock = clock
    try:
        driver = SlackDriver(bot.app, SIGNING_SECRET)
        batch_id = ask_inline(driver, slack, " ".join(f"p{i}@x.com" for i in range(45)))
        driver.click("approve_invite", batch_id, APPROVER)
        wait_batch(bot, batch_id, BatchStatus.DONE, timeout=30)
        assert clock.elapsed == pytest.approx(4.5)
    finally:
        bot.shutdown(timeout=5)
    progress = [
        c
        for c in slack.of("chat.update")
        if c.args["channel"] == ADMIN_CHANNEL and " of 45* done" in json.dumps(c.args["blocks"])
    ]
    assert len(progress) >= 2
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(progress)]
    assert all(gap >= 1.9 for gap in gaps), gaps


def test_rate_limited_awork_still_gets_each_invitation_once(driver, slack, tmp_path, awork):
    """awork answering 429 with ratelimit-reset: every member invited once, none lost."""
    from tests.conftest import SIGNING_SECRET, make_settings
    from tests.slack_requests import SlackDriver

    awork.rate_limit = (10, 1000)
    settings = make_settings(tmp_path, slack.url, AWORK_RATE_PER_SECOND="50")  # too generous
    bot = build_bot(settings, awork.handler)
    bot.deps.catalog.refresh()
    try:
        driver = SlackDriver(bot.app, SIGNING_SECRET)
        batch_id = ask_inline(driver, slack, " ".join(f"p{i}@x.com" for i in range(15)))
        driver.click("approve_invite", batch_id, APPROVER)
        batch = wait_batch(bot, batch_id, BatchStatus.DONE, timeout=30)
        assert awork.rate_limited > 0
        created = sorted(i["body"]["email"] for i in awork.invitations)
        assert created == sorted(f"p{i}@x.com" for i in range(15))
        assert len(bot.deps.batches.summary(batch).invited) == 15
    finally:
        bot.shutdown(timeout=5)


def test_single_form_refuses_an_address_waiting_in_a_batch(driver, slack, bot):
    """The single form's duplicate check also sees addresses in a pending batch."""
    batch_id = ask_inline(driver, slack, "a@x.com b@x.com")
    response = driver.submit_form({"email": "b@x.com"})
    error = json.loads(response.body)["errors"]["email"]
    assert "already an open request" in error and batch_id in error


# --- lists --------------------------------------------------------------------------------


def test_lists_show_batches(driver, slack, bot):
    """pending (approvers) offers "Approve all N"; mine and status show the batch to its requester."""
    batch_id = ask_inline(driver, slack, "a@x.com b@x.com c@x.com")
    pending = json.loads(driver.command("pending", user=APPROVER).body)
    buttons = [e for b in pending["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(e["text"]["text"], e["value"]) for e in buttons] == [
        ("Approve all 3", batch_id),
        ("Deny", batch_id),
    ]
    mine = json.dumps(json.loads(driver.command("mine").body)["blocks"])
    assert "3 people" in mine and batch_id in mine
    driver.click("approve_invite", batch_id, APPROVER)
    wait_batch(bot, batch_id, BatchStatus.DONE)
    card = json.dumps(json.loads(driver.command(f"status {batch_id}").body)["blocks"])
    assert "3 invited" in card and "approve_invite" not in card
    stranger = driver.command(f"status {batch_id}", user="USTRANGER").body
    assert "can't find" in stranger


# --- names from awork (item 3) ------------------------------------------------------------


def test_awork_suggests_names_before_the_approvers_see_the_request(driver, slack, bot, awork):
    """/users/autofill fills missing names (and gender) in; typed ones stay; it reaches awork."""
    awork.autofill["ada@example.com"] = {
        "firstName": "Ada",
        "lastName": "Lovelace",
        "gender": "female",
    }
    request_id = ask_inline(driver, slack, "ada@example.com")
    post = approval_posts(slack)[0].args
    assert "Ada Lovelace" in json.dumps(post["blocks"])
    details = bot.store.get(request_id).details
    assert (details.first_name, details.last_name, details.gender) == ("Ada", "Lovelace", "female")
    awork.autofill["grace@example.com"] = {"firstName": "Grace", "lastName": "Hopper"}
    driver.submit_form({"email": "grace@example.com", "firstName": "Amazing"})
    slack.wait_for("chat.postMessage", 2, where=lambda c: c.args["channel"] == ADMIN_CHANNEL)
    grace = next(r for r in bot.store.requests() if r.details.email == "grace@example.com")
    assert (grace.details.first_name, grace.details.last_name) == ("Amazing", "Hopper")
    driver.click("approve_invite", request_id, APPROVER)
    deadline = time.monotonic() + 5
    while not awork.invitations and time.monotonic() < deadline:
        time.sleep(0.02)
    assert awork.invitations[0]["body"]["firstName"] == "Ada"


def test_no_suggestion_or_awork_down_leaves_the_request_as_asked(driver, slack, bot, awork):
    """204 or a 503 for the suggestion: the request goes to the approvers unchanged, asked once."""
    awork.fail_next.append(Fault(503, path="/users/autofill/kim@example.com"))
    request_id = ask_inline(driver, slack, "kim@example.com")
    assert bot.store.get(request_id).details.first_name is None
    assert len(awork.calls("GET", "/users/autofill/kim@example.com")) == 1  # no retries
    ask_inline(driver, slack, "lee@example.com")
    assert len(awork.calls("GET", "/users/autofill/lee@example.com")) == 1


def test_an_approvers_own_batch_runs_at_once_with_self_approve(slack, tmp_path, awork):
    """INVITE_SELF_APPROVE: an approver's inline list is invited without anyone clicking."""
    from tests.conftest import SIGNING_SECRET, make_settings
    from tests.slack_requests import SlackDriver

    bot = build_bot(make_settings(tmp_path, slack.url, INVITE_SELF_APPROVE="true"), awork.handler)
    bot.deps.catalog.refresh()
    try:
        driver = SlackDriver(bot.app, SIGNING_SECRET)
        batch_id = ask_inline(driver, slack, "a@x.com b@x.com", user=APPROVER)
        batch = wait_batch(bot, batch_id, BatchStatus.DONE)
        assert batch.decided_by == APPROVER and posted_emails(awork) == ["a@x.com", "b@x.com"]
    finally:
        bot.shutdown(timeout=5)
