"""Issue 20 with the real catalogs: a German and an English user side by side through the real
Bolt app (signed requests in, the fake Slack out) - help, the form, its field errors, the
approval in the channel's language, the DMs, lists and the App Home - and one whole flow run
twice, in German and in English, compared line by line: nothing a German reader sees is left
in English, apart from what is not ours to translate (addresses, names, awork's roles and
teams, ids and the words people type)."""

from __future__ import annotations

import json
import re

import pytest

from bot.domain.records import Status
from tests.conftest import APPROVERS, SIGNING_SECRET, approval_request_id, build_bot, make_settings
from tests.fakes.awork import ROLE_PM, TEAM_DESIGN
from tests.i18n_fake import visible_texts
from tests.slack_requests import ADMIN_CHANNEL, SlackDriver
from tests.test_lists import app_home_opened
from tests.test_scenarios import settle, wait_status

APPROVER = APPROVERS[0]
LOCALES = {"de": "de-DE", "en": "en-US"}
SHOWN = ("chat.postMessage", "chat.postEphemeral", "chat.update", "views.open", "views.publish")
# Not ours to translate: what people typed, awork's names, the words of commands.
THEIRS = re.compile(
    r"`[^`]*`|<[^>]*>|\S+@\S+|Ada|Lovelace|Grace|Hopper|Project Manager|Member|Admin|Design|"
    r"Engineering|Marketing|Example Agency|inv-[0-9a-f]+|bat-[0-9a-f]+|awork|Slack|"
    r"(?<!\w)/invite\b[\w ]*|\brole:|\bteam:|:[a-z0-9_+-]+:"
)
# English words that have no business in a German message.
ENGLISH = re.compile(
    r"\b(the|and|your|you|is|are|was|were|has|have|with|from|this|that|for|by|of|to|"
    r"request|requests|invitation|invited|approve|approved|deny|denied|waiting|"
    r"approver|approvers|people|email|role|asked|please|"
    r"here|there|not|no|yes|again|first|last)\b",
    re.IGNORECASE,
)


def english_words(text: str) -> list[str]:
    """English words in a text once what is not ours to translate is taken out."""
    return ENGLISH.findall(THEIRS.sub(" ", text))


def shown(slack, since: int = 0) -> list[tuple[str, str]]:
    """(method, text) for every text people see in what the bot sent Slack."""
    found = []
    for call in slack.calls[since:]:
        if call.method in SHOWN:
            for text in visible_texts({k: v for k, v in call.args.items() if k != "metadata"}):
                found.append((call.method, text))
    return found


def answer_texts(response) -> list[str]:
    """The texts of an ack's answer (an ephemeral reply or a view's errors)."""
    if not response.body:
        return []
    try:
        body = json.loads(response.body)
    except ValueError:  # a plain-text answer
        return [response.body]
    return visible_texts(body) + list((body.get("errors") or {}).values())


def german_bot(tmp_path, slack, awork, channel_language="de", **people):
    """The bot with INVITE_LANGUAGE `channel_language`, the given people's Slack locales."""
    for user, language in people.items():
        slack.people[user] = {"locale": LOCALES[language]}
    bot = build_bot(
        make_settings(tmp_path, slack.url, INVITE_LANGUAGE=channel_language), awork.handler
    )
    return bot, SlackDriver(bot.app, SIGNING_SECRET)


