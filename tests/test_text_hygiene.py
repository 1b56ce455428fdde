"""Issue 11 items 4-6: invisible and control characters are dropped from what people type,
echoes of typed text and awork's names are escaped, and the audit log cannot be forged."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata

import pytest

from bot.domain.awork_models import Role, Team
from bot.domain.batches import BatchStatus, InviteBatch
from bot.domain.clock import utcnow
from bot.domain.details import InviteDetails, parse_details
from bot.domain.inline import parse_inline
from bot.domain.records import InviteRequest, Status
from bot.domain.text import clean_text, log_value
from bot.store.base import changed
from tests.conftest import APPROVERS
from tests.fakes.awork import ROLE_PM, TEAM_DESIGN
from tests.test_bulk_scenarios import ask_inline, wait_batch
from tests.test_lists import app_home_opened
from tests.test_scenarios import settle, submit, wait_settled, wait_status

APPROVER = APPROVERS[0]

# Every character the issue names, and some of each kind besides.
INVISIBLE = (
    ["\ufeff", "\u2060", "\u061c", "\u2028", "\u2029", "\u00ad", "\u180e"]
    + [chr(c) for c in range(0x202A, 0x202F)]  # LRE, RLE, PDF, LRO, RLO
    + [chr(c) for c in range(0x2066, 0x206A)]  # LRI, RLI, FSI, PDI
    + [chr(c) for c in range(0x200B, 0x2010)]  # zero-width space, ZWNJ, ZWJ, LRM, RLM
    + [chr(c) for c in range(0x00, 0x20) if chr(c) not in "\t\n\r"]  # NUL, ESC, ...
    + [chr(c) for c in range(0x7F, 0xA0)]  # DEL and the C1 controls
    + ["\U000e0041", "\ud800"]  # a tag character, a lone surrogate
)
RLO, NUL, ESC = "\u202e", "\x00", "\x1b"


def dirty(text: str) -> str:
    """`text` with every invisible character put in after its first letter."""
    return text[:1] + "".join(INVISIBLE) + text[1:]


def has_invisible(text: str) -> bool:
    return any(char in text for char in INVISIBLE)


# --- the cleaning function ------------------------------------------------------------------


@pytest.mark.parametrize("char", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_each_listed_character_is_removed(char):
    """Each listed invisible or control character is dropped, in one-line and multi-line text."""
    assert clean_text(f"Ad{char}a") == "Ada"
    assert clean_text(f"Ad{char}a\nline two", multiline=True) == "Ada\nline two"


def test_every_control_and_format_character_of_unicode_is_removed():
    """Every Cc, Cf, Cs, Zl and Zp code point of this Python's Unicode is covered by the class."""
    kept = "\t\n\r"
    missed = [
        f"U+{code:04X}"
        for code in range(0x110000)
        if unicodedata.category(chr(code)) in ("Cc", "Cf", "Cs", "Zl", "Zp")
        and chr(code) not in kept
        and clean_text(chr(code))
    ]
    assert missed == []


EMOJI_SEQUENCES = [
    "\U0001f469\u200d\U0001f4bb",  # woman technologist
    "\U0001f3f3\ufe0f\u200d\U0001f308",  # rainbow flag (presentation selector, then ZWJ)
    "\U0001f468\U0001f3ff\u200d\U0001f9b0",  # man, dark skin tone, red hair
    "\U0001f3c3\u200d\u2640\ufe0f",  # woman running
    "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",  # England
]


@pytest.mark.parametrize("emoji", EMOJI_SEQUENCES, ids=lambda e: f"U+{ord(e[0]):04X}")
def test_joiners_and_tags_inside_an_emoji_sequence_stay(emoji):
    """A ZWJ between two emoji, and a subdivision flag's tags, are kept: the emoji stays whole."""
    assert clean_text(f"Ada {emoji} Lovelace") == f"Ada {emoji} Lovelace"


