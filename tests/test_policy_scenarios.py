"""INVITE_POLICY through the real Bolt app: each rule with signed requests, fake Slack and awork."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from bot.domain.batches import BatchStatus
from bot.domain.records import ApprovalRule, Status
from tests.conftest import APPROVERS, SIGNING_SECRET, build_bot, make_settings
from tests.fakes.awork import ROLE_ADMIN, ROLE_MEMBER, ROLE_PM, TEAM_DESIGN
from tests.slack_requests import ADMIN_CHANNEL, GENERAL, SlackDriver
from tests.test_scenarios import settle, wait_status

DESIGN_CHANNEL = "CDESIGN01"
LEAD = "ULEAD0001"
POLICY = f"""
requesters = ["UREQ", "UAPPROVER1", "UAPPROVER2", "S0FREELANCE", "ULEAD0001"]
approved_domains = ["ours.example", "*.ours.example"]
blocked_domains = ["mailinator.com"]
daily_limit = 3

[[routes]]
name = "design"
teams = ["design"]
admin_channel = "{DESIGN_CHANNEL}"
approvers = ["{LEAD}"]
roles = ["Member", "Project Manager"]
"""


@pytest.fixture
def policy_bot(tmp_path, slack, awork) -> Iterator:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    slack.groups["S0FREELANCE"] = ["UFREE"]
    settings = make_settings(tmp_path, slack.url, INVITE_POLICY=str(path))
    bot = build_bot(settings, awork.handler)
    assert bot.deps.catalog.refresh()
    bot.directory.refresh(force=True)
    yield bot
    bot.shutdown(timeout=5)


@pytest.fixture
def pdriver(policy_bot) -> SlackDriver:
    return SlackDriver(policy_bot.app, SIGNING_SECRET)


def ephemeral(response) -> str:
    assert response.status == 200
    return json.loads(response.body)["text"]


def field_errors(response) -> dict[str, str]:
    assert response.status == 200
    body = json.loads(response.body)
    assert body["response_action"] == "errors"
    return body["errors"]


def decisions(rule: str, outcome: str) -> float:
    labels = {"rule": rule, "outcome": outcome}
    return REGISTRY.get_sample_value("invitebot_policy_decisions_total", labels) or 0.0


def stored(bot) -> list:
    return list(bot.store.requests()) + bot.store.batches()


def test_approved_domain_is_invited_without_an_approver(pdriver, slack, policy_bot, awork):
    """ours.example: invited at once, a buttonless message naming the rule, audit and metric."""
    before = decisions("approved_domains", "approved")
    assert pdriver.submit_form({"email": "kim@ours.example", "roleId": ROLE_PM}).body == ""
    [request] = list(policy_bot.store.requests())
    invited = wait_status(policy_bot, request.id, Status.INVITED)
    assert invited.approval_rule is ApprovalRule.POLICY and invited.decided_by is None
    assert invited.policy_rule == "approved_domains: ours.example"
    assert [json.loads(c.content)["email"] for c in awork.calls("POST", "/invitations")] == [
        "kim@ours.example"
    ]
    settle(policy_bot, request.id)
    posts = [c for c in slack.of("chat.postMessage") if c.args["channel"] == ADMIN_CHANNEL]
    shown = json.dumps([c.args["blocks"] for c in posts + slack.of("chat.update")])
    assert "approved_domains: ours.example" in shown and "Approved by the policy" in shown
    assert all(b["type"] != "actions" for c in posts for b in c.args["blocks"])
    news = slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "DUREQ")
    assert "policy" in news[0].args["text"]
    events = [(e.event, e.detail.get("rule")) for e in policy_bot.store.audit()]
    assert ("approved", "policy") in events
    assert decisions("approved_domains", "approved") == before + 1


def test_an_admin_role_on_an_approved_domain_still_needs_approvers(pdriver, policy_bot):
    """The two-approver rule stands: an admin role at ours.example waits with buttons."""
    pdriver.submit_form({"email": "boss@ours.example", "roleId": ROLE_ADMIN})
    [request] = list(policy_bot.store.requests())
    assert request.status is Status.PENDING and request.approvals_needed == 2
    assert request.approval_rule is None


def test_subdomain_entry_matches_subdomains_only(pdriver, policy_bot):
    """*.ours.example approves berlin.ours.example; ours.example.evil.com is asked of people."""
    pdriver.submit_form({"email": "a@berlin.ours.example"})
    pdriver.submit_form({"email": "b@ours.example.evil.com"})
    by_email = {r.details.email: r for r in policy_bot.store.requests()}
    assert by_email["a@berlin.ours.example"].approval_rule is ApprovalRule.POLICY
    assert by_email["b@ours.example.evil.com"].status is Status.PENDING


def test_blocked_domain_is_refused_everywhere_and_nothing_is_stored(pdriver, slack, policy_bot):
    """Form: a field error on email; inline: a private answer; a list: left out by name."""
    errors = field_errors(pdriver.submit_form({"email": "x@mailinator.com"}))
    assert "mailinator.com" in errors["email"] and "blocked_domains" in errors["email"]
    text = ephemeral(pdriver.command("y@MAILINATOR.com"))
    assert "mailinator.com" in text and "nobody was asked" in text
    assert stored(policy_bot) == []
    refusals = [e for e in policy_bot.store.audit() if e.event == "policy_refused"]
    assert [(e.actor, e.detail["rule"]) for e in refusals] == [
        ("UREQ", "blocked_domains: mailinator.com")
    ] * 2
    assert pdriver.command("z@mailinator.com w@elsewhere.com").body == ""
    [batch] = policy_bot.store.batches()
    assert [e.email for e in batch.entries] == ["w@elsewhere.com"]
    notice = slack.wait_for("chat.postEphemeral", where=lambda c: batch.id in c.args["text"])
    assert "blocked domain: z@mailinator.com" in notice[0].args["text"]


def test_someone_not_among_the_requesters_is_told_whom_to_ask(pdriver, slack, policy_bot):
    """Not listed: no form, a private answer naming the approvers; nothing stored."""
    text = ephemeral(pdriver.command("", user="UOTHER"))
    assert "can't ask" in text and all(f"<@{a}>" in text for a in APPROVERS)
    assert "policy rule: requesters" in text
    assert "can't ask" in ephemeral(pdriver.command("a@x.com", user="UOTHER"))
    errors = field_errors(pdriver.submit_form({"email": "a@x.com"}, user="UOTHER"))
    assert "can't ask" in errors["email"]
    assert slack.of("views.open") == [] and stored(policy_bot) == []
    rules = {e.detail["rule"] for e in policy_bot.store.audit() if e.event == "policy_refused"}
    assert rules == {"requesters"} and decisions("requesters", "refused") >= 3


def test_a_user_group_among_the_requesters_lets_its_members_ask(pdriver, slack, policy_bot):
    """S0FREELANCE's member UFREE may ask: the form opens."""
    assert pdriver.command("", user="UFREE").body == ""
    slack.wait_for("views.open")