def flow(tmp_path, slack, awork, language: str) -> list[str]:
    """One whole day's work, everyone (and the channel) in `language`: every text shown."""
    bot, driver = german_bot(
        tmp_path, slack, awork, language, UREQ=language, **{APPROVER: language, "UINV": language}
    )
    slack.members["grace@example.com"] = "UINV"
    slack.people["UINV"].update({"profile": {"email": "grace@example.com"}})
    texts: list[str] = []
    try:
        for words in ("help", "pending", "pending x", "mine 7", "nonsense role:Nope"):
            texts += answer_texts(driver.command(text=words))
        texts += answer_texts(driver.command(text=""))  # the form
        texts += answer_texts(driver.submit_form({"email": "not-an-address"}))
        seen = 0
        driver.submit_form(
            {"email": "grace@example.com", "firstName": "Grace", "roleId": ROLE_PM,
             "teamIds": [TEAM_DESIGN]}
        )  # fmt: skip
        request_id = approval_request_id(slack, seen)
        assert app_home_opened(driver, APPROVER).status == 200
        driver.click("approve_invite", request_id, APPROVER)
        wait_status(bot, request_id, Status.INVITED)
        settle(bot, request_id)
        texts += answer_texts(driver.click("approve_invite", request_id, APPROVER))
        texts += answer_texts(driver.command(text=f"status {request_id}"))
        texts += answer_texts(driver.command(text="mine"))
        driver.command(text="ada@example.com team:Design")
        driver.command(text="bulk")
        assert bot.deps.wait_idle(10)
        texts += [text for _, text in shown(slack)]
    finally:
        bot.shutdown(timeout=5)
    return texts


@pytest.fixture
def both(tmp_path):
    """The same flow in English and in German, each on a Slack, an awork and a store of its own."""
    from tests.fakes.awork import FakeAwork
    from tests.fakes.slack import FakeSlack

    runs = {}
    for language in ("en", "de"):
        slack, awork = FakeSlack(), FakeAwork()
        (tmp_path / language).mkdir()
        try:
            runs[language] = flow(tmp_path / language, slack, awork, language)
        finally:
            slack.close()
    return runs


def test_a_german_day_shows_no_english(both):
    """Every text of the German run - answers, form, errors, approval, DMs, lists, App Home -
    is German: none repeats the English run's line, none holds an English word."""
    english, german = both["en"], both["de"]
    assert len(german) >= 20 and len(english) >= 20
    left = sorted(
        {
            text
            for text in german
            # A word alone may be the same in both ("Teams", "Position"); a phrase may not.
            if len(re.findall(r"[^\W\d_]{2,}", THEIRS.sub(" ", text))) >= 2 and text in set(english)
        }
    )
    assert left == []
    words = {text: english_words(text) for text in german if english_words(text)}
    assert words == {}


def test_english_and_german_users_side_by_side(tmp_path, slack, awork):
    """One German and one English requester: each gets help, the form and its field errors
    in their own language; the approvers' channel speaks INVITE_LANGUAGE (English here)."""
    bot, driver = german_bot(tmp_path, slack, awork, "en", UDE="de", UEN="en")
    try:
        de_help = " ".join(answer_texts(driver.command(text="help", user="UDE")))
        en_help = " ".join(answer_texts(driver.command(text="help", user="UEN")))
        assert "Formular" in de_help and "invite" in en_help.lower()
        assert english_words(de_help) == []
        de_errors = answer_texts(driver.submit_form({"email": "nope"}, user="UDE"))
        en_errors = answer_texts(driver.submit_form({"email": "nope"}, user="UEN"))
        assert de_errors and en_errors and de_errors != en_errors
        assert "email address" in " ".join(en_errors)
        assert english_words(" ".join(de_errors)) == []
        seen = 0
        driver.submit_form({"email": "grace@example.com"}, user="UDE")
        request_id = approval_request_id(slack, seen)
        post = next(c for c in slack.of("chat.postMessage") if c.args["channel"] == ADMIN_CHANNEL)
        assert "Invitation request" in post.args["text"] and request_id
        [told] = slack.wait_for("chat.postEphemeral", where=lambda c: c.args["user"] == "UDE")
        assert english_words(told.args["text"]) == [] and "Anfrage" in told.args["text"]
    finally:
        bot.shutdown(timeout=5)


