"""End to end through the real Bolt app: signed requests in, fake Slack and fake awork out."""

from __future__ import annotations

import json
import threading
import time

from bot.domain.records import Status
from tests.conftest import APPROVERS, SIGNING_SECRET, approval_request_id, build_bot
from tests.fakes.awork import (
    ROLE_PM,
    TEAM_DESIGN,
    TEAM_ENGINEERING,
    WORKSPACE_ID,
    Fault,
    awork_user,
)
from tests.fakes.clock import StoreClock
from tests.slack_requests import ADMIN_CHANNEL, GENERAL, SlackDriver

APPROVER = APPROVERS[0]
ADA = {
    "email": "ada@example.com",
    "firstName": "Ada",
    "lastName": "Lovelace",
    "roleId": ROLE_PM,
    "teamIds": [TEAM_DESIGN, TEAM_ENGINEERING],
}


def block_ids(view: dict) -> set[str]:
    return {block.get("block_id") for block in view["blocks"]}


def submit(driver, slack, fields=ADA, user="UREQ") -> str:
    """Submit the form and return the new request's id, from its own approval message."""
    request_id = submit_unacknowledged(driver, slack, fields, user)
    # As a person would: act once the requester has been told it waits.
    slack.wait_for("chat.postEphemeral", where=lambda c: request_id in c.args.get("text", ""))
    return request_id


def submit_unacknowledged(driver, slack, fields=ADA, user="UREQ") -> str:
    """Submit the form; the new request's id, from its own approval message."""
    seen = len(
        [
            c
            for c in slack.of("chat.postMessage")
            if c.args["channel"] == ADMIN_CHANNEL and not c.args.get("thread_ts")
        ]
    )
    response = driver.submit_form(fields, user=user)
    assert response.status == 200 and response.body == ""
    return approval_request_id(slack, seen)