@pytest.mark.parametrize(
    "text",
    [
        "A\u200dda",
        "\u200d\U0001f469",
        "\U0001f469\u200d",
        "\U0001f469\u200d\u200d\U0001f4bb",
        "\U0001f469\u200b\U0001f4bb",
        "A\U000e0067\U000e007f",
        "\U0001f3f4\U000e0067",
    ],
)
def test_joiners_and_tags_outside_an_emoji_sequence_go(text):
    """A ZWJ not between two emoji, a doubled one, or tags not completing a flag are removed."""
    cleaned = clean_text(text)
    assert "\u200d\u200d" not in cleaned and "\u200b" not in cleaned
    assert not any("\U000e0000" <= char <= "\U000e007f" for char in cleaned)
    assert cleaned.count("\u200d") == 0


def test_line_breaks_stay_in_multiline_text_and_become_spaces_in_one_line():
    """A note keeps its lines (CRLF becomes LF) and tabs; a name gets spaces instead."""
    assert clean_text("a\r\nb\rc\td", multiline=True) == "a\nb\nc\td"
    assert clean_text("Ada\nLovelace\tX\r\nY\r") == "Ada Lovelace X Y "


def test_ordinary_text_is_left_alone():
    """Accents, other scripts, emoji and no-break spaces are not touched."""
    text = "Zoë Ångström · 李小龍 · محمد · 💻👍🏽 · a\u00a0b"
    assert clean_text(text) == text and clean_text(text, multiline=True) == text


# --- every field, as stored -----------------------------------------------------------------


FREE_TEXT = {
    "firstName": "Ada",
    "lastName": "Lovelace",
    "title": "Dr.",
    "position": "Analyst",
    "note": "Needs access\nfor the engine",
    "planId": "free",
    "connectInviteCode": "abc",
}


@pytest.mark.parametrize("field", sorted(FREE_TEXT))
def test_every_free_text_field_is_stored_clean(field):
    """Names, title, position, the note (and the approvers' advanced texts) lose them all."""
    fields = {"email": "ada@example.com", field: dirty(FREE_TEXT[field])}
    if field == "planId":
        fields["newWorkspace"] = True
    details, errors = parse_details(fields)
    assert errors == {}
    stored = details.model_dump(by_alias=True)[field]
    assert stored == FREE_TEXT[field] and not has_invisible(stored)


def test_an_address_pasted_with_a_zero_width_space_is_cleaned():
    """Invisible characters around or in an address are dropped before it is checked."""
    details, errors = parse_details({"email": "\ufeffada@exam\u200bple.com\u202e"})
    assert errors == {} and details.email == "ada@example.com"


def test_a_field_of_only_invisible_characters_is_empty():
    """A name of nothing but zero-width spaces counts as not given, not as an odd error."""
    details, errors = parse_details({"email": "ada@example.com", "firstName": "\u200b\u2060 "})
    assert errors == {} and details.first_name is None


@pytest.mark.parametrize("kind", [InviteRequest, InviteBatch])
def test_deny_reason_is_stored_clean_whoever_stores_it(kind):
    """A deny reason changed in the store (any path: modal, shell, code) is cleaned; lines kept."""
    details = InviteDetails(email="ada@example.com")
    record = (
        InviteRequest(requester_id="U1", details=details)
        if kind is InviteRequest
        else InviteBatch(requester_id="U1", entries=[details])
    )
    denied = changed(record, utcnow(), {"deny_reason": f"No{RLO} {NUL}budget{ESC}[2J\nsorry"})
    assert denied.deny_reason == "No budget[2J\nsorry"
    again = kind.model_validate({**record.model_dump(), "deny_reason": dirty("No budget")})
    assert again.deny_reason == "No budget"  # a reason stored before the fix is read clean


def test_inline_arguments_are_cleaned():
    """`/invite` text loses them before it is read: addresses, role and team names resolve."""
    roles = [Role(id=ROLE_PM, name="Project Manager")]
    teams = [Team(id=TEAM_DESIGN, name="Design")]
    parsed = parse_inline(
        f'{dirty("ada@example.com")} role:"Pro{RLO}ject Manager" team:De\u200bsign', roles, teams
    )
    assert parsed.errors == []
    assert [p.email for p in parsed.people] == ["ada@example.com"]
    assert parsed.role.id == ROLE_PM and [t.id for t in parsed.teams] == [TEAM_DESIGN]


