"""Issue 20: every message the Courier sends is built and sent in its reader's language - the
approvers' channel in INVITE_LANGUAGE, a DM, an ephemeral or an App Home in that person's Slack
locale (English when it is not one we have, or Slack does not say) - whichever thread sends it;
and the requester's list of acceptance links goes in messages under 4,000 characters.

Through the real Bolt app, signed requests in, the fake Slack out. The catalogs are replaced by
tagging ones: every text comes out as `[de]…` or `[en]…`, so each message shows which language
each of its pieces was built in. The bot runs in sandbox mode: Slack's client labels every
message as it is sent, in the language being spoken then - so every message has a tag, and a
send outside its reader's language shows too."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta

import pytest
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

import bot.i18n
from bot.domain.batches import BatchStatus
from bot.domain.clock import utcnow
from bot.domain.details import InviteDetails
from bot.domain.records import InviteRequest, Status
from bot.i18n import speaking
from bot.runtime import slack_clients
from bot.runtime.app import build
from bot.runtime.config import DEFAULT_ACCEPT_URL
from handlers.delivery.batches import MESSAGE_CHARS, link_parts
from handlers.delivery.languages import DAY, RETRY_AFTER, Languages
from tests.conftest import APPROVERS, SIGNING_SECRET, approval_request_id, build_bot, make_settings
from tests.fakes.clock import FakeClock
from tests.i18n_fake import Wrapping
from tests.slack_requests import ADMIN_CHANNEL, SlackDriver
from tests.test_bulk_scenarios import submit_bulk, wait_batch
from tests.test_lists import app_home_opened
from tests.test_scenarios import settle, wait_status

APPROVER = APPROVERS[0]
MESSAGES = ("chat.postMessage", "chat.postEphemeral", "chat.update", "views.publish")
TAG = re.compile(r"\[(en|de)\]")


@pytest.fixture(autouse=True)
def tagged(monkeypatch):
    """Every text built from here on says which language it was built in."""
    catalogs = {language: Wrapping(f"[{language}]") for language in bot.i18n.LANGUAGES}
    monkeypatch.setattr(bot.i18n, "translations", lambda language: catalogs[language])


def sandbox_bot(tmp_path, slack, **settings):
    """The real bot on the awork sandbox (every message labelled as it is sent), its
    Languages on a clock that moves only when told."""
    built = build(make_settings(tmp_path, slack.url, AWORK_API_KEY="", **settings))
    assert built.deps.catalog.refresh()
    clock = FakeClock()
    built.deps.languages.clock = clock
    assert built.deps.courier.languages is built.deps.languages
    return built, clock


@pytest.fixture
def sandboxed(tmp_path, slack, request):
    """(bot, driver, clock); INVITE_LANGUAGE is the indirect parameter, English without one."""
    language = getattr(request, "param", "en")
    built, clock = sandbox_bot(tmp_path, slack, INVITE_LANGUAGE=language)
    yield built, SlackDriver(built.app, SIGNING_SECRET), clock
    built.shutdown(timeout=5)


def tags(call) -> set[str]:
    return set(TAG.findall(json.dumps(call.args, ensure_ascii=False)))


def reader(call) -> str:
    """Who reads a message: a person (their id), or the channel it is in."""
    if call.method == "views.publish":
        return call.args["user_id"]
    if call.method == "chat.postEphemeral":
        return call.args["user"]
    channel = call.args["channel"]
    return channel[1:] if channel.startswith("D") else channel


def messages(slack) -> list:
    return [c for c in slack.calls if c.method in MESSAGES]


def assert_each_in_its_readers_language(slack, languages: dict[str, str]) -> None:
    """Every message in the language of who reads it - and only in that language."""
    sent = messages(slack)
    assert sent
    wrong = [(reader(c), c.method, tags(c)) for c in sent if tags(c) != {languages[reader(c)]}]
    assert wrong == []


def locale_lookups(slack, user: str | None = None) -> list:
    return [
        c
        for c in slack.of("users.info")
        if c.args.get("include_locale") and (user is None or c.args["user"] == user)
    ]


def invite_ada(driver, slack, bot) -> str:
    """UREQ asks for ada@example.com (in Slack as UADA); UAPPROVER1 approves; all delivered."""
    slack.members["ada@example.com"] = "UADA"
    assert driver.command("ada@example.com", user="UREQ").status == 200
    request_id = approval_request_id(slack)
    slack.wait_for("chat.postEphemeral", where=lambda c: c.args["user"] == "UREQ")
    driver.click("approve_invite", request_id, APPROVER)
    wait_status(bot, request_id, Status.INVITED)
    slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "DUADA")
    slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "DUREQ")
    assert bot.deps.wait_idle()
    settle(bot, request_id)
    return request_id


# --- whose language ---------------------------------------------------------------------------


@pytest.mark.parametrize("sandboxed", ["en", "de"], indirect=True)
def test_the_channel_speaks_invite_language_and_each_person_their_own(slack, sandboxed):
    """A German requester, an English approver, a German invitee: the approval message and its
    updates in INVITE_LANGUAGE, the requester's answer and news in German, the invitee's Accept
    DM in German, and each App Home - refreshed by the approver's click - in its owner's."""
    bot, driver, _ = sandboxed
    slack.people.update(
        UREQ={"locale": "de-DE"}, UAPPROVER1={"locale": "en-US"}, UADA={"locale": "de-AT"}
    )
    for user in ("UREQ", APPROVER):  # both look at their App Home, so it is kept up to date
        assert app_home_opened(driver, user).status == 200
        slack.wait_for("views.publish", where=lambda c, u=user: c.args["user_id"] == u)
    assert bot.deps.wait_idle()
    invite_ada(driver, slack, bot)
    channel = bot.deps.settings.invite_language
    languages = {ADMIN_CHANNEL: channel, "UREQ": "de", APPROVER: "en", "UADA": "de"}
    assert_each_in_its_readers_language(slack, languages)
    readers = {reader(c) for c in messages(slack)}
    assert {ADMIN_CHANNEL, "UREQ", APPROVER, "UADA"} <= readers
    homes = [c for c in slack.of("views.publish") if c.args["user_id"] == "UREQ"]
    assert len(homes) >= 2  # opened, then refreshed from the approver's click


def test_a_locale_we_have_no_catalog_for_is_spoken_to_in_english(slack, sandboxed):
    """An invitee whose Slack is in French gets the Accept DM in English; the German requester
    still hears German."""
    bot, driver, _ = sandboxed
    slack.people.update(UREQ={"locale": "de-DE"}, UADA={"locale": "fr-FR"})
    invite_ada(driver, slack, bot)
    [accept] = [c for c in slack.of("chat.postMessage") if c.args["channel"] == "DUADA"]
    assert tags(accept) == {"en"}
    languages = {ADMIN_CHANNEL: "en", "UREQ": "de", APPROVER: "en", "UADA": "en"}
    assert_each_in_its_readers_language(slack, languages)


def test_a_locale_slack_does_not_give_is_english(slack, sandboxed):
    """users.info fails for the requester: everything they read is in English, nothing fails."""
    bot, driver, _ = sandboxed
    slack.refused[("users.info", "UREQ")] = "user_not_found"
    slack.people.update(UAPPROVER1={"locale": "de-DE"}, UADA={"locale": "de-DE"})
    invite_ada(driver, slack, bot)
    languages = {ADMIN_CHANNEL: "en", "UREQ": "en", APPROVER: "de", "UADA": "de"}
    assert_each_in_its_readers_language(slack, languages)


def test_each_locale_is_asked_once_and_again_after_a_day(slack, sandboxed):
    """Requester, approver and invitee: one users.info each for the whole request; a day on,
    the requester's locale is asked again and their changed language is spoken."""
    bot, driver, clock = sandboxed
    slack.people.update(UREQ={"locale": "de-DE"}, UADA={"locale": "de-DE"})
    assert app_home_opened(driver, "UREQ").status == 200
    invite_ada(driver, slack, bot)
    asked = [c.args["user"] for c in locale_lookups(slack)]
    assert sorted(asked) == sorted(["UREQ", APPROVER, "UADA"])
    clock.now += DAY - 1  # still within the day: remembered
    assert app_home_opened(driver, "UREQ").status == 200
    assert bot.deps.wait_idle()
    assert len(locale_lookups(slack, "UREQ")) == 1
    slack.people["UREQ"] = {"locale": "en-GB"}
    clock.now += 2  # a day since it was asked
    assert app_home_opened(driver, "UREQ").status == 200
    assert bot.deps.wait_idle()
    assert len(locale_lookups(slack, "UREQ")) == 2
    home = [c for c in slack.of("views.publish") if c.args["user_id"] == "UREQ"][-1]
    assert tags(home) == {"en"}