def wait_status(bot, request_id: str, status: Status, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request = bot.store.get(request_id)
        if request and request.status is status and request.version >= 1:
            return request
        time.sleep(0.01)
    raise AssertionError(f"{request_id} is {bot.store.get(request_id).status}, not {status}")


def settle(bot, request_id: str, timeout: float = 5.0):
    """Wait until Slack has been told everything about the request and no delivery runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request = bot.store.get(request_id)
        if not request.needs_delivery() and request.lease_owner is None:
            return request
        time.sleep(0.01)
    raise AssertionError(f"{request_id} still has deliveries: {bot.store.get(request_id)}")


def wait_settled(slack, request_id: str, needle: str):
    """Wait for the approval message update that contains `needle`."""
    return slack.wait_for("chat.update", where=lambda c: needle in json.dumps(c.args["blocks"]))


# --- opening the form ----------------------------------------------------------------------


def test_invite_command_opens_the_form_at_once(driver, slack):
    """/invite is acked with an empty 200 and the modal opens with every seed field."""
    response = driver.command()
    assert response.status == 200
    view = slack.wait_for("views.open")[0].args["view"]
    assert view["callback_id"] == "invite_form"
    expected = {
        "email",
        "firstName",
        "lastName",
        "title",
        "position",
        "gender",
        "roleId",
        "teamIds",
        "skipSendingEmail",
        "note",
    }
    assert expected <= block_ids(view)
    assert "planId" not in block_ids(view)
    for block in view["blocks"]:
        if block.get("type") == "input":
            assert block["element"]["action_id"] == block["block_id"]
    kinds = {
        b["block_id"]: b["element"]["type"] for b in view["blocks"] if b.get("type") == "input"
    }
    assert kinds["roleId"] == "external_select" and kinds["teamIds"] == "multi_external_select"
    assert kinds["skipSendingEmail"] == "checkboxes"
    assert json.loads(view["private_metadata"]) == {"channel": GENERAL}


def test_fallback_command_name_opens_the_form_too(driver, slack):
    """/awork-invite (for workspaces where Slack keeps /invite) opens the same form."""
    assert driver.send(driver.command_body(command="/awork-invite")).status == 200
    assert slack.wait_for("views.open")[0].args["view"]["callback_id"] == "invite_form"


def test_approvers_get_the_advanced_part(driver, slack):
    """An approver's form also has workspace, plan, flow, seats and connect code."""
    driver.command(user=APPROVER)
    view = slack.wait_for("views.open")[0].args["view"]
    assert {
        "workspaceId",
        "planId",
        "invitationFlow",
        "bookedSeats",
        "connectInviteCode",
    } <= block_ids(view)
    assert "password" not in json.dumps(view).lower()


# --- pickers --------------------------------------------------------------------------------


def test_role_picker_searches_cached_roles(driver):
    """Typing in the role picker filters awork's roles case-insensitively; archived are hidden."""
    response = driver.options("roleId", "proj")
    options = json.loads(response.body)["options"]
    assert [o["value"] for o in options] == [ROLE_PM]
    everything = json.loads(driver.options("roleId", "").body)["options"]
    assert {o["text"]["text"] for o in everything} == {"Admin (admin)", "Member", "Project Manager"}


def test_team_picker_lists_teams(driver):
    """The multi team picker offers awork's teams."""
    options = json.loads(driver.options("teamIds", "eng").body)["options"]
    assert options == [
        {
            "text": {"type": "plain_text", "text": "Engineering", "emoji": True},
            "value": TEAM_ENGINEERING,
        }
    ]


def test_pickers_answer_from_cache_while_awork_is_down(driver, awork):
    """With awork down, options come from the cache without any awork call (timing: bench/)."""
    awork.down = True
    before = len(awork.requests)
    options = json.loads(driver.options("roleId", "").body)["options"]
    team_options = json.loads(driver.options("teamIds", "").body)["options"]
    assert len(options) == 3 and len(team_options) == 2
    assert len(awork.requests) == before


# --- submitting -----------------------------------------------------------------------------


def test_invalid_email_is_a_field_error_and_nothing_is_stored(driver, slack, bot, awork):
    """A bad address and a too-long name come back on their fields; no request, no post."""
    response = driver.submit_form({"email": "not-an-email", "firstName": "x" * 101})
    body = json.loads(response.body)
    assert body["response_action"] == "errors"
    assert set(body["errors"]) == {"email", "firstName"}
    assert bot.deps.wait_idle()  # nothing was handed on after the ack, or it has run
    assert list(bot.store.requests()) == []
    assert slack.of("chat.postMessage") == []
    assert awork.calls("POST", "/invitations") == []


def test_valid_request_is_stored_and_posted_for_approval(driver, slack, bot):
    """A valid form stores a pending request, posts it with Approve/Deny, tells the requester."""
    request_id = submit(driver, slack)
    stored = bot.store.get(request_id)
    assert (
        stored.status is Status.PENDING
        and stored.requester_id == "UREQ"
        and stored.origin_channel == GENERAL
    )
    post = slack.of("chat.postMessage")[0].args
    assert post["channel"] == ADMIN_CHANNEL
    text = json.dumps(post["blocks"])
    for needle in (
        "<@UREQ>",
        "ada@example.com",
        "Ada Lovelace",
        "Project Manager",
        "Design, Engineering",
    ):
        assert needle in text
    buttons = next(b for b in post["blocks"] if b["type"] == "actions")["elements"]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        ("approve_invite", request_id),
        ("deny_invite", request_id),
    ]
    notice = slack.wait_for("chat.postEphemeral")[0].args
    assert notice["channel"] == GENERAL and notice["user"] == "UREQ" and "waiting" in notice["text"]
    # The message's place is kept with the request, so it can be updated later.
    deadline = time.monotonic() + 2
    while bot.store.get(request_id).approval_message is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert bot.store.get(request_id).approval_message.channel == ADMIN_CHANNEL