# --- end to end -----------------------------------------------------------------------------


def slack_text(slack) -> str:
    """Everything the bot sent to Slack, as JSON (escapes such as \\u202e spelled out)."""
    return json.dumps([call.args for call in slack.calls], ensure_ascii=True)


def test_form_text_reaches_the_approvers_clean(driver, slack, bot):
    """Names, title, position and note typed with hidden characters are shown and stored clean."""
    fields = {"email": "ada@example.com", **{k: dirty(v) for k, v in FREE_TEXT.items()}}
    for advanced in ("planId", "connectInviteCode"):
        fields.pop(advanced)
    request_id = submit(driver, slack, fields)
    stored = bot.store.get(request_id).details
    assert (stored.first_name, stored.title, stored.note) == ("Ada", "Dr.", FREE_TEXT["note"])
    sent = slack_text(slack)
    assert "Ada" in sent and "Analyst" in sent
    for char in INVISIBLE:
        assert json.dumps(char, ensure_ascii=True)[1:-1] not in sent


def test_deny_reason_with_rlo_nul_esc_reaches_nobody(driver, slack, bot):
    """The approval message, the requester's notice, the store and the audit log get it clean."""
    request_id = submit(driver, slack)
    reason = f"No budget{RLO} this{NUL} quarter{ESC}[2J{ESC}]0;pwned{chr(7)}"
    response = driver.submit_deny(request_id, reason, APPROVER)
    assert response.status == 200 and response.body == ""
    wait_settled(slack, request_id, "Denied by")
    told = slack.wait_for("chat.postMessage", where=lambda c: "denied" in c.args["text"])[0]
    clean = "No budget this quarter[2J]0;pwned"
    assert clean in told.args["text"]
    assert clean in json.dumps(slack.of("chat.update")[-1].args["blocks"])
    sent = slack_text(slack)
    assert "\\u202e" not in sent and "\\u0000" not in sent and "\\u001b" not in sent
    assert "\\u0007" not in sent
    assert bot.store.get(request_id).deny_reason == clean
    audited = next(e for e in bot.store.audit() if e.event == "denied")
    assert audited.detail["reason"] == clean


def test_batch_deny_reason_is_cleaned_too(driver, slack, bot):
    """A batch's deny reason goes the same way: clean on the message and to the requester."""
    batch_id = ask_inline(driver, slack, "a@x.com b@x.com")
    response = driver.submit_deny(batch_id, f"Use{RLO} the{NUL} agency{ESC}[31m", APPROVER)
    assert response.body == ""
    wait_batch(bot, batch_id, BatchStatus.DENIED)
    told = slack.wait_for(
        "chat.postMessage", where=lambda c: "denied your request" in c.args["text"]
    )[0]
    assert "Use the agency[31m" in told.args["text"]
    sent = slack_text(slack)
    assert "\\u202e" not in sent and "\\u0000" not in sent and "\\u001b" not in sent


def test_a_reason_of_invisible_characters_only_is_asked_for_again(driver, slack, bot):
    """A reason that is nothing once cleaned is a field error; the request stays pending."""
    request_id = submit(driver, slack)
    body = json.loads(driver.submit_deny(request_id, f"{RLO}\u200b{NUL} ", APPROVER).body)
    assert body["errors"] == {"reason": "Please give a reason."}
    assert bot.store.get(request_id).status is Status.PENDING


# --- echoes and awork's names are escaped ------------------------------------------------------


def test_command_echo_of_a_mention_is_escaped(driver):
    """`/invite <!channel>` is answered "“&lt;!channel&gt;” is not an email address"."""
    text = json.loads(driver.command("<!channel>").body)["text"]
    assert "“&lt;!channel&gt;” is not an email address" in text and "<!channel>" not in text


def test_unknown_role_and_team_echoes_are_escaped(driver, awork, bot):
    """Unknown `role:`/`team:` values and the choices listed with them are inert mrkdwn."""
    awork.roles[1]["name"] = "<!here> Admins & Co"
    awork.teams[0]["name"] = "<@U999> team"
    assert bot.deps.catalog.refresh()
    text = json.loads(driver.command('a@x.com role:"<@UEVE>" team:<!subteam^S1>&x').body)["text"]
    assert "There is no role “&lt;@UEVE&gt;”" in text
    assert "There is no team “&lt;!subteam^S1&gt;&amp;x”" in text
    assert "&lt;!here&gt; Admins &amp; Co" in text and "&lt;@U999&gt; team" in text
    assert "<!here>" not in text and "<@U" not in text and "<!subteam" not in text


