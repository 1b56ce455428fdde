"""The Workflow Builder step `invite_to_awork`: signed `function_executed` events through the real
Bolt app; the run is completed (functions.completeSuccess/completeError) once the outcome is known."""

from __future__ import annotations

import copy
import json
import secrets
from pathlib import Path

import pytest

from bot.domain.records import Status
from bot.domain.steps import read_inputs, step_request_id
from tests.conftest import APPROVERS, SIGNING_SECRET, build_bot
from tests.fakes.awork import ROLE_PM, TEAM_DESIGN, FakeAwork
from tests.slack_requests import ADMIN_CHANNEL, SlackDriver, fixture
from tests.test_scenarios import settle, wait_status

APPROVER = APPROVERS[0]
RUN_TOKEN = "xwfp-run-token-0001"


def run_event(inputs: dict, execution_id: str | None = None) -> tuple[str, str]:
    """A `function_executed` event body for our step (Slack's documented shape) and its id."""
    body = copy.deepcopy(fixture("function_executed_bolt_tests.json")["payload"])
    execution_id = execution_id or "Fx" + secrets.token_hex(5).upper()
    body["event"].update(
        function={**body["event"]["function"], "callback_id": "invite_to_awork"},
        inputs=inputs,
        function_execution_id=execution_id,
        workflow_execution_id="Wx" + execution_id[2:],
        bot_access_token=RUN_TOKEN,
    )
    return json.dumps(body), execution_id


def send_run(driver, inputs: dict, execution_id: str | None = None) -> str:
    body, execution_id = run_event(inputs, execution_id)
    response = driver.send(body, content_type="application/json")
    assert response.status == 200
    return execution_id


def completions(slack, execution_id: str) -> list:
    return [
        c
        for c in slack.calls
        if c.method.startswith("functions.complete")
        and c.args.get("function_execution_id") == execution_id
    ]


ADA = {
    "email": "ada@example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "role": "project",
    "teams": ["design"],
    "requester": "UREQ",
    "note": "new designer",
    "skip_email": False,
}


def approve(driver, slack, bot, execution_id: str):
    request_id = step_request_id(execution_id)
    slack.wait_for(
        "chat.postMessage",
        where=lambda c: c.args["channel"] == ADMIN_CHANNEL and request_id in json.dumps(c.args),
    )
    driver.click("approve_invite", request_id, APPROVER)
    return request_id


def test_a_run_becomes_a_request_and_is_completed_once_invited(driver, slack, bot, awork):
    """Inputs resolved like /invite; approved: completeSuccess with the outputs, once."""
    slack.members["ada@example.com"] = "UADA"
    execution_id = send_run(driver, ADA)
    request = bot.store.get(step_request_id(execution_id))
    assert request.details.role_id == ROLE_PM and request.details.team_ids == [TEAM_DESIGN]
    assert request.details.note == "new designer" and request.requester_id == "UREQ"
    approve(driver, slack, bot, execution_id)
    wait_status(bot, request.id, Status.INVITED)
    done = slack.wait_for("functions.completeSuccess")[0]
    outputs = done.args["outputs"]
    assert outputs["request_id"] == request.id and outputs["status"] == "invited"
    assert outputs["invitee"] == "UADA" and outputs["awork_user_id"]
    assert done.token == RUN_TOKEN  # the run's own token while it is valid
    settle(bot, request.id)
    assert len(completions(slack, execution_id)) == 1
    assert bot.store.get(request.id).step.done
    post = next(c for c in slack.of("chat.postMessage") if c.args["channel"] == ADMIN_CHANNEL)
    assert "Workflow Builder step" in json.dumps(post.args["blocks"])


def test_a_denied_run_fails_with_the_reason(driver, slack, bot):
    """Denied: completeError carries the approver's reason in plain words."""
    execution_id = send_run(driver, ADA)
    request_id = step_request_id(execution_id)
    assert bot.deps.service.deny(request_id, APPROVER, "not this quarter").ok
    bot.deps.courier.sync(request_id)
    [failed] = slack.wait_for("functions.completeError")
    assert failed.args["function_execution_id"] == execution_id
    assert "denied: not this quarter" in failed.args["error"]


def test_an_expired_run_fails_saying_so(driver, slack, bot):
    """Nobody decided: the expiry completes the run with an error."""
    from datetime import timedelta

    execution_id = send_run(driver, ADA)
    request = bot.store.get(step_request_id(execution_id))
    changed = bot.deps.service.remind_and_expire([request], timedelta(0), timedelta(0))
    assert changed == [request.id]
    bot.deps.courier.sync(request.id)
    [failed] = slack.wait_for("functions.completeError")
    assert "expired" in failed.args["error"]