def test_a_route_sends_its_requests_to_its_channel_and_approvers(pdriver, slack, policy_bot):
    """Team Design: the approval message goes to the route's channel; only its lead decides."""
    request_id = _ask_design(pdriver, slack, policy_bot)
    request = policy_bot.store.get(request_id)
    assert (request.route, request.route_channel, request.route_approvers) == (
        "design",
        DESIGN_CHANNEL,
        [LEAD],
    )
    pdriver.click("approve_invite", request_id, APPROVERS[0], channel=DESIGN_CHANNEL)
    refused = slack.wait_for("chat.postEphemeral", where=lambda c: c.args["user"] == APPROVERS[0])
    assert "approver" in refused[-1].args["text"]
    assert policy_bot.store.get(request_id).status is Status.PENDING
    pdriver.click("approve_invite", request_id, LEAD, channel=DESIGN_CHANNEL)
    wait_status(policy_bot, request_id, Status.INVITED)


def test_pending_lists_show_each_approver_their_own_routes(pdriver, slack, policy_bot):
    """`/invite pending`: the lead sees the design request; a default approver does not."""
    request_id = _ask_design(pdriver, slack, policy_bot)
    lead_list = json.loads(pdriver.command("pending", user=LEAD).body)
    assert request_id in json.dumps(lead_list)
    other = json.loads(pdriver.command("pending", user=APPROVERS[0]).body)
    assert request_id not in json.dumps(other)