def test_mrkdwn_in_user_text_is_escaped(driver, slack):
    """`<!channel>` and links in a name or note reach Slack as inert text."""
    submit(
        driver,
        slack,
        {
            "email": "eve@example.com",
            "firstName": "<!channel>",
            "note": "see <https://evil.example|here> & <@U1>",
        },
    )
    text = json.dumps(slack.of("chat.postMessage")[0].args["blocks"])
    assert "<!channel>" not in text and "<https://evil" not in text and "<@U1>" not in text
    assert "&lt;!channel&gt;" in text and "&amp;" in text


# --- approving ------------------------------------------------------------------------------


def test_approve_sends_one_invitation_and_reports_it(driver, slack, bot, awork):
    """Approve: one POST /invitations, 'Approved by' on the message, the invitee asked by DM."""
    slack.members["ada@example.com"] = "UADA"
    request_id = submit(driver, slack)
    response = driver.click("approve_invite", request_id, APPROVER)
    assert response.status == 200
    wait_settled(slack, request_id, "Approved by")
    request = wait_status(bot, request_id, Status.INVITED)
    [call] = awork.calls("POST", "/invitations")
    body = json.loads(call.content)
    assert body == {
        "email": "ada@example.com",
        "workspaceId": WORKSPACE_ID,
        "invitationFlow": "invite",
        "roleId": ROLE_PM,
        "firstName": "Ada",
        "lastName": "Lovelace",
        "skipSendingEmail": True,  # a Slack member: the bot delivers it (setting, default on)
        "teamIds": [TEAM_DESIGN, TEAM_ENGINEERING],
    }
    update = settle(bot, request_id) and slack.of("chat.update")[-1].args
    assert f"<@{APPROVER}>" in json.dumps(update["blocks"])
    assert "actions" not in [b["type"] for b in update["blocks"]]
    # The invitee's DM: who, where, role, teams, expiry and an Accept button - and no code.
    dm = slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "DUADA")[0]
    text = json.dumps(dm.args["blocks"])
    for needle in (
        "<@UREQ>",
        "NCNSTN Creative Agency",
        "Project Manager",
        "Design, Engineering",
        "<!date^",
    ):
        assert needle in text
    button = next(b for b in dm.args["blocks"] if b["type"] == "actions")["elements"][0]
    assert (button["action_id"], button["value"]) == ("accept_invite", request_id)
    # Later news: by DM to the requester, naming the channel where they asked.
    outcome = slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "DUREQ")
    text = outcome[0].args["text"]
    assert "approved" in text and "<@UADA>" in text and f"<#{GENERAL}>" in text
    code, reset = awork.invitations[0]["invitationCode"], awork.invitations[0]["passwordResetCode"]
    assert code.rstrip("=") not in slack.texts() and reset.rstrip("=") not in slack.texts()
    assert request.result is not None and bot.store.get(request_id).link_sent_to == "UADA"


def watching_the_post(settings, awork, look):
    """A bot whose awork notes `look(the request as stored)` as each POST /invitations arrives:
    (the bot, what was seen, where the test puts the request's id). awork's workspace is known
    already, so the POST is the approval's first call."""
    seen: list = []
    watched: dict[str, str] = {}

    def handler(request):
        if request.method == "POST" and request.url.path.endswith("/invitations"):
            seen.append(look(configured.store.get(watched["id"])))
        return awork.handler(request)

    configured = build_bot(settings, handler)
    configured.deps.service.inviting.workspace_id()
    return configured, seen, watched


