"""Hostile and broken input: a clear answer or a 4xx, never a 500, and the bot keeps serving."""

from __future__ import annotations

import io
import json
import string
import time
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.awork_models import Role, Team
from bot.domain.details import parse_details
from bot.domain.inline import parse_inline
from bot.runtime.web import wsgi_app
from bot.ui import forms, mrkdwn
from tests.conftest import SIGNING_SECRET, approval_request_id
from tests.fakes.awork import FakeAwork
from tests.slack_requests import SlackDriver, fixture

QUICK = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def call_wsgi(
    app, body: bytes, signed: bool = True, content_type: str = "application/x-www-form-urlencoded"
):
    """Send raw bytes through the production WSGI stack (waitress calls this)."""
    ts = str(int(time.time()))
    signature = (
        SlackDriver(None, SIGNING_SECRET).verifier.generate_signature(
            timestamp=ts, body=body.decode("utf-8", "replace")
        )
        if signed
        else "v0=0"
    )
    environ = {
        "REQUEST_METHOD": "POST",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": "/slack/events",
        "QUERY_STRING": "",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_SLACK_REQUEST_TIMESTAMP": ts,
        "HTTP_X_SLACK_SIGNATURE": signature,
        "wsgi.input": io.BytesIO(body),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "3000",
        "wsgi.url_scheme": "http",
    }
    status = []
    chunks = app(environ, lambda s, headers, exc_info=None: status.append(s))
    return int(status[0].split()[0]), b"".join(chunks)


MALFORMED = [
    b"payload=notjson",
    b"payload=%5B1%2C2%5D",
    b"payload=%7B%7D",
    b'payload={"type":"block_actions"}',
    b'payload={"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"approve_invite"}]}',
    b'payload={"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"no_such_action","value":"x"}]}',
    b'payload={"type":"view_submission","user":{"id":"U1"},"view":{"callback_id":"invite_form"}}',
    b'payload={"type":"view_submission","user":{"id":"U1"},"view":{"callback_id":"invite_form","state":{"values":{"email":"str"}}}}',
    b'payload={"type":"block_suggestion","user":{"id":"U1"},"action_id":"roleId"}',
    b"garbage&&&===",
    b"\xff\xfe\x00",
    b"",
]


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_bodies_never_get_a_500(bot, body):
    """Broken or unexpected bodies are answered with a 2xx/4xx; the next request still works."""
    app = wsgi_app(bot)
    status, _ = call_wsgi(app, body)
    assert status < 500
    assert call_wsgi(app, body, signed=False)[0] in (400, 401)
    ok, _ = call_wsgi(app, SlackDriver(None, SIGNING_SECRET).command_body().encode())
    assert ok == 200


def test_json_content_type_garbage_is_a_400(bot):
    """A JSON content type with a broken body is a bad request."""
    assert call_wsgi(wsgi_app(bot), b"{not json", content_type="application/json")[0] == 400


def test_enormous_and_control_character_text_gets_field_errors(driver, slack, bot):
    """A megabyte of name and control characters: field errors, nothing stored."""
    response = driver.submit_form(
        {"email": "a@example.com\x00", "firstName": "A" * 1_000_000, "note": "\x07\x1b[31m" * 10}
    )
    body = json.loads(response.body)
    assert response.status == 200 and body["response_action"] == "errors"
    assert "firstName" in body["errors"]
    assert list(bot.store.requests()) == []


def test_control_characters_are_dropped_and_non_ascii_kept(driver, slack, bot):
    """Names lose control and bidi-override characters, keep accents and scripts."""
    driver.submit_form(
        {
            "email": "zoe@example.com",
            "firstName": "Zoë\u202e\x00",
            "lastName": "Ünal 山田",
            "note": "ok\x1b",
        }
    )
    [request] = list(bot.store.requests())
    assert (
        request.details.first_name == "Zoë"
        and request.details.last_name == "Ünal 山田"
        and request.details.note == "ok"
    )


INJECTIONS = [
    "<!channel>",
    "<!here|here>",
    "<@U0ADMIN>",
    "<https://evil.example|click me>",
    "*bold* _it_ `code`",
    "&lt;!channel&gt;",
    "<#C123>",
]


@pytest.mark.parametrize("field", ["firstName", "lastName", "title", "position", "note"])
def test_link_and_mention_injection_in_every_free_text_field(driver, slack, field):
    """No free-text field can make the approval message mention, broadcast or link."""
    for number, injection in enumerate(INJECTIONS):
        driver.submit_form({"email": f"x{number}@example.com", field: injection})
    posts = slack.wait_for(
        "chat.postMessage", len(INJECTIONS), where=lambda c: c.args["channel"] == "CADMIN"
    )
    text = json.dumps([post.args["blocks"] for post in posts])
    for dangerous in ("<!channel>", "<!here", "<@U0ADMIN>", "<https://evil", "<#C123>"):
        assert dangerous not in text
    assert "&lt;!channel&gt;" in text