def test_awork_refusing_fails_the_run_in_plain_words(driver, slack, bot, awork):
    """awork says no seats: completeError with awork's reason."""
    awork.seats_free = 0
    execution_id = send_run(driver, ADA)
    request_id = approve(driver, slack, bot, execution_id)
    wait_status(bot, request_id, Status.FAILED)
    [failed] = slack.wait_for("functions.completeError")
    assert "awork did not invite ada@example.com" in failed.args["error"]
    assert "seats" in failed.args["error"]


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        ({"requester": "UREQ"}, "Input email"),
        ({**ADA, "email": "not-an-address"}, "Input email"),
        ({**ADA, "role": "Boss"}, "Input role: There is no role “Boss”"),
        ({**ADA, "teams": ["Sales"]}, "Input teams: There is no team “Sales”"),
        ({**ADA, "requester": "nobody"}, "Input requester"),
    ],
)
def test_invalid_inputs_fail_the_run_at_once(driver, slack, bot, inputs, words):
    """Nothing is stored; completeError names the input in a plain sentence."""
    execution_id = send_run(driver, inputs)
    [failed] = slack.wait_for("functions.completeError")
    assert failed.args["function_execution_id"] == execution_id and words in failed.args["error"]
    assert list(bot.store.requests()) == []


def test_a_run_delivered_again_makes_one_request(driver, slack, bot):
    """Slack's retry (X-Slack-Retry-Num) and a second delivery of the run find the first."""
    execution_id = send_run(driver, ADA)
    body, _ = run_event(ADA, execution_id)
    response = driver.send(body, content_type="application/json")
    assert response.status == 200
    assert [r.id for r in bot.store.requests()] == [step_request_id(execution_id)]
    bot.deps.wait_idle()
    approvals = [c for c in slack.of("chat.postMessage") if c.args["channel"] == ADMIN_CHANNEL]
    assert len(approvals) == 1 and completions(slack, execution_id) == []


def test_an_address_already_in_awork_completes_as_already_member(driver, slack, bot, awork):
    """A member: completed successfully with status already_member; nobody is asked."""
    execution_id = send_run(driver, {**ADA, "email": "owner@ncnstn.com"})
    [done] = slack.wait_for("functions.completeSuccess")
    assert done.args["function_execution_id"] == execution_id
    assert done.args["outputs"] == {"status": "already_member"}
    assert list(bot.store.requests()) == []


def test_a_run_token_slack_no_longer_takes_falls_back_to_the_bot_token(driver, slack, bot):
    """The run's token refused (expired): the bot token completes the run."""
    slack.refused_tokens[RUN_TOKEN] = "token_expired"
    execution_id = send_run(driver, {**ADA, "role": "Boss"})
    [failed] = slack.wait_for("functions.completeError", 2)[-1:]
    assert failed.token != RUN_TOKEN and failed.args["function_execution_id"] == execution_id
    stored = Path(bot.deps.settings.invite_db_path).read_bytes().decode("latin-1")
    assert RUN_TOKEN not in stored  # the run's token is never stored


def test_a_restart_between_approval_and_completion_completes_once(tmp_path, slack, settings):
    """Slack down at completion, the process gone: the next one's sweep completes it, once."""
    awork = FakeAwork()
    first = build_bot(settings, awork.handler)
    assert first.deps.catalog.refresh()
    driver = SlackDriver(first.app, SIGNING_SECRET)
    slack.errors["functions.completeSuccess"] = "internal_error"
    execution_id = send_run(driver, ADA)
    request_id = approve(driver, slack, first, execution_id)
    wait_status(first, request_id, Status.INVITED)
    slack.wait_for("functions.completeSuccess")
    first.shutdown(timeout=5)
    del slack.errors["functions.completeSuccess"]
    tried = len(completions(slack, execution_id))  # each answered "internal_error"
    second = build_bot(settings, awork.handler)
    try:
        assert not second.store.get(request_id).step.done
        second.deps.courier.sweep(force=True)
        assert len(completions(slack, execution_id)) == tried + 1
        assert second.store.get(request_id).step.done
        second.deps.courier.sweep(force=True)
        assert len(completions(slack, execution_id)) == tried + 1  # never again
    finally:
        second.shutdown(timeout=5)