def test_the_round_before_the_post_is_given_back_by_the_leases_renewal(settings, slack, awork):
    """The approval's round ("Approved by @x, inviting…") gives its delivery lease back, with
    what the message shows, in the work lease's renewal right before the POST - not alone."""
    configured, seen, watched = watching_the_post(
        settings, awork, lambda stored: (stored.lease_owner, stored.shown_status)
    )
    try:
        closings: list[str] = []
        closing = configured.store.renew_or_release
        configured.store.renew_or_release = lambda record_id, *a, **k: (
            closings.append(configured.store.get(record_id).status) or closing(record_id, *a, **k)
        )
        driver = SlackDriver(configured.app, SIGNING_SECRET)
        watched["id"] = request_id = submit(driver, slack)
        closings.clear()
        driver.click("approve_invite", request_id, APPROVER)
        wait_status(configured, request_id, Status.INVITED)
        assert configured.deps.wait_idle(5)
        assert seen == [(None, Status.INVITING)]
        assert Status.INVITING not in closings  # only the round after it closes alone
        assert configured.store.get(request_id).lease_owner is None
    finally:
        configured.shutdown(timeout=5)


def test_the_invitees_account_is_stored_before_awork_is_asked(settings, slack, awork):
    """The invitee's Slack account (the bot delivers their invitation) is on the stored request
    when the POST leaves, marked uncertain - both written with the lease's renewal right before
    it, not on their own."""
    configured, seen, watched = watching_the_post(
        settings, awork, lambda stored: (stored.invitee_slack_id, stored.uncertain)
    )
    try:
        updates: list[dict] = []
        update = configured.store.update
        configured.store.update = lambda record_id, **changes: (
            updates.append(changes) or update(record_id, **changes)
        )
        slack.members["ada@example.com"] = "UADA"
        driver = SlackDriver(configured.app, SIGNING_SECRET)
        watched["id"] = request_id = submit(driver, slack)
        driver.click("approve_invite", request_id, APPROVER)
        wait_status(configured, request_id, Status.INVITED)
        assert seen == [("UADA", True)]
        assert not [c for c in updates if "invitee_slack_id" in c]  # no write of its own
    finally:
        configured.shutdown(timeout=5)


def test_slack_members_keep_awork_email_when_the_setting_is_off(tmp_path, slack, awork):
    """INVITE_SKIP_EMAIL_FOR_SLACK_MEMBERS=false: awork's own email is sent as asked."""
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, slack.url, INVITE_SKIP_EMAIL_FOR_SLACK_MEMBERS="false")
    configured = build_bot(settings, awork.handler)
    try:
        slack.members["ada@example.com"] = "UADA"
        driver = SlackDriver(configured.app, SIGNING_SECRET)
        request_id = submit(driver, slack)
        driver.click("approve_invite", request_id, APPROVER)
        wait_status(configured, request_id, Status.INVITED)
        assert (
            json.loads(awork.calls("POST", "/invitations")[0].content)["skipSendingEmail"] is False
        )
    finally:
        configured.shutdown(timeout=5)


def test_link_goes_to_requester_when_invitee_is_not_in_slack(driver, slack, bot):
    """No Slack member with that email: the requester gets the link by DM."""
    request_id = submit(driver, slack)
    driver.click("approve_invite", request_id, APPROVER)
    dm = slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "DUREQ")[0]
    assert (
        "acceptance link" in dm.args["text"]
        and "https://app.awork.com/accept?code=" in dm.args["text"]
    )
    wait_settled(slack, request_id, "went by DM to <@UREQ>")
    assert bot.store.get(request_id).link_sent_to == "UREQ"


def test_requester_gets_a_dm_when_the_bot_cannot_post_in_their_channel(driver, slack, bot):
    """Ephemeral refused in the origin channel: the "waiting" answer arrives by DM instead."""
    slack.ephemeral_blocked.add(GENERAL)
    request_id = submit_unacknowledged(driver, slack)
    slack.wait_for(
        "chat.postMessage",
        where=lambda c: c.args["channel"] == "DUREQ" and "is waiting" in c.args["text"],
    )
    assert bot.store.get(request_id).status is Status.PENDING