def test_deny_reason_is_bounded(driver, slack, bot):
    """A deny reason of 10k characters (with a broadcast in it) is refused on the field."""
    driver.submit_form({"email": "x@example.com"})
    request_id = approval_request_id(slack)
    body = json.loads(
        driver.submit_deny(request_id, "<!channel> " + "x" * 10_000, "UAPPROVER1").body
    )
    assert body["response_action"] == "errors" and "reason" in body["errors"]


def test_unknown_callback_and_action_are_not_errors(driver):
    """Views and actions the bot does not know get Slack's 404, not a 500."""
    view = {**forms.invite_form("C1", advanced=False), "callback_id": "someone_else"}
    assert driver.view_submission(view, {"email": "a@example.com"}, "U1").status == 404
    assert driver.click("launch_missiles", "inv-x", "U1").status == 404


def test_missing_request_id_is_answered_privately(driver, slack):
    """An Approve click naming no known request says so privately."""
    assert driver.click("approve_invite", "inv-doesnotexist", "UAPPROVER1").status == 200
    assert "can't find" in slack.wait_for("chat.postEphemeral")[0].args["text"]


# --- properties -----------------------------------------------------------------------------


@given(st.text())
def test_escape_leaves_no_mrkdwn_controls(text):
    """Whatever the text, escaped output has no < or >, and unescaping gives the text back."""
    escaped = mrkdwn.escape(text)
    assert "<" not in escaped and ">" not in escaped
    assert escaped.replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&") == text


ROLES = [Role.model_validate(r) for r in FakeAwork().roles]
TEAMS = [Team.model_validate(t) for t in FakeAwork().teams]


@given(st.text())
def test_inline_argument_parser_never_fails(text):
    """`/invite <anything>` never raises: it finds people (each with an @) or says what is wrong."""
    parsed = parse_inline(text, ROLES, TEAMS)
    assert parsed.errors or parsed.people
    assert all("@" in person.email for person in parsed.people)


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30))
json_values = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
block_ids = st.sampled_from(
    [
        *forms.TEXT_FIELDS,
        "gender",
        "roleId",
        "teamIds",
        "skipSendingEmail",
        "note",
        "workspaceId",
        "planId",
        "invitationFlow",
        "bookedSeats",
        "connectInviteCode",
        "zzz",
    ]
)
element_types = st.sampled_from(
    [
        "plain_text_input",
        "number_input",
        "static_select",
        "external_select",
        "radio_buttons",
        "multi_external_select",
        "checkboxes",
        "datepicker",
        None,
    ]
)


@st.composite
def form_states(draw):
    state = {}
    for block_id in draw(st.lists(block_ids, max_size=8, unique=True)):
        element = {"type": draw(element_types)}
        for key in draw(
            st.lists(st.sampled_from(["value", "selected_option", "selected_options"]), max_size=2)
        ):
            element[key] = draw(json_values)
        action_id = block_id if draw(st.booleans()) else draw(st.text(max_size=5))
        state[block_id] = {action_id: element} if draw(st.booleans()) else draw(json_values)
    return state


@QUICK
@given(form_states())
def test_form_state_parser_never_fails(state):
    """Any view state, however odd, becomes field values and then details or field errors."""
    try:
        fields = forms.form_fields(state)
    except (AttributeError, TypeError):
        pytest.fail("form_fields raised on odd input")
    details, errors = parse_details(fields)
    assert (details is None) != (errors == {})
    assert all(isinstance(message, str) and message for message in errors.values())


@QUICK
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "email",
                "firstName",
                "lastName",
                "title",
                "position",
                "note",
                "bookedSeats",
                "gender",
                "teamIds",
            ]
        ),
        st.text(alphabet=string.printable + "\x00\u202eÜ山", max_size=300),
    )
)
def test_parse_details_answers_every_input(fields):
    """parse_details never raises; what it accepts has no control characters left."""
    details, _ = parse_details(fields)
    if details is not None:
        for value in (details.first_name, details.last_name, details.title, details.position):
            assert value is None or not any(c in value for c in "\x00\u202e")


def test_block_suggestion_with_a_huge_query_is_answered(driver):
    """A 10k-character search answers with no options rather than an error."""
    payload = fixture("block_suggestion_external_select_bolt.json")["payload"]
    payload.update(action_id="roleId", block_id="roleId", value="x" * 10_000)
    response = driver.send(urlencode({"payload": json.dumps(payload)}))
    assert response.status == 200 and json.loads(response.body) == {"options": []}
