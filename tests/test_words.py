"""Issue 12 parts 4, 5, 10 and 11: texts name the command as installed, typos are recognised,
plans are chosen and fields named as the form labels them, and "Retry failed" runs once."""

from __future__ import annotations

import json
import time

from bot.awork.errors import AworkError
from bot.domain.batches import BatchStatus
from bot.domain.details import InviteDetails, field_label, parse_details
from bot.domain.inline import parse_inline
from bot.domain.people import Person
from bot.domain.records import InviteRequest, Status
from bot.services.decisions import Refusal
from bot.services.failures import describe_failure
from bot.ui import bulk_blocks, bulk_notices, forms, notices
from handlers.views import _on_blocks
from tests.conftest import APPROVERS, approval_request_id
from tests.slack_requests import GENERAL
from tests.test_bulk_domain import people, world  # noqa: F401  (the domain fixture)
from tests.test_bulk_scenarios import approval_posts, ask_inline, posted_emails, wait_batch
from tests.test_lists import app_home_opened

APPROVER = APPROVERS[0]
FALLBACK = "/awork-invite"


def answer(driver, text: str, user: str = "UREQ", command: str = "/invite") -> str:
    """What the command answers privately, as one string (text and blocks)."""
    response = driver.send(driver.command_body(text, user, GENERAL, command))
    assert response.status == 200
    if not response.body.startswith("{"):
        return response.body
    body = json.loads(response.body)
    return body.get("text", "") + json.dumps(body.get("blocks", []))


# --- part 4: the command's name ----------------------------------------------------------------


def test_help_and_usage_name_the_command_as_installed(driver):
    """Installed as /awork-invite: help, inline usage and status usage say /awork-invite."""
    for text in ("help", "a@x.com role:nosuchrole", "status", "status inv-nothing"):
        said = answer(driver, text, command=FALLBACK)
        assert f"`{FALLBACK} " in said and "/invite" not in said, (text, said)
    assert "`/invite help`" in answer(driver, "help")  # and the documented name by default


def test_list_footers_name_the_command_as_installed(driver, bot):
    """`More: /awork-invite pending 2`, `… mine 2` and "None yet" follow the installed name."""
    for i in range(45):
        bot.deps.service.submit(InviteDetails(email=f"p{i}@example.com"), "UREQ", GENERAL)
    pending = answer(driver, "pending", APPROVER, FALLBACK)
    assert f"More: `{FALLBACK} pending 2`" in pending and "/invite" not in pending
    mine = answer(driver, "mine", "UREQ", FALLBACK)
    assert f"More: `{FALLBACK} mine 2`" in mine and "/invite" not in mine
    assert f"None yet. `{FALLBACK}` asks for one." in answer(driver, "mine", "UNEW", FALLBACK)


def test_app_home_names_the_command_last_seen(driver, slack, bot):
    """The App Home says /invite until a command came as /awork-invite, then /awork-invite."""

    def home() -> str:
        seen = len(slack.of("views.publish"))
        assert app_home_opened(driver, "UNEW").status == 200
        return json.dumps(slack.wait_for("views.publish", seen + 1)[-1].args["view"])

    assert "`/invite` asks for one" in home()
    answer(driver, "mine", "UOTHER", FALLBACK)
    deadline = time.monotonic() + 5
    while bot.store.get_meta("command_name") != FALLBACK and time.monotonic() < deadline:
        time.sleep(0.02)
    view = home()
    assert f"`{FALLBACK}` asks for one" in view and "/invite" not in view


def test_texts_sent_later_and_name_errors_follow_the_command():
    """The expiry notice and an unknown-role answer name the command they are given."""
    expired = InviteRequest(
        requester_id="UREQ", details=InviteDetails(email="a@x.com"), status=Status.EXPIRED
    )
    notice = notices.outcome_notice(expired, FALLBACK)
    assert f"`{FALLBACK}`" in notice and "/invite" not in notice
    parsed = parse_inline("a@x.com role:pm", [], [], command=FALLBACK)
    assert parsed.errors == [f"awork has no roles I know of yet; use the form (`{FALLBACK}`)."]


# --- part 5: typos -----------------------------------------------------------------------------


def test_a_mistyped_command_is_recognised(driver, slack):
    """`pendng` and `--pending` answer "did you mean", not "is not an email address"."""
    for typed, meant in (("pendng", "pending"), ("Mnie", "mine"), ("--pending", "pending")):
        said = answer(driver, typed, command=FALLBACK)
        assert f"Did you mean `{FALLBACK} {meant}`?" in said, said
        assert "not an email address" not in said
    assert slack.of("chat.postMessage") == []  # nothing was asked for


def test_help_flags_answer_with_help(driver):
    """`--help`, `-h`, `?` (and autocorrect's `—help`) answer with the help text."""
    for typed in ("--help", "-h", "?", "\u2014help", "HELP"):
        assert "*Lists:*" in answer(driver, typed), typed