def test_ten_concurrent_approvals_make_one_invitation(driver, slack, bot, awork):
    """Ten simultaneous Approve clicks by two approvers: exactly one invitation."""
    awork.delay = 0.05
    request_id = submit(driver, slack)
    responses = []
    threads = [
        threading.Thread(
            target=lambda i=i: responses.append(
                driver.click("approve_invite", request_id, APPROVERS[i % 2])
            )
        )
        for i in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status for r in responses] == [200] * 10
    wait_status(bot, request_id, Status.INVITED)
    refusals = slack.wait_for(
        "chat.postEphemeral", 9, where=lambda c: "Nothing changed" in c.args["text"]
    )
    assert len(refusals) == 9
    assert bot.deps.wait_idle()  # every click's follow-up has run
    assert len(awork.calls("POST", "/invitations")) == 1


def test_click_after_the_decision_changes_nothing(driver, slack, bot, awork):
    """A second click after the invitation says so privately and calls awork no more."""
    request_id = submit(driver, slack)
    driver.click("approve_invite", request_id, APPROVER)
    wait_status(bot, request_id, Status.INVITED)
    driver.click("approve_invite", request_id, APPROVERS[1])
    notice = slack.wait_for("chat.postEphemeral", where=lambda c: c.args["user"] == APPROVERS[1])[0]
    assert "already approved" in notice.args["text"]
    assert len(awork.calls("POST", "/invitations")) == 1


def test_non_approver_is_refused_privately(driver, slack, bot, awork):
    """Someone not in INVITE_APPROVERS gets 'only approvers' and nothing happens."""
    request_id = submit(driver, slack)
    assert driver.click("approve_invite", request_id, "URANDOM").status == 200
    driver.click("deny_invite", request_id, "URANDOM")
    notices = slack.wait_for("chat.postEphemeral", 2, where=lambda c: c.args["user"] == "URANDOM")
    assert all(
        "Only approvers" in n.args["text"] and n.args["channel"] == ADMIN_CHANNEL for n in notices
    )
    assert bot.deps.wait_idle()  # both clicks' follow-ups have run
    assert bot.store.get(request_id).status is Status.PENDING
    assert awork.calls("POST", "/invitations") == [] and slack.of("views.open") == []


# --- denying --------------------------------------------------------------------------------


def test_deny_asks_for_a_reason_and_tells_the_requester(driver, slack, bot, awork):
    """Deny opens the reason modal; submitting it updates the message and informs the requester."""
    request_id = submit(driver, slack)
    driver.click("deny_invite", request_id, APPROVER)
    modal = slack.wait_for("views.open")[0].args["view"]
    assert modal["callback_id"] == "deny_reason" and "reason" in block_ids(modal)
    assert modal["private_metadata"] == request_id
    response = driver.submit_deny(request_id, "No budget <!here>", APPROVER)
    assert response.status == 200 and response.body == ""
    wait_settled(slack, request_id, "Denied by")
    assert bot.store.get(request_id).status is Status.DENIED
    told = slack.wait_for("chat.postMessage", where=lambda c: "denied" in c.args["text"])[0].args
    assert "No budget &lt;!here&gt;" in told["text"] and told["channel"] == "DUREQ"
    driver.click("approve_invite", request_id, APPROVERS[1])
    slack.wait_for("chat.postEphemeral", where=lambda c: "already denied" in c.args["text"])
    assert awork.calls("POST", "/invitations") == []


def test_deny_reason_after_approval_is_shown_in_the_modal(driver, slack, bot):
    """A deny submitted after another approver approved: the modal becomes the answer, in
    mrkdwn (who approved shown as a mention), with Close only - not a field error, which Slack
    shows as plain text."""
    request_id = submit(driver, slack)
    driver.click("approve_invite", request_id, APPROVER)
    wait_status(bot, request_id, Status.INVITED)
    body = json.loads(driver.submit_deny(request_id, "too late", APPROVERS[1]).body)
    assert body["response_action"] == "update" and "errors" not in body
    view = body["view"]
    assert "submit" not in view and view["close"]["text"] == "Close"
    [block] = view["blocks"]
    assert block["text"]["type"] == "mrkdwn"
    assert f"already approved by <@{APPROVER}>" in block["text"]["text"]
    assert bot.store.get(request_id).status is Status.INVITED