def test_an_ambiguous_prefix_lists_escaped_names(driver, awork, bot):
    """Names matching a prefix are listed escaped."""
    awork.roles[1]["name"] = "<!here> one"
    awork.roles[2]["name"] = "<!here> two"
    assert bot.deps.catalog.refresh()
    text = json.loads(driver.command("a@x.com role:<!h").body)["text"]
    assert "matches more than one role: &lt;!here&gt; one, &lt;!here&gt; two" in text
    assert "<!here>" not in text


def test_a_bulk_line_error_echo_is_escaped(driver):
    """An inline list's bad line is quoted escaped."""
    text = json.loads(driver.command("a@x.com\n<!everyone>&<#C1|general>").body)["text"]
    assert "“&lt;!everyone&gt;&amp;&lt;#C1|general&gt;” is not an email address" in text
    assert "<!everyone>" not in text and "<#C1" not in text


HOSTILE_ROLE = "<!here> Admins & Co"
HOSTILE_TEAM = "<!channel> <@U1> & <https://evil.example|x>"


def assert_names_escaped(text: str) -> None:
    assert "&lt;!here&gt; Admins &amp; Co" in text
    assert "&lt;!channel&gt; &lt;@U1&gt; &amp; &lt;https://evil.example|x&gt;" in text
    assert "<!here>" not in text and "<!channel>" not in text and "<https://evil" not in text


def test_awork_role_and_team_names_are_escaped_wherever_shown(driver, slack, bot, awork):
    """Approval message, status card, invitee DM: awork's names are inert mrkdwn in each."""
    awork.roles[2]["name"] = HOSTILE_ROLE  # the role ADA asks for
    awork.teams[0]["name"] = HOSTILE_TEAM
    assert bot.deps.catalog.refresh()
    slack.members["ada@example.com"] = "UADA"
    request_id = submit(driver, slack)
    assert_names_escaped(json.dumps(slack.of("chat.postMessage")[0].args["blocks"]))
    card = json.loads(driver.command(f"status {request_id}").body)
    assert_names_escaped(json.dumps(card["blocks"]))
    driver.click("approve_invite", request_id, APPROVER)
    wait_status(bot, request_id, Status.INVITED)
    settle(bot, request_id)
    dm = slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "DUADA")[0]
    assert_names_escaped(json.dumps(dm.args["blocks"]))


def test_awork_names_are_escaped_on_a_batch(driver, slack, bot, awork):
    """A batch's approval message and status card show awork's names escaped."""
    awork.roles[2]["name"] = HOSTILE_ROLE
    awork.teams[0]["name"] = HOSTILE_TEAM
    assert bot.deps.catalog.refresh()
    batch_id = ask_inline(driver, slack, 'a@x.com b@x.com role:"<!here> admins" team:<!channel>')
    message = next(c for c in slack.of("chat.postMessage") if batch_id in json.dumps(c.args))
    assert_names_escaped(json.dumps(message.args["blocks"]))
    card = json.loads(driver.command(f"status {batch_id}").body)
    assert_names_escaped(json.dumps(card["blocks"]))


def test_a_batch_deny_reason_is_escaped_in_the_requesters_dm(driver, slack, bot):
    """A batch denied with `<!channel> & <@U123>` as the reason: the requester's DM shows it inert."""
    batch_id = ask_inline(driver, slack, "a@x.com b@x.com")
    driver.click("deny_invite", batch_id, APPROVER)
    view = slack.wait_for("views.open")[0].args["view"]
    assert driver.view_submission(view, {"reason": "<!channel> & <@U123>"}, APPROVER).body == ""
    wait_batch(bot, batch_id, BatchStatus.DENIED)
    [dm] = slack.wait_for(
        "chat.postMessage",
        where=lambda c: c.args["channel"] == "DUREQ" and "denied" in c.args.get("text", ""),
    )
    assert "&lt;!channel&gt; &amp; &lt;@U123&gt;" in dm.args["text"]
    assert "<!channel>" not in dm.args["text"] and "<@U123>" not in dm.args["text"]