def test_status_without_an_id_gives_its_usage(driver):
    """`/invite status` alone says how to use it, not that a request cannot be found."""
    said = answer(driver, "status")
    assert "Usage: `/invite status <request id>`" in said and "can't find" not in said


def test_addresses_still_make_requests(driver, slack, bot):
    """A word with @ is an address (even `pending@x.com`), and an inline list still works."""
    request_id = ask_inline(driver, slack, "pending@example.com")
    assert bot.store.get(request_id).details.email == "pending@example.com"
    batch_id = ask_inline(driver, slack, "a@x.com b@x.com --no-email")
    assert len(bot.store.get_batch(batch_id).entries) == 2


# --- part 10: plans chosen, fields named as labelled ---------------------------------------------


def test_the_plan_is_a_select_of_awork_plans_and_flows_are_words():
    """planId is a static_select of free/basic/business/enterprise; flows show words, and only
    a new workspace's flows (this workspace is the Workspace field's choice)."""
    form = forms.invite_form(None, advanced=True)
    by_id = {b.get("block_id"): b for b in form["blocks"]}
    plan = by_id["planId"]["element"]
    assert plan["type"] == "static_select" and plan["action_id"] == "planId"
    assert [o["value"] for o in plan["options"]] == ["free", "basic", "business", "enterprise"]
    flows = by_id["invitationFlow"]["element"]["options"]
    assert [o["value"] for o in flows] == ["new_user_new_workspace", "existing_user_new_workspace"]
    shown = " ".join(o["text"]["text"] for o in flows) + by_id["invitationFlow"]["hint"]["text"]
    assert "_" not in shown and "'invite'" not in shown


def test_every_input_is_labelled_as_errors_name_it():
    """An error names a field by the label the form shows for it."""
    form = forms.invite_form(None, advanced=True)
    for block in form["blocks"]:
        if block["type"] == "input":
            assert field_label(block["block_id"]) == block["label"]["text"]


def test_a_chosen_plan_is_read_and_shown_in_words(driver, slack, bot):
    """The plan select's value reaches the request; the approval message says "plan Business"
    and the flow as the form names it, never `new_user_new_workspace`."""
    fields = {"email": "boss@example.com", "workspaceId": "new", "planId": "business"}
    seen = len(approval_posts(slack))
    response = driver.submit_form(fields, user=APPROVER, advanced=True)
    assert response.status == 200 and response.body == ""
    request = bot.store.get(approval_request_id(slack, seen))
    assert request.details.plan_id == "business" and request.details.new_workspace
    message = json.dumps(approval_posts(slack)[-1].args["blocks"])
    assert "plan Business" in message and "New user, new workspace" in message
    assert "new_user_new_workspace" not in message


def test_field_errors_never_show_internal_names(driver, slack, bot):
    """Inline, in a list and under the email field, an error names "Last name", "Plan"."""
    long = "x" * 101
    said = answer(driver, f"ada@example.com, Ada, {long}")
    assert "Last name: Too long" in said and "lastName" not in said
    prepared = bot.deps.batches.prepare([Person("ada@example.com", "Ada", long, line=2)])
    assert prepared.errors == ["Line 2: Last name: Too long (at most 100 characters)."]
    plain_form = forms.invite_form(None, advanced=False)
    assert _on_blocks({"planId": "Not here."}, plain_form) == {"email": "Plan: Not here."}
    _, errors = parse_details({"email": "a@x.com", "invitationFlow": "existing_user_new_workspace"})
    assert "_" not in errors["invitationFlow"] and "Existing awork user" in errors["invitationFlow"]


def test_awork_validation_errors_name_the_fields_as_labelled():
    """awork's `PlanId` in a validation error is said as the form's "Plan"."""
    error = AworkError(
        "validation-failed",
        "invalid",
        status=400,
        validation_errors=[{"property": "PlanId", "message": "Unknown plan."}],
    )
    message = describe_failure(error, "a@x.com").message
    assert "Plan: Unknown plan." in message and "PlanId" not in message


def test_a_form_error_in_the_shell_names_the_field_as_labelled(tmp_path):
    """The shell's field error reads "(Last name)", not "(lastName)"; a plan is chosen by name."""
    from tests.test_shell import run

    output = run(
        f"as @olga\n/invite\n1 boss@example.com\n3 {'x' * 101}\n11 new\n12 business\nsubmit\n"
        "3 Boss\nsubmit\nquit\n",
        tmp_path,
        "shell",
    )
    assert "(Last name): Too long" in output and "(lastName)" not in output
    assert "New workspace: flow “New user, new workspace”, plan Business" in output


# --- part 11: "Retry failed" runs once -----------------------------------------------------------