# --- awork errors ---------------------------------------------------------------------------


def _approve_and_get_failure(driver, slack, bot, fields=ADA):
    request_id = submit(driver, slack, fields)
    driver.click("approve_invite", request_id, APPROVER)
    request = wait_status(bot, request_id, Status.FAILED)
    update = wait_settled(slack, request_id, "awork refused")[-1]
    told = slack.wait_for(
        "chat.postMessage",
        where=lambda c: c.args["channel"] == "DUREQ" and "awork refused" in c.args["text"],
    )[0]
    return request, json.dumps(update.args["blocks"]), told.args["text"]


def test_existing_member_is_reported_in_plain_words(driver, slack, bot, awork):
    """awork's already-exist-error reads 'already in the awork workspace' on message and to requester."""
    # Joined awork after the bot's last look at the members, so only awork can tell.
    awork.users.append(awork_user("newcomer@example.com", "New", "Comer"))
    request, message, told = _approve_and_get_failure(
        driver, slack, bot, {"email": "newcomer@example.com"}
    )
    assert request.failure.code == "already-exist-error"
    assert "already in the awork workspace" in message and "already in the awork workspace" in told


def test_no_seats_left_is_reported(driver, slack, bot, awork):
    """awork's insufficient-seats reads 'no free seats'."""
    awork.seats_free = 0
    _, message, told = _approve_and_get_failure(driver, slack, bot)
    assert "no free seats" in message and "no free seats" in told


def test_bad_role_is_reported(driver, slack, bot, awork):
    """A role deleted in awork after it was picked is reported as an invalid role or team."""
    awork.roles = [r for r in awork.roles if r["id"] != ROLE_PM]
    _, message, _ = _approve_and_get_failure(driver, slack, bot)
    assert "role or a team is not valid" in message


def test_wrong_api_key_is_reported_without_the_key(driver, slack, bot, awork):
    """401 from awork says to check AWORK_API_KEY and never shows the key."""
    awork.api_key = "rotated"
    _, message, told = _approve_and_get_failure(driver, slack, bot)
    assert "AWORK_API_KEY" in message and "AWORK_API_KEY" in told
    assert "awork-test-key" not in slack.texts()


def test_rate_limit_is_retried_after_the_ack(driver, slack, bot, awork):
    """A 429 with ratelimit-reset is retried, not before the reset, and the invitation still
    goes out once."""
    awork.fail_next.append(
        Fault(
            429,
            {"code": "too-many-requests", "description": "slow down", "link": "x"},
            {"ratelimit-reset": "0.3"},  # seconds, as the bot reads it; a second takes a second
            path="/invitations",
        )
    )
    request_id = submit(driver, slack)
    driver.click("approve_invite", request_id, APPROVER)
    wait_status(bot, request_id, Status.INVITED)
    assert len(awork.calls("POST", "/invitations")) == 2 and len(awork.invitations) == 1
    posted = [
        at for r, at in zip(awork.requests, awork.arrivals, strict=True) if r.method == "POST"
    ]
    assert posted[1] - posted[0] >= 0.3