def test_a_role_outside_the_route_is_refused_naming_it(pdriver, policy_bot):
    """Admin on the design route: a field error on the role, naming it and the allowed ones."""
    fields = {"email": "a@x.com", "roleId": ROLE_ADMIN, "teamIds": [TEAM_DESIGN]}
    errors = field_errors(pdriver.submit_form(fields))
    assert "“Admin”" in errors["roleId"] and "Member, Project Manager" in errors["roleId"]
    assert "routes.design.roles" in errors["roleId"]
    text = ephemeral(pdriver.command("b@x.com role:admin team:design"))
    assert "“Admin”" in text
    assert stored(policy_bot) == []


def test_the_daily_limit_refuses_what_is_beyond_it(pdriver, slack, policy_bot):
    """Limit 3: a list of four keeps three; the next ask is refused, saying when it resets."""
    assert pdriver.command("a@x.com b@x.com c@x.com d@x.com").body == ""
    [batch] = policy_bot.store.batches()
    assert [e.email for e in batch.entries] == ["a@x.com", "b@x.com", "c@x.com"]
    assert [(s.email, s.reason) for s in batch.skipped] == [("d@x.com", "daily_limit")]
    notice = slack.wait_for("chat.postEphemeral", where=lambda c: batch.id in c.args["text"])
    assert "over today's limit: d@x.com" in notice[0].args["text"]
    text = ephemeral(pdriver.command("e@x.com"))
    assert "today's limit" in text and "00:00 UTC" in text and "daily_limit" in text
    errors = field_errors(pdriver.submit_form({"email": "f@x.com"}))
    assert "today's limit" in errors["email"]
    assert len(stored(policy_bot)) == 1
    assert pdriver.command("g@x.com", user=APPROVERS[0]).body == ""  # counted per requester


def test_an_address_invited_earlier_is_already_in_awork(pdriver, policy_bot, awork):
    """Invited (not lapsed): asking again says "already in awork" before the member list knows."""
    pdriver.submit_form({"email": "kim@ours.example"})
    [request] = list(policy_bot.store.requests())
    wait_status(policy_bot, request.id, Status.INVITED)
    assert not policy_bot.deps.catalog.is_member("kim@ours.example")
    text = ephemeral(pdriver.command("kim@ours.example"))
    assert "already in the awork workspace" in text
    assert pdriver.command("kim@ours.example z@x.com").body == ""
    batch = policy_bot.store.batches()[0]
    assert [(s.email, s.reason) for s in batch.skipped] == [("kim@ours.example", "member")]


def test_a_list_is_split_into_approved_domains_and_the_rest(pdriver, slack, policy_bot, awork):
    """ours.example people run at once as their own batch; the others wait for approvers."""
    assert pdriver.command("a@ours.example b@x.com c@ours.example role:member").body == ""
    batches = {b.status: b for b in policy_bot.store.batches()}
    asked = batches[BatchStatus.PENDING]
    assert [e.email for e in asked.entries] == ["b@x.com"]
    running = next(b for b in policy_bot.store.batches() if b.approval_rule is ApprovalRule.POLICY)
    assert [e.email for e in running.entries] == ["a@ours.example", "c@ours.example"]
    slack.wait_for("chat.update", where=lambda c: "2 invited" in json.dumps(c.args["blocks"]))
    bodies = [json.loads(c.content) for c in awork.calls("POST", "/invitations")]
    assert sorted(b["email"] for b in bodies) == ["a@ours.example", "c@ours.example"]
    assert all(b["roleId"] == ROLE_MEMBER for b in bodies)
    member = policy_bot.store.get(running.member_id(0))
    assert member.approval_rule is ApprovalRule.POLICY  # its notices say the policy approved
    assert member.policy_rule == "approved_domains: ours.example"
    assert policy_bot.store.get_batch(asked.id).status is BatchStatus.PENDING