def test_the_channel_speaks_invite_language(tmp_path, slack, awork):
    """INVITE_LANGUAGE=de: the approval message is German though requester and approver
    read English; their own answers stay English."""
    bot, driver = german_bot(tmp_path, slack, awork, "de", UREQ="en", **{APPROVER: "en"})
    try:
        driver.submit_form({"email": "grace@example.com"})
        request_id = approval_request_id(slack, 0)
        post = next(c for c in slack.of("chat.postMessage") if c.args["channel"] == ADMIN_CHANNEL)
        texts = " ".join(visible_texts(post.args["blocks"]))
        assert english_words(texts) == [] and request_id in texts
        [told] = slack.wait_for("chat.postEphemeral", where=lambda c: c.args["user"] == "UREQ")
        assert "waiting" in told.args["text"]
    finally:
        bot.shutdown(timeout=5)


def test_an_unsupported_locale_reads_english(tmp_path, slack, awork):
    """A French Slack (no French catalog) gets the English help."""
    slack.people["UFR"] = {"locale": "fr-FR"}
    bot, driver = german_bot(tmp_path, slack, awork, "en")
    try:
        help_text = " ".join(answer_texts(driver.command(text="help", user="UFR")))
        assert "invite" in help_text.lower() and "Formular" not in help_text
    finally:
        bot.shutdown(timeout=5)


def test_a_locale_is_asked_once(tmp_path, slack, awork):
    """A person's locale is asked of Slack on their first request only: later acks find it."""
    bot, driver = german_bot(tmp_path, slack, awork, "en", UDE="de")
    try:
        for _ in range(3):
            driver.command(text="help", user="UDE")
        asked = [c for c in slack.of("users.info") if c.args.get("user") == "UDE"]
        assert len(asked) == 1 and asked[0].args.get("include_locale") in (True, "true", "1")
    finally:
        bot.shutdown(timeout=5)


def test_slack_slow_on_a_first_request_answers_english_at_once(tmp_path, slack, awork):
    """users.info slower than the ack may wait: the first answer is English, at once; the
    lookup finishes on its own and the next answer is German."""
    import time

    bot, driver = german_bot(tmp_path, slack, awork, "en", UDE="de")
    try:
        slack.delay = 0.6
        started = time.monotonic()
        first = " ".join(answer_texts(driver.command(text="help", user="UDE")))
        assert time.monotonic() - started < 0.5 and "invite" in first.lower()
        assert bot.deps.languages.of("UDE") == "de"  # waits for the lookup under way
        slack.delay = 0
        second = " ".join(answer_texts(driver.command(text="help", user="UDE")))
        assert "Formular" in second
    finally:
        bot.shutdown(timeout=5)


def test_two_approvers_take_the_plural_in_german():
    """An admin role's two approvers are "<@A> und <@B> haben genehmigt", one approver "hat"."""
    from bot.domain.awork_models import InvitationResult
    from bot.domain.details import InviteDetails
    from bot.domain.records import InviteRequest
    from bot.i18n import speaking
    from bot.ui import notices

    one = InviteRequest(
        requester_id="UREQ",
        details=InviteDetails(email="grace@example.com"),
        status=Status.INVITED,
        approvals=["UA"],
        decided_by="UA",
        result=InvitationResult(),
    )
    two = one.model_copy(update={"approvals": ["UA", "UB"]})
    with speaking("de"):
        assert "<@UA> hat deine Anfrage genehmigt" in notices.outcome_notice(one)
        assert "<@UA> und <@UB> haben deine Anfrage genehmigt" in notices.outcome_notice(two)
        assert "haben deine Anfrage genehmigt" in notices.unsure_notice(two)


def test_a_requests_language_ends_with_it(tmp_path, slack, awork):
    """A German person's request leaves nothing behind: the thread that served it speaks
    English again, so the next request starts from its own person's language."""
    from bot.i18n import current

    bot, driver = german_bot(tmp_path, slack, awork, "en", UDE="de")
    try:
        driver.command(text="help", user="UDE")
        assert bot.deps.languages.known("UDE") == "de"
        assert current() == "en"
    finally:
        bot.shutdown(timeout=5)