@pytest.mark.parametrize("where", ["mine", "pending", "status", "home"])
def test_a_full_name_is_escaped_in_the_lists_and_the_app_home(driver, slack, bot, where):
    """A name of `<!here>` and `& <@U1>` is inert in `/invite mine`, `pending`, `status` and
    the App Home."""
    fields = {"email": "eve@example.com", "firstName": "<!here>", "lastName": "& <@U1>"}
    request_id = submit(driver, slack, fields)
    if where == "home":
        assert app_home_opened(driver, "UREQ").status == 200
        [home] = slack.wait_for("views.publish", where=lambda c: c.args["user_id"] == "UREQ")
        text = json.dumps(home.args["view"])
    else:
        words = f"status {request_id}" if where == "status" else where
        user = APPROVER if where == "pending" else "UREQ"
        text = json.dumps(json.loads(driver.command(words, user=user).body)["blocks"])
    assert "&lt;!here&gt; &amp; &lt;@U1&gt;" in text
    assert "<!here>" not in text and "<@U1>" not in text


# --- the audit log --------------------------------------------------------------------------

FORGED = "fine\n2026-01-01 00:00:00Z  approved        inv-forged by UBOSS  note=ok"


def test_log_value_quotes_and_escapes_what_could_fake_a_field_or_a_line():
    """Plain words stay bare; spaces, `=`, quotes, line breaks and control characters are quoted
    and escaped, so one value is always one token on one line."""
    assert log_value("UAPPROVER1") == "UAPPROVER1"
    assert log_value(3) == "3"
    assert log_value("") == '""'
    assert log_value("a b=c") == '"a b=c"'
    assert log_value('say "hi" \\ bye') == '"say \\"hi\\" \\\\ bye"'
    assert log_value("x\ny\r\tz") == '"x\\ny\\r\\tz"'
    assert (
        log_value(f"{ESC}[2J{RLO}{NUL}\u00a0\U000e0041") == '"\\x1b[2J\\u202e\\x00\\xa0\\U000e0041"'
    )


def test_audit_command_prints_a_forged_reason_as_one_inert_field(bot, settings):
    """A stored reason with a line break, `key=value` and escape sequences is one quoted field
    on its own line in `invite-bot audit`; --json still gives it back exactly."""
    reason = f"{FORGED}\x1b[2J\x1b]0;title\x07 {RLO}"
    bot.store.record("denied", "inv-real", APPROVER, reason=reason)
    env = {"INVITE_DB_PATH": settings.invite_db_path, "PATH": "/usr/bin:/bin"}

    def audit(*flags: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "bot", "audit", *flags],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout

    text = audit()
    lines = [line for line in text.splitlines() if "inv-real" in line or "forged" in line]
    assert len(lines) == 1, text
    assert "\x1b" not in text and "\x07" not in text and RLO not in text
    assert lines[0].endswith(
        ' reason="fine\\n2026-01-01 00:00:00Z  approved        inv-forged by UBOSS  note=ok'
        '\\x1b[2J\\x1b]0;title\\x07 \\u202e"'
    )
    assert not any(line.startswith("2026-01-01") for line in text.splitlines())
    events = [json.loads(line) for line in audit("--json").splitlines()]
    assert next(e for e in events if e["request_id"] == "inv-real")["detail"]["reason"] == reason


def test_service_deny_audits_the_reason_clean(bot):
    """A deny reason given to the service directly (shell, any caller) is audited clean too."""
    from bot.domain.details import parse_details

    details, _ = parse_details({"email": "audit@example.com"})
    request = bot.deps.service.submit(details, "UREQ", None)
    assert bot.deps.service.deny(request.id, "UAPPROVER1", "no\u202e\x00\x1b[2J way").ok
    denied = [e for e in bot.store.audit() if e.event == "denied"][-1]
    assert denied.detail["reason"] == "no[2J way"