@pytest.mark.parametrize("ambient", ["en", "de"])
def test_the_sweep_speaks_each_readers_language_whatever_its_thread_speaks(
    slack, sandboxed, ambient
):
    """A reminder found by the sweep: in the approvers' thread in INVITE_LANGUAGE (English),
    to the German requester in German - the sweep's own thread speaking either language."""
    bot, driver, _ = sandboxed
    slack.people["UREQ"] = {"locale": "de-DE"}
    assert driver.command("ada@example.com", user="UREQ").status == 200
    request_id = approval_request_id(slack)
    settle(bot, request_id)
    bot.store.update(request_id, created_at=utcnow() - timedelta(hours=25))
    before = len(slack.calls)
    with speaking(ambient):
        bot.deps.courier.sweep()
    request = settle(bot, request_id)
    assert request.reminder_posted and request.reminder_told
    swept = [c for c in slack.calls[before:] if c.method in MESSAGES]
    [thread] = [c for c in swept if c.args.get("thread_ts")]
    [news] = [c for c in swept if c.args.get("channel") == "DUREQ"]
    assert thread.args["channel"] == ADMIN_CHANNEL and tags(thread) == {"en"}
    assert tags(news) == {"de"}


# --- the requester's list of links ------------------------------------------------------------


def member(number: int) -> InviteRequest:
    email = f"person.number{number:02d}@example-company.com"
    return InviteRequest(requester_id="UREQ", details=InviteDetails(email=email))