def test_awork_answering_5xx_is_settled_then_offers_try_again_which_then_works(
    driver, slack, bot, awork
):
    """5xx to the POST (it may have been carried out): no second POST on a guess; absent when
    its settle window ends, it is sent once more; 5xx again and absent again: the invitation
    did not go through (never "awork refused"), and "Try again" then invites once."""
    clock = StoreClock(bot.store)
    awork.fail_next += [Fault(503, path="/invitations") for _ in range(2)]
    request_id = submit(driver, slack)
    driver.click("approve_invite", request_id, APPROVER)
    request = wait_status(bot, request_id, Status.INVITING)
    while request.status is Status.INVITING:
        settle(bot, request_id)
        request = bot.store.get(request_id)
        if request.unsure_since is None:
            continue  # the click's work is still running
        clock.advance((request.claim_until - bot.store.now()).total_seconds())
        bot.deps.courier.sweep()
        request = bot.store.get(request_id)
    assert request.status is Status.FAILED and request.failure.retryable
    assert len(awork.calls("POST", "/invitations")) == 2 and awork.invitations == []
    update = wait_settled(slack, request_id, "did not go through")[-1]
    assert "retry_invite" in json.dumps(update.args["blocks"])
    assert "awork refused" not in slack.texts()
    driver.click("retry_invite", request.id, APPROVERS[1])
    wait_status(bot, request.id, Status.INVITED)
    assert len(awork.invitations) == 1 and len(awork.calls("POST", "/invitations")) == 3


# --- advanced fields ------------------------------------------------------------------------


def test_approver_can_create_a_new_workspace(driver, slack, bot, awork):
    """workspaceId 'new' sends no workspaceId, with plan, flow, seats and connect code."""
    fields = {
        "email": "new@example.com",
        "workspaceId": "new",
        "planId": "business",
        "invitationFlow": "existing_user_new_workspace",
        "bookedSeats": 5,
        "connectInviteCode": "CONNECT1",
    }
    response = driver.submit_form(fields, user=APPROVER, advanced=True)
    assert response.body == ""
    request_id = approval_request_id(slack)
    driver.click("approve_invite", request_id, APPROVERS[1])
    wait_status(bot, request_id, Status.INVITED)
    body = json.loads(awork.calls("POST", "/invitations")[0].content)
    assert "workspaceId" not in body
    assert body["planId"] == "business" and body["invitationFlow"] == "existing_user_new_workspace"
    assert body["bookedSeats"] == 5 and body["connectInviteCode"] == "CONNECT1"


def test_a_plan_left_selected_for_this_workspace_is_set_aside(driver, bot, awork):
    """A plan picked and then this workspace chosen (Slack cannot clear a select): the form
    is accepted and the invitation goes into this workspace without a plan."""
    answer = driver.submit_form(
        {"email": "p@example.com", "workspaceId": "current", "planId": "business"},
        user=APPROVER,
        advanced=True,
    )
    assert not answer.body or "errors" not in json.loads(answer.body)
    (request,) = bot.store.requests()
    assert request.details.plan_id is None and request.details.new_workspace is False


def test_non_approver_cannot_use_advanced_fields(driver, bot):
    """A forged submission with advanced fields from a non-approver is refused."""
    body = json.loads(
        driver.submit_form(
            {"email": "p@example.com", "workspaceId": "new"}, user="UREQ", advanced=True
        ).body
    )
    assert body["response_action"] == "errors"
    assert list(bot.store.requests()) == []


# --- restarts and signatures ----------------------------------------------------------------


def test_pending_request_survives_a_restart(settings, awork, slack, bot, driver):
    """A request submitted before a restart can be approved after it; its message is updated."""
    request_id = submit(driver, slack)
    settle(bot, request_id)
    bot.close()
    again = build_bot(settings, awork.handler)
    try:
        SlackDriver(again.app, SIGNING_SECRET).click("approve_invite", request_id, APPROVER)
        wait_status(again, request_id, Status.INVITED)
        original_ts = slack.of("chat.postMessage")[0]
        update = wait_settled(slack, request_id, "Approved by")[-1]
        assert update.args["channel"] == ADMIN_CHANNEL
        assert len(awork.invitations) == 1 and original_ts
    finally:
        again.close()