def test_inputs_are_read_like_the_form_and_inline_invite():
    """Unit: names by prefix, any case; skip_email; several mistakes named together."""
    from bot.domain.awork_models import Role, Team

    roles = [Role(id="r1", name="Member"), Role(id="r2", name="Project Manager")]
    teams = [Team(id="t1", name="Design")]
    details, requester, errors = read_inputs(
        {
            "email": "a@x.com",
            "role": "proj",
            "teams": "design",
            "requester": "W1AB",
            "skip_email": True,
        },
        roles,
        teams,
    )
    assert errors == [] and requester == "W1AB"
    assert (details.role_id, details.team_ids, details.skip_sending_email) == ("r2", ["t1"], True)
    _, _, errors = read_inputs({"email": 5, "skip_email": "yes", "requester": "x"}, roles, teams)
    named = {error.split(":")[0] for error in errors}
    assert {"Input requester", "Input email", "Input skip_email"} <= named


def test_the_manifest_declares_the_step_with_its_inputs_and_outputs():
    """functions.invite_to_awork as DESIGN.md names it; org-ready; function_executed delivered."""
    import yaml

    manifest = yaml.safe_load(Path("manifest.yml").read_text())
    step = manifest["functions"]["invite_to_awork"]
    assert step["title"] == "Invite to awork"
    inputs, outputs = step["input_parameters"], step["output_parameters"]
    assert set(inputs) == {
        "email",
        "first_name",
        "last_name",
        "role",
        "teams",
        "requester",
        "note",
        "skip_email",
    }
    assert inputs["requester"]["type"] == "slack#/types/user_id" and inputs["email"]["is_required"]
    assert inputs["teams"] == {**inputs["teams"], "type": "array", "items": {"type": "string"}}
    assert set(outputs) == {"request_id", "status", "awork_user_id", "invitee"}
    assert manifest["settings"]["org_deploy_enabled"] is True
    assert "function_executed" in manifest["settings"]["event_subscriptions"]["bot_events"]


def test_awork_saying_already_a_member_completes_the_run_as_already_member(
    driver, slack, bot, awork
):
    """Joined awork after the member list was read: awork's already-exist-error completes the
    run successfully with status already_member, not as a failure."""
    from tests.fakes.awork import awork_user

    awork.users.append(awork_user("newcomer@example.com", "New", "Comer"))
    execution_id = send_run(driver, {**ADA, "email": "newcomer@example.com"})
    request_id = approve(driver, slack, bot, execution_id)
    wait_status(bot, request_id, Status.FAILED)
    [done] = slack.wait_for("functions.completeSuccess")
    assert done.args["function_execution_id"] == execution_id
    assert done.args["outputs"]["status"] == "already_member"
    assert slack.of("functions.completeError") == []


def test_a_refused_runs_completion_is_kept_until_slack_takes_it(driver, slack, bot):
    """Slack failing the completion of a run that made no request: the store's outbox keeps
    it, and the sweep completes it once Slack answers again."""
    slack.errors["functions.completeError"] = "internal_error"
    execution_id = send_run(driver, {"requester": "UREQ"})  # no email: nothing to ask
    slack.wait_for("functions.completeError")
    bot.deps.wait_idle()
    assert bot.store.get_meta("step_completions")  # kept, not dropped
    del slack.errors["functions.completeError"]
    bot.deps.courier.sweep()
    assert completions(slack, execution_id)[-1].method == "functions.completeError"
    assert bot.store.get_meta("step_completions") == []


def test_a_busy_store_asks_slack_to_deliver_the_run_again(driver, bot, monkeypatch):
    """The store missing the ack's budget: 503, so Slack retries the run (never a lost run)."""
    from bot.store.budget import StoreBusy

    def busy(*args, **kwargs):
        raise StoreBusy("budget spent")

    monkeypatch.setattr(bot.store, "open_addresses", busy)
    body, _ = run_event(ADA)
    assert driver.send(body, content_type="application/json").status == 503


def test_a_run_is_never_its_requesters_approval(tmp_path, slack, awork):
    """INVITE_SELF_APPROVE and an approver as `requester`: the run's request still waits for
    an approver's click (a workflow's builder cannot approve in someone's name)."""
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, slack.url, INVITE_SELF_APPROVE="true")
    bot = build_bot(settings, awork.handler)
    try:
        assert bot.deps.catalog.refresh()
        driver = SlackDriver(bot.app, SIGNING_SECRET)
        execution_id = send_run(driver, {**ADA, "requester": APPROVER})
        bot.deps.wait_idle()
        assert bot.store.get(step_request_id(execution_id)).status is Status.PENDING
    finally:
        bot.shutdown(timeout=5)