def test_link_parts_are_the_same_for_what_is_left_to_send():
    """Parts end where addresses and links say: the rest of a list, from any part's start, is
    cut into the same parts; a link longer than a message goes alone and whole."""
    pairs = [(member(i), "https://x.example/" + "c" * (40 + 7 * (i % 9))) for i in range(60)]
    parts = link_parts(pairs)
    assert len(parts) > 2 and [p for part in parts for p in part] == pairs
    start = 0
    for number, part in enumerate(parts):
        assert link_parts(pairs[start:]) == parts[number:]
        start += len(part)
    huge = (member(99), "https://x.example/" + "c" * MESSAGE_CHARS)
    assert link_parts([pairs[0], huge, pairs[1]]) == [[pairs[0]], [huge], [pairs[1]]]


def link_lists(slack) -> list:
    """The requester's DMs carrying acceptance links, as sent."""
    return [
        c
        for c in slack.of("chat.postMessage")
        if c.args["channel"] == "DUREQ"
        and str((c.args.get("metadata") or {}).get("event_payload", {}).get("kind", "")).startswith(
            "link_list"
        )
    ]


# The fake awork has no rate limit, and these tests are about the links, not the limit: the
# bot's own 50 calls a second would hold the run's last calls back for most of a second.
UNTHROTTLED = {"AWORK_RATE_PER_SECOND": "1000"}