def test_a_retry_run_counts_only_the_people_it_retries(world):  # noqa: F811
    """Six people, three fail: the retry's progress goes to 3 ("3 of 3 retried"), not 6."""
    fake, store, _, batches = world
    batch = batches.submit(batches.prepare(people(6)), "UREQ", None)
    fake.seats_free = 3
    batches.approve(batch.id, "UAPP1")
    batches.run(batch.id, store.get_batch(batch.id).claim_id)
    fake.seats_free = 10
    decision = batches.retry_failed(batch.id, "UAPP2", after_run=1)
    assert decision.ok and decision.request.retrying == 3
    counts: list[int] = []
    done = batches.run(batch.id, decision.request.claim_id, on_progress=counts.append)
    assert sorted(counts) == [1, 2, 3]
    assert batches.summary(done).retried == 3
    line = bulk_blocks.progress_line(decision.request, 2)
    assert "*2 of 3* retried" in line and "of 6" not in line


def test_a_retry_button_runs_once(world):  # noqa: F811
    """A button from a run that was retried already is refused as ALREADY_RETRIED."""
    fake, store, _, batches = world
    batch = batches.submit(batches.prepare(people(4)), "UREQ", None)
    fake.seats_free = 2
    batches.approve(batch.id, "UAPP1")
    batches.run(batch.id, store.get_batch(batch.id).claim_id)
    first = batches.retry_failed(batch.id, "UAPP1", after_run=1)
    meanwhile = batches.retry_failed(batch.id, "UAPP2", after_run=1)  # while it runs
    assert meanwhile.refusal is Refusal.ALREADY_RETRIED
    assert "retry 1 is running" in bulk_notices.batch_refusal(meanwhile.request, "already_retried")
    batches.run(batch.id, first.request.claim_id)
    again = batches.retry_failed(batch.id, "UAPP2", after_run=1)  # after it ran: failures left
    assert batches.summary(again.request).failed
    assert again.refusal is Refusal.ALREADY_RETRIED and store.get_batch(batch.id).run == 2
    assert "Nothing changed" in bulk_notices.batch_refusal(again.request, again.refusal)
    assert batches.retry_failed(batch.id, "UREQ", after_run=1).refusal is Refusal.NOT_APPROVER


def retry_buttons(blocks_: list[dict]) -> list[dict]:
    return [
        element
        for block in blocks_
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == bulk_blocks.RETRY_FAILED
    ]


def test_retry_failed_end_to_end_runs_once_and_offers_the_rest(driver, slack, bot, awork):
    """After a retry, the old button is refused privately and starts nothing; the message
    offers "Retry 1 still failing" (a button of its own, that also runs once); when nobody
    fails any more, no button is left."""
    awork.seats_free = 2
    batch_id = ask_inline(driver, slack, "a@x.com b@x.com c@x.com d@x.com")
    driver.click("approve_invite", batch_id, APPROVER)
    wait_batch(bot, batch_id, BatchStatus.DONE)

    def message() -> list[dict]:
        batch = bot.store.get_batch(batch_id)
        return bulk_blocks.batch_approval_message(batch, bot.deps.batches.summary(batch))[1]

    (first,) = retry_buttons(message())
    assert first["text"]["text"] == "Retry failed (2)" and first["value"] == f"{batch_id}:run-1"
    awork.seats_free = 1
    driver.click("retry_failed", first["value"], APPROVER)
    deadline = time.monotonic() + 5
    while bot.store.get_batch(batch_id).run < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    wait_batch(bot, batch_id, BatchStatus.DONE)
    slack.wait_for("chat.update", where=lambda c: "of 2* retried" in json.dumps(c.args["blocks"]))
    (second,) = retry_buttons(message())
    assert second["text"]["text"] == "Retry 1 still failing"
    assert second["value"] == f"{batch_id}:run-2"
    posts = len(posted_emails(awork))
    driver.click("retry_failed", first["value"], APPROVERS[1])  # the old button, again
    slack.wait_for(
        "chat.postEphemeral",
        where=lambda c: "Nothing changed" in c.args.get("text", "") and batch_id in c.args["text"],
    )
    assert bot.deps.wait_idle()  # the old button's click has been dealt with in full
    assert bot.store.get_batch(batch_id).run == 2 and len(posted_emails(awork)) == posts
    awork.seats_free = 5
    driver.click("retry_failed", second["value"], APPROVER)
    deadline = time.monotonic() + 5
    while bot.store.get_batch(batch_id).run < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    wait_batch(bot, batch_id, BatchStatus.DONE)
    assert retry_buttons(message()) == []
    assert len(posted_emails(awork)) == posts + 1
    shown = slack.of("chat.update")[-1].args["blocks"]
    assert retry_buttons(shown) == [] and "4 invited" in json.dumps(shown)


def test_the_form_offers_exactly_the_plans_the_sandbox_takes():
    """The plan select and the awork sandbox agree on awork's plans (kept apart on purpose:
    the sandbox stands in for awork, not for the bot)."""
    from bot.awork import sandbox
    from bot.domain import details as models

    assert set(models.PLANS) == set(sandbox.PLANS)