def test_an_invalid_change_keeps_the_last_good_policy(tmp_path, pdriver, policy_bot):
    """A broken edit is logged and not taken; invitebot_policy_valid is 0 until it is fixed."""
    path = tmp_path / "policy.toml"
    path.write_text(POLICY + "\nunknown_key = 1\n")
    policy_bot.deps.service.policy.refresh()
    assert REGISTRY.get_sample_value("invitebot_policy_valid") == 0
    assert "mailinator.com" in ephemeral(pdriver.command("y@mailinator.com"))  # still in force
    path.write_text(POLICY.replace('"mailinator.com"', '"spam.example"') + "\n# fixed\n")
    assert policy_bot.deps.service.policy.file.refresh()
    assert REGISTRY.get_sample_value("invitebot_policy_valid") == 1
    assert pdriver.command("y@mailinator.com").body == ""  # the new policy is in force


def _ask_design(pdriver, slack, bot) -> str:
    fields = {"email": "dana@x.com", "roleId": ROLE_MEMBER, "teamIds": [TEAM_DESIGN]}
    assert pdriver.submit_form(fields, channel=GENERAL).body == ""
    post = slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == DESIGN_CHANNEL)
    [request] = list(bot.store.requests())
    assert request.id in json.dumps(post[0].args["blocks"])
    assert "route `design`" in json.dumps(post[0].args["blocks"])
    told = slack.wait_for("chat.postEphemeral", where=lambda c: request.id in c.args["text"])
    assert "approvers of `design`" in told[0].args["text"]  # the requester hears the route
    return request.id


def test_a_workflow_run_goes_through_the_policy_too(pdriver, slack, policy_bot):
    """A run on behalf of someone not among the requesters fails naming the rule; a run for an
    approved domain is invited without an approver and completes the run."""
    from tests.test_workflow_step import send_run

    refused = send_run(pdriver, {"email": "a@x.com", "requester": "UOTHER"})
    [failed] = slack.wait_for("functions.completeError")
    assert failed.args["function_execution_id"] == refused
    assert "requesters" in failed.args["error"]
    invited = send_run(pdriver, {"email": "kim@ours.example", "requester": "UREQ"})
    [done] = slack.wait_for("functions.completeSuccess")
    assert done.args["function_execution_id"] == invited
    assert done.args["outputs"]["status"] == "invited"


def test_a_routes_only_approver_does_not_approve_their_own_request(pdriver, slack, policy_bot):
    """The lead asks on their own route: their click is refused as their own request, and the
    default approvers can decide it instead."""
    fields = {"email": "own@x.com", "roleId": ROLE_MEMBER, "teamIds": [TEAM_DESIGN]}
    assert pdriver.submit_form(fields, user=LEAD).body == ""
    [request] = list(policy_bot.store.requests())
    pdriver.click("approve_invite", request.id, LEAD, channel=DESIGN_CHANNEL)
    refused = slack.wait_for(
        "chat.postEphemeral",
        where=lambda c: c.args["user"] == LEAD and "own request" in c.args["text"],
    )
    assert refused
    assert policy_bot.store.get(request.id).status is Status.PENDING
    pdriver.click("approve_invite", request.id, APPROVERS[0], channel=DESIGN_CHANNEL)
    wait_status(policy_bot, request.id, Status.INVITED)


def test_only_the_default_approvers_get_the_forms_advanced_part(pdriver, slack, policy_bot):
    """A route's lead decides its requests but does not get the new-workspace fields."""

    def form_of(user: str) -> set:
        pdriver.command("", user=user)
        view = slack.wait_for("views.open", where=lambda c: True)[-1].args["view"]
        slack.calls.clear()
        return {block.get("block_id") for block in view["blocks"]}

    assert "planId" not in form_of(LEAD)
    assert "planId" in form_of(APPROVERS[0])


def test_a_run_delivered_again_after_a_policy_change_finds_its_request(
    tmp_path, pdriver, slack, policy_bot
):
    """Its requester taken off the list meanwhile: the repeated delivery finds the request
    the run made and does not fail the run."""
    from tests.test_workflow_step import run_event, send_run

    execution_id = send_run(pdriver, {"email": "dora@x.com", "requester": "UREQ"})
    (tmp_path / "policy.toml").write_text(POLICY.replace('"UREQ", ', ""))
    assert policy_bot.deps.service.policy.file.refresh()
    body, _ = run_event({"email": "dora@x.com", "requester": "UREQ"}, execution_id)
    assert pdriver.send(body, content_type="application/json").status == 200
    policy_bot.deps.wait_idle()
    assert len(list(policy_bot.store.requests())) == 1
    assert slack.of("functions.completeError") == []
