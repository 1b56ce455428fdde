"""The shortcuts through the real Bolt app: "Invite to awork" opens the invite form, "Invite the
author to awork" opens it filled in from users.info, or answers privately instead."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator

import pytest
import yaml

from bot.cli.manifest import bot_scopes, render, shipped
from bot.domain.records import Status
from bot.ui import forms
from tests.conftest import APPROVERS, SIGNING_SECRET, build_bot, make_settings
from tests.slack_requests import GENERAL, SlackDriver, fixture
from tests.test_shell import run

AUTHOR = "UAUTHOR01"


def global_shortcut(user: str = "UREQ") -> dict:
    """A global shortcut as Slack sends it (the captured payload, our callback id)."""
    payload = copy.deepcopy(fixture("global_shortcut_bolt_tests.json")["payload"])
    payload["user"].update(id=user, username=user.lower())
    payload.update(callback_id="invite_shortcut", trigger_id=f"trig.{time.monotonic_ns()}")
    return payload


def message_shortcut(user: str = "UREQ", author: str | None = AUTHOR, **message) -> dict:
    """A message shortcut: the global shape with type message_action, the message and its
    channel, as Slack documents it."""
    payload = global_shortcut(user)
    ts = "1715342584.374249"
    payload.update(
        type="message_action",
        callback_id="invite_author",
        message_ts=ts,
        channel={"id": GENERAL, "name": "general"},
        response_url="https://hooks.slack.com/app/T111/1/abc",
        message={"type": "message", "ts": ts, "text": "Hello from a new colleague", **message},
    )
    if author is not None:
        payload["message"]["user"] = author
    return payload


def opened(slack, count: int = 1) -> list[dict]:
    return [call.args["view"] for call in slack.wait_for("views.open", count)]


def told(slack, bot, user: str = "UREQ") -> str:
    """The one ephemeral `user` got, once nothing else is left to do and no form opened."""
    [answer] = slack.wait_for("chat.postEphemeral", where=lambda c: c.args.get("user") == user)
    assert bot.deps.wait_idle()
    assert slack.of("views.open") == []
    return answer.args["text"]


def initial_values(view: dict) -> dict[str, str]:
    return {
        block["block_id"]: block["element"]["initial_value"]
        for block in view["blocks"]
        if block.get("type") == "input" and "initial_value" in block["element"]
    }


def test_global_shortcut_opens_the_invite_form(driver, slack, bot):
    """Acked empty at once; the same modal as `/invite`, empty, with no origin channel."""
    response = driver.interactive(global_shortcut())
    assert response.status == 200 and response.body == ""
    [view] = opened(slack)
    assert view["callback_id"] == forms.INVITE_FORM
    assert json.loads(view["private_metadata"]) == {"channel": None}
    assert initial_values(view) == {}
    assert not any(b.get("type") == "header" for b in view["blocks"])  # not an approver's


def test_an_approver_gets_the_advanced_part(driver, slack):
    """As with `/invite`, an approver's form has the advanced (new workspace) part."""
    driver.interactive(global_shortcut(APPROVERS[0]))
    [view] = opened(slack)
    assert any(b.get("block_id") == "workspaceId" for b in view["blocks"])


def test_message_shortcut_fills_in_the_author_and_the_form_asks_as_usual(driver, slack, bot):
    """Email and names from users.info (full name split), the message's channel as origin;
    sending it stores a request through the form's own listener."""
    profile = {"email": "ada@lovelace.example", "real_name": "Ada King Lovelace"}
    slack.people[AUTHOR] = {"profile": profile}
    assert driver.interactive(message_shortcut()).body == ""
    [view] = opened(slack)
    # The clicker's locale is looked up too (their language); the author's profile fills the form.
    assert AUTHOR in [c.args["user"] for c in slack.of("users.info")]
    assert initial_values(view) == {
        "email": "ada@lovelace.example",
        "firstName": "Ada",
        "lastName": "King Lovelace",
    }
    assert json.loads(view["private_metadata"]) == {"channel": GENERAL}
    fields = initial_values(view)
    assert driver.view_submission(view, fields, "UREQ").body == ""
    [request] = list(bot.store.requests())
    assert request.details.email == "ada@lovelace.example"
    assert (request.details.first_name, request.details.last_name) == ("Ada", "King Lovelace")
    assert request.origin_channel == GENERAL and request.status is Status.PENDING


def test_profile_first_and_last_names_come_before_the_full_name(driver, slack):
    """A profile's first_name and last_name are taken as they are."""
    slack.people[AUTHOR] = {
        "profile": {
            "email": "jo@example.org",
            "first_name": "Jo Anne",
            "last_name": "Smith",
            "real_name": "Joey",
        }
    }
    driver.interactive(message_shortcut())
    [view] = opened(slack)
    assert initial_values(view) == {
        "email": "jo@example.org",
        "firstName": "Jo Anne",
        "lastName": "Smith",
    }


def test_a_prefilled_value_is_cut_to_what_its_field_takes():
    """Slack refuses a whole view whose initial_value is longer than the input's max_length."""
    view = forms.invite_form(None, advanced=False, initial={"firstName": "A" * 300, "title": ""})
    assert initial_values(view) == {"firstName": "A" * 100}