def bulk_of_fifty(driver, slack, bot) -> tuple[str, list[str]]:
    """UREQ asks for 50 people who are not in Slack; the approver approves."""
    emails = [member(i).details.email for i in range(50)]
    assert submit_bulk(driver, {"people": "\n".join(emails)}).body == ""
    batch_id = approval_request_id(slack)
    driver.click("approve_invite", batch_id, APPROVER)
    return batch_id, emails


def assert_every_link_once(texts: list[str], emails: list[str], awork) -> None:
    links = [link for text in texts for link in re.findall(r"<(https://[^|>]+)\|", text)]
    assert len(links) == len(set(links)) == 50
    codes = {i["invitationCode"] for i in awork.invitations}
    assert {re.search(r"invitationCode=([^&]+)", link).group(1) for link in links} == {
        code.replace("=", "%3D") for code in codes
    }
    for email in emails:
        assert sum(text.count(f"• {email}:") for text in texts) == 1


def test_fifty_links_go_in_messages_under_4000_characters(tmp_path, slack, awork):
    """awork's own acceptance URL, 50 people not in Slack: several DMs to the requester, each a
    whole message under Slack's recommended 4,000 characters, every link in one of them once."""
    settings = make_settings(
        tmp_path, slack.url, INVITE_ACCEPT_URL=DEFAULT_ACCEPT_URL, **UNTHROTTLED
    )
    built = build_bot(settings, awork.handler)
    try:
        assert built.deps.catalog.refresh()
        driver = SlackDriver(built.app, SIGNING_SECRET)
        batch_id, emails = bulk_of_fifty(driver, slack, built)
        wait_batch(built, batch_id, BatchStatus.DONE)
        texts = [c.args["text"] for c in link_lists(slack)]
        assert sum(len(t) for t in texts) > 2 * MESSAGE_CHARS  # it would not fit in two
        assert len(texts) >= 3 and all(len(text) < MESSAGE_CHARS for text in texts)
        assert all(f"({n} of {len(texts)})" in text for n, text in enumerate(texts, start=1))
        assert_every_link_once(texts, emails, awork)
    finally:
        built.shutdown(timeout=5)


TIMEOUT = 0.3  # SLACK_TIMEOUT for the lost answer
LATE = 1.0  # when the slow Slack answers: after the client gave up


def test_a_part_whose_answer_was_lost_is_found_not_sent_again(tmp_path, slack, awork, monkeypatch):
    """The second part of the list is posted but its answer is lost: the next sweep finds it
    in the DM and adopts it; the parts after it go once - every link reaches the requester
    once, and no part is sent twice."""
    monkeypatch.setattr(slack_clients, "RETRY_INTERVALS", FixedValueRetryIntervalCalculator(0.01))
    settings = make_settings(
        tmp_path,
        slack.url,
        INVITE_ACCEPT_URL=DEFAULT_ACCEPT_URL,
        SLACK_TIMEOUT=str(TIMEOUT),
        **UNTHROTTLED,
    )
    built = build_bot(settings, awork.handler)
    answer, parts = slack.answer, []

    def second_part_late(method, args, token=""):
        answered = answer(method, args, token)
        if method == "chat.postMessage" and "link_list" in json.dumps(args.get("metadata")):
            parts.append(args)
            if len(parts) == 2:  # carried out, and answered after the client gave up
                slack.mishap("chat.postMessage", late=LATE)
        return answered

    monkeypatch.setattr(slack, "answer", second_part_late)
    try:
        assert built.deps.catalog.refresh()
        driver = SlackDriver(built.app, SIGNING_SECRET)
        batch_id, emails = bulk_of_fifty(driver, slack, built)
        slack.wait_for("chat.postMessage", 2, where=lambda c: c in link_lists(slack))
        assert built.deps.wait_idle(timeout=15)
        batch = built.store.get_batch(batch_id)
        assert batch.status is BatchStatus.DONE and not batch.links_listed
        assert [m.kind for m in batch.messages if not m.ts] == [
            parts[1]["metadata"]["event_payload"]["kind"]
        ]
        late = utcnow() + timedelta(seconds=2 * TIMEOUT + 1)
        built.deps.courier.wall_clock = lambda: late  # its answer can no longer be on its way
        built.deps.courier.sweep(force=True)
        wait_batch(built, batch_id, BatchStatus.DONE)
        sent = link_lists(slack)
        kept = [
            m
            for m in slack.in_channel("DUREQ")
            if str((m.get("metadata") or {}).get("event_payload", {}).get("kind", "")).startswith(
                "link_list"
            )
        ]
        assert len(sent) == len(kept) >= 3  # no part posted twice
        assert_every_link_once([m["text"] for m in kept], emails, awork)
        adopted = [e for e in built.store.audit() if e.event == "message_adopted"]
        assert [e.request_id for e in adopted] == [batch_id]
    finally:
        built.shutdown(timeout=5)