def test_unsigned_and_stale_requests_are_refused(driver, slack, bot):
    """A bad signature or a timestamp older than 5 minutes gets 401 and opens nothing."""
    body = driver.command_body()
    assert driver.send(body, signature="v0=" + "0" * 64).status == 401
    assert driver.send(body, timestamp=int(time.time()) - 600).status == 401
    assert bot.deps.wait_idle()  # no modal is queued or opening
    assert slack.of("views.open") == []


def test_configured_workspace_id_is_used_without_asking_awork(tmp_path, slack, awork):
    """AWORK_WORKSPACE_ID set: the invitation uses it and GET /users/me is never called."""
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, slack.url, AWORK_WORKSPACE_ID=WORKSPACE_ID)
    configured = build_bot(settings, awork.handler)
    try:
        driver = SlackDriver(configured.app, SIGNING_SECRET)
        request_id = submit(driver, slack)
        driver.click("approve_invite", request_id, APPROVER)
        wait_status(configured, request_id, Status.INVITED)
        assert (
            json.loads(awork.calls("POST", "/invitations")[0].content)["workspaceId"]
            == WORKSPACE_ID
        )
        assert awork.calls("GET", "/users/me") == []
    finally:
        configured.shutdown(timeout=5)


def test_workspace_id_is_asked_once_and_kept(driver, slack, bot, awork):
    """Without AWORK_WORKSPACE_ID, /users/me is asked once, then the stored id is reused."""
    for email in ("one@example.com", "two@example.com"):
        request_id = submit(driver, slack, {"email": email})
        driver.click("approve_invite", request_id, APPROVER)
        wait_status(bot, request_id, Status.INVITED)
    assert len(awork.calls("GET", "/users/me")) == 1
    assert bot.store.get_meta("workspace_id") == WORKSPACE_ID


def test_known_member_is_answered_in_the_form_and_admins_are_not_asked(driver, slack, bot):
    """An address awork already has: an error on the email field, nothing stored or posted."""
    body = json.loads(driver.submit_form({"email": "Owner@NCNSTN.com"}).body)
    assert body == {
        "response_action": "errors",
        "errors": {
            "email": "This address is already in the awork workspace; no invitation is needed."
        },
    }
    assert list(bot.store.requests()) == [] and slack.of("chat.postMessage") == []


def test_open_request_for_the_same_address_is_answered_with_a_link(driver, slack, bot):
    """A second request for an address with an open one: the error links to the first's message."""
    first = submit(driver, slack, {"email": "twice@example.com"})
    settle(bot, first)
    ref = bot.store.get(first).approval_message
    body = json.loads(driver.submit_form({"email": "TWICE@example.com"}, user="UOTHER").body)
    error = body["errors"]["email"]
    assert body["response_action"] == "errors" and first in error
    assert f"https://dandydev.slack.com/archives/{ref.channel}/p{ref.ts.replace('.', '')}" in error
    assert len(list(bot.store.requests())) == 1
    assert len([c for c in slack.of("chat.postMessage") if c.args["channel"] == ADMIN_CHANNEL]) == 1


def test_a_denied_address_may_be_asked_for_again(driver, slack, bot):
    """Once the earlier request is decided (denied), a new one for the address goes to the admins."""
    first = submit(driver, slack, {"email": "again@example.com"})
    driver.submit_deny(first, "not now", APPROVER)
    wait_status(bot, first, Status.DENIED)
    assert driver.submit_form({"email": "again@example.com"}).body == ""
    assert len(list(bot.store.requests())) == 2


def test_member_list_is_refreshed_from_awork_pages(bot, awork):
    """The member cache reads every page of GET /users and keeps lower-case emails."""
    awork.users += [awork_user(f"Person{i}@Example.com", "P", str(i)) for i in range(1500)]
    assert bot.deps.catalog.refresh()
    assert bot.deps.catalog.is_member("person1499@example.com")
    assert len(awork.calls("GET", "/users")) >= 2