def test_an_author_already_in_awork_is_answered_privately(driver, slack, bot):
    """awork has the address: the form's duplicate words, in an ephemeral where they clicked."""
    slack.people[AUTHOR] = {"profile": {"email": "Owner@ncnstn.com", "real_name": "Olga"}}
    driver.interactive(message_shortcut())
    text = told(slack, bot)
    assert text.startswith(":information_source:")
    assert "already in the awork workspace; no invitation is needed" in text
    assert slack.of("chat.postEphemeral")[0].args["channel"] == GENERAL


def test_an_author_with_an_open_request_is_answered_privately_naming_it(driver, slack, bot):
    """Someone asked for the author already: the answer names that request, and no form."""
    driver.submit_form({"email": "kim@example.com"}, user="UOTHER")
    [request] = list(bot.store.requests())
    slack.people[AUTHOR] = {"profile": {"email": "kim@example.com", "real_name": "Kim"}}
    driver.interactive(message_shortcut())
    text = told(slack, bot)
    assert f"There is already an open request for this address (request {request.id}" in text


@pytest.mark.parametrize(
    ("message", "person", "words"),
    [
        ({"bot_id": "B0APP"}, {}, "An app posted that message, not a person"),
        ({}, {"is_bot": True, "profile": {"real_name": "Deploy bot"}}, "An app posted"),
        ({}, {"profile": {"real_name": "No Address"}}, "does not show me <@UAUTHOR01>'s email"),
    ],
)
def test_an_author_without_an_address_is_answered_privately(
    driver, slack, bot, message, person, words
):
    """An app's message, a bot user, or a profile without an email: said, no form."""
    slack.people[AUTHOR] = person
    driver.interactive(message_shortcut(**message))
    assert words in told(slack, bot)


def test_slack_refusing_users_info_is_said_privately(driver, slack, bot):
    """users.info fails: the clicker hears Slack's error and how to ask by address."""
    slack.refused[("users.info", AUTHOR)] = "user_not_found"
    driver.interactive(message_shortcut())
    text = told(slack, bot)
    assert "Slack did not tell me who wrote that message (user_not_found)" in text
    assert "`/invite`" in text


@pytest.fixture
def policy_bot(tmp_path, slack, awork) -> Iterator:
    path = tmp_path / "policy.toml"
    path.write_text('requesters = ["UREQ"]\n')
    bot = build_bot(make_settings(tmp_path, slack.url, INVITE_POLICY=str(path)), awork.handler)
    assert bot.deps.catalog.refresh()
    yield bot
    bot.shutdown(timeout=5)


def test_a_requester_the_policy_leaves_out_gets_no_form(policy_bot, slack):
    """Both shortcuts answer `/invite`'s refusal privately: in the channel, or by DM for the
    global one, which has none; UREQ still gets the form."""
    pdriver = SlackDriver(policy_bot.app, SIGNING_SECRET)
    slack.people[AUTHOR] = {"profile": {"email": "ada@lovelace.example"}}
    pdriver.interactive(message_shortcut(user="UOUT"))
    pdriver.interactive(global_shortcut(user="UOUT"))
    [ephemeral] = slack.wait_for("chat.postEphemeral")
    [dm] = slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "DUOUT")
    for text in (ephemeral.args["text"], dm.args["text"]):
        assert text.startswith(":no_entry:") and "<@UAPPROVER1>" in text
    assert ephemeral.args["channel"] == GENERAL
    assert policy_bot.deps.wait_idle()
    assert slack.of("views.open") == []
    assert [c.args["user"] for c in slack.of("users.info")] == ["UOUT"]  # only its locale
    pdriver.interactive(global_shortcut(user="UREQ"))
    assert opened(slack)[0]["callback_id"] == forms.INVITE_FORM


def test_the_manifest_declares_both_shortcuts_without_a_new_scope():
    """manifest.yml and `invite-bot manifest` declare the global and the message shortcut;
    the scopes they need (commands, users:read, users:read.email) are there already."""
    for text in (shipped(), render("https://bot.example.com")):
        shortcuts = yaml.safe_load(text)["features"]["shortcuts"]
        assert {(s["type"], s["callback_id"], s["name"]) for s in shortcuts} == {
            ("global", "invite_shortcut", "Invite to awork"),
            ("message", "invite_author", "Invite the author to awork"),
        }
        assert all(s["description"] for s in shortcuts)
    assert {"commands", "users:read", "users:read.email"} <= set(bot_scopes())


def test_the_shell_has_both_shortcuts(tmp_path):
    """`shortcut` opens the form; `shortcut on message N` fills it in with message N's author
    (`say` posts one as the current user), and a bot's message is answered privately."""
    output = run(
        """\
shortcut
cancel
as @grace.hopper
say Hello, I'm new here
as @ada
shortcut on message 1
show
cancel
/invite kim@example.com
shortcut on message 2
help
""",
        tmp_path,
        "shell",
    )
    forms_opened = output.count("── form for @ada: Invite to awork ──")
    assert forms_opened == 2
    assert "1. Email * (now: grace.hopper@example.com)" in output
    assert "2. First name (now: Grace)" in output and "3. Last name (now: Hopper)" in output
    assert "An app posted that message, not a person" in output
    assert "shortcut on message N" in output  # in `help`