def test_the_list_of_links_is_in_the_requesters_language(slack, sandboxed):
    """A German requester's list of links, built and sent in German (the sandbox label too)."""
    bot, driver, _ = sandboxed
    slack.people["UREQ"] = {"locale": "de-DE"}
    assert submit_bulk(driver, {"people": "a@x.com\nb@y.com"}).body == ""
    batch_id = approval_request_id(slack)
    driver.click("approve_invite", batch_id, APPROVER)
    wait_batch(bot, batch_id, BatchStatus.DONE)
    assert bot.deps.wait_idle()
    [listed] = link_lists(slack)
    assert tags(listed) == {"de"} and "a@x.com" in listed.args["text"]
    assert_each_in_its_readers_language(slack, {ADMIN_CHANNEL: "en", "UREQ": "de", APPROVER: "en"})


def test_an_ack_after_the_day_speaks_the_language_known_while_slack_is_asked_again():
    """A day on, an ack (which may wait 0.25 s) does not wait for Slack: it speaks the person's
    language as known, while users.info is asked again; what comes after hears the answer."""

    class SlowSlack:
        def __init__(self) -> None:
            self.locale, self.asked = "de-DE", 0
            self.asking, self.answer = threading.Event(), threading.Event()

        def users_info(self, user: str, include_locale: bool) -> dict:
            self.asked += 1
            if self.asked > 1:
                self.asking.set()
                assert self.answer.wait(10)  # Slack slower than any ack may wait
            return {"user": {"id": user, "locale": self.locale}}

    slack, now = SlowSlack(), [0.0]
    languages = Languages(slack, clock=lambda: now[0])
    assert languages.of("UREQ", wait=0.25) == "de"
    now[0] += DAY + 1
    slack.locale = "en-US"
    assert languages.of("UREQ", wait=0.25) == "de"  # at once: the lookup waits on Slack
    assert slack.asking.wait(10) and slack.asked == 2
    slack.answer.set()
    assert languages.of("UREQ") == "en"  # a message after the ack waits for the answer
    assert slack.asked == 2


def test_a_refresh_slack_does_not_answer_keeps_the_language_known():
    """A day on, users.info failing (rate limited): the person is still spoken to in the
    language known - by the ack, by what follows it, and after the retry's few minutes."""
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web import SlackResponse

    class FailingSlack:
        asked = 0

        def users_info(self, user: str, include_locale: bool) -> dict:
            self.asked += 1
            if self.asked == 1:
                return {"user": {"id": user, "locale": "de-DE"}}
            answer = SlackResponse(
                client=None, http_verb="POST", api_url="", req_args={}, headers={},
                data={"ok": False, "error": "ratelimited"}, status_code=429,
            )  # fmt: skip
            raise SlackApiError("ratelimited", answer)

    slack, now = FailingSlack(), [0.0]
    languages = Languages(slack, clock=lambda: now[0])
    assert languages.of("UREQ", wait=0.25) == "de"
    now[0] += DAY + 1
    assert languages.of("UREQ") == "de"  # after the ack: the failed lookup, waited for
    assert slack.asked == 2
    now[0] += RETRY_AFTER + 1
    assert languages.of("UREQ", wait=0.25) == "de"
