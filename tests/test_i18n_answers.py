"""Issue 20, answers and lists: the help, the private answers, the lists, the App Home and the
requester's and invitee's notices come from the catalog (a fake one marks every msgid); and
the issue's fixes - `/invite status` says "asked" once, a batch with failures is listed as
such, a page that is not there is said, awork's default role by one name, real plurals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.awork_models import InvitationResult, Workspace
from bot.domain.batches import BatchStatus, InviteBatch
from bot.domain.details import InviteDetails
from bot.domain.listing import Listed, summary
from bot.domain.records import ApprovalRule, Failure, InviteRequest, Status
from bot.i18n import speaking
from bot.services.asking import Turned
from bot.ui import answers, lists, notices
from tests.conftest import APPROVERS
from tests.i18n_fake import marked, unmarked_texts
from tests.slack_requests import GENERAL
from tests.test_bulk_scenarios import ask_inline, wait_batch
from tests.test_lists import reply
from tests.test_scenarios import submit

APPROVER = APPROVERS[0]
LINK = "https://acme.slack.com/archives/C1/p1"  # a permalink: no text in it
EMAIL = "ada@example.com"
# What people typed and awork's names, which no catalog has.
TYPED = [
    *(f"p{i}@example.com" for i in range(3)),
    *(EMAIL, "Ada", "Lovelace", "Ada Lovelace", "Project Manager", "Design", "Acme", "no seats"),
]


def request(**changes) -> InviteRequest:
    base = InviteRequest(
        id="inv-1",
        requester_id="UREQ",
        origin_channel=GENERAL,
        details=InviteDetails(email=EMAIL, first_name="Ada", last_name="Lovelace"),
        decided_by=APPROVER,
        approvals=[APPROVER],
    )
    return base.model_copy(update=changes)


def batch(count: int = 3, **changes) -> InviteBatch:
    entries = [InviteDetails(email=f"p{i}@example.com") for i in range(count)]
    base = InviteBatch(id="bat-1", requester_id="UREQ", entries=entries)
    return base.model_copy(update=changes)


def result() -> InvitationResult:
    return InvitationResult(workspace=Workspace(name="Acme"), issued_at=datetime.now(UTC))


def unmarked(payload, allowed=()) -> list[str]:
    """`unmarked_texts` of blocks, a view, or a text as a message's."""
    if isinstance(payload, str):
        payload = {"text": payload}
    return unmarked_texts(payload, [*TYPED, *allowed])


# --- everything visible comes from the catalog ---------------------------------------------


def test_help_and_usage_come_from_the_catalog():
    """The help text and the usage line are marked texts only, the command name filled in."""
    with marked():
        assert unmarked(answers.help_text("/awork-invite")) == []
        assert unmarked(answers.usage()) == []
        assert "/awork-invite" in answers.help_text("/awork-invite")


TURNED = [
    Turned("not_requester", ask_instead=frozenset({"UA", "UB"})),
    Turned("not_requester", ask_instead=frozenset(f"U{i:02d}" for i in range(12))),
    Turned("not_requester"),
    Turned("blocked_domain", rule="blocked_domains: x.com", entry="x.com"),
    Turned("role_not_on_route", "roleId", "routes.design.roles", entry="Admin", roles=("Design",)),
    Turned("daily_limit", rule="daily_limit", resets_at=datetime.now(UTC) + timedelta(hours=3)),
    Turned("member"),
    Turned("something_new"),
]


@pytest.mark.parametrize("turned", TURNED, ids=lambda t: t.why)
@pytest.mark.parametrize("plain", [False, True])
def test_every_refusal_of_an_ask_comes_from_the_catalog(turned, plain):
    """Each reason an ask was turned away, as a private answer and as a form's field error."""
    allowed = ["x.com", "Admin", "Design", "blocked_domains: x.com", "routes.design.roles"]
    with marked():
        assert unmarked(answers.turned_away(turned, plain=plain), allowed) == []
        assert unmarked(answers.turned_away(turned, plain=plain, on_behalf=True), allowed) == []


def test_a_daily_limit_says_when_it_resets_as_the_language_writes_dates():
    """When asking is possible again, in English and German, as each writes a date and time
    (not one fixed pattern), as a private answer and as a form's field error."""
    at = datetime(2026, 12, 6, tzinfo=UTC)
    turned = Turned("daily_limit", rule="daily_limit", resets_at=at)
    now = at - timedelta(hours=2, minutes=1)
    for plain in (False, True):
        english = answers.turned_away(turned, plain=plain, now=now)
        assert "Asking is possible again from 2026-12-06 00:00 UTC (in 2 h 1 min)." in english
        with speaking("de"):
            german = answers.turned_away(turned, plain=plain, now=now)
        assert "Ab 06.12.2026, 00:00 UTC kannst du wieder anfragen" in german
        assert "2026-12-06" not in german


def test_duplicate_errors_and_refusals_of_clicks_come_from_the_catalog():
    """Duplicates, refusals, "already decided" in every state, and the answers to Accept."""
    with marked():
        texts = [
            answers.duplicate_error("member", None, None),
            answers.duplicate_error("open", request(), LINK),
            answers.refusal(None, None),
            *(answers.refusal(request(), r) for r in ("not_approver", "already_approved", "own_request")),
            *(answers.accept_answer(outcome) for outcome in answers.ACCEPT_ANSWERS),
            *(answers.already_decided(request(status=status)) for status in Status),
            answers.already_decided(
                request(status=Status.FAILED, failure=Failure(code="x", message="m", retryable=True))
            ),
            answers.already_decided(request(status=Status.INVITED, approval_rule=ApprovalRule.POLICY, policy_rule="approved_domains: example.com")),
        ]  # fmt: skip
        for text in texts:
            assert unmarked(text, ["inv-1", "approved_domains: example.com", LINK]) == [], text


def items() -> list:
    """One of each kind a list shows: requests in each state, batches in each state."""
    failed = Failure(code="x", message="lost", retryable=True)
    return [
        *(request(id=f"inv-{s.value}", status=s) for s in Status),
        request(id="inv-retry", status=Status.FAILED, failure=failed),
        *(batch(id=f"bat-{s.value}", status=s) for s in BatchStatus),
        batch(id="bat-one", count=1),
        batch(id="bat-failed", status=BatchStatus.DONE, failed=2),
    ]


def test_lists_and_the_app_home_come_from_the_catalog():
    """`/invite pending` and `mine` (with paging and their notes) and the App Home."""
    shown = items()
    with marked():
        views = [
            lists.pending_list(shown * 3, page=2),
            lists.pending_list(shown, page=7),
            lists.pending_list([], wrong="xyz"),
            lists.my_list(shown, page=2, total=100, asked=2),
            lists.my_list([], asked=3),
            lists.my_list([], wrong="two"),
            lists.home_view(shown, shown * 4, approver=True),
            lists.home_view([], [], approver=False),
        ]
        for view in views:
            assert unmarked(view, ["xyz", "two"]) == []


def test_the_status_card_line_comes_from_the_catalog():
    """The line above `/invite status`'s card (the card is the approval message's)."""
    with marked():
        for item in items():
            if not isinstance(item, InviteBatch):
                assert unmarked(lists.item_line(item, asked=False)) == []


def notice_requests() -> list[InviteRequest]:
    failure = Failure(code="insufficient-seats", message="no seats")
    lost = Failure(code="answer-lost", message="lost", retryable=True)
    return [
        request(status=Status.PENDING),
        request(status=Status.PENDING, approval_message=None, route="design"),
        request(status=Status.INVITED, result=result(), link_sent_to="UREQ"),
        request(status=Status.INVITED, result=result(), link_withheld=True),
        request(status=Status.INVITED, link_withheld=True, awork_email_skipped=True),
        request(status=Status.INVITED, approval_rule=ApprovalRule.POLICY, policy_rule="approved_domains: example.com"),
        request(status=Status.EXPIRED),
        request(status=Status.JOINED, result=result()),
        request(status=Status.LAPSED, lapse_reason="The invitation's 24 hours are over."),
        request(status=Status.DENIED, deny_reason="Ada"),
        request(status=Status.DENIED, decided_by=None, deny_reason="Ada"),
        request(status=Status.FAILED, failure=failure),
        request(status=Status.FAILED, failure=lost),
        request(status=Status.INVITING),
    ]  # fmt: skip


def test_the_requesters_notices_come_from_the_catalog():
    """Waiting, reminded, slow awork, every outcome, withheld links, Invite again."""
    allowed = ["inv-1", "design", "approved_domains: example.com"]
    with marked():
        for item in notice_requests():
            texts = [
                notices.waiting_notice(item),
                notices.requester_reminder(item, datetime.now(UTC)),
                notices.requester_reminder(item, None),
                notices.unsure_notice(item),
                notices.outcome_notice(item),
                notices.reminder(item),
                notices.link_message(item, "https://app.awork.com/accept?c=C"),
            ]
            for text in texts:
                assert unmarked(text, allowed) == [], text
            assert unmarked(notices.invite_again_offer(item), allowed) == []
        assert unmarked(notices.requester_reminder(batch(), None), ["bat-1"]) == []
        for skipped in (False, True):
            for count in (None, 1, 3):
                assert unmarked(notices.withheld_links(skipped, count)) == []


def test_the_invitees_messages_come_from_the_catalog():
    """The Accept DM (chosen role or awork's default, teams, until when), the DM when awork's
    answer was lost, and the one after joining, with or without the password link."""
    with marked():
        for item in (
            request(result=result(), role_name="Project Manager", team_names=["Design"]),
            request(),
        ):
            text, blocks = notices.invitee_dm(item)
            assert unmarked(text) == [] and unmarked(blocks) == []
            assert unmarked(notices.answer_lost_dm(item)) == []
            for link in ("https://app.awork.com/set?c=P", None):
                text, blocks = notices.joined_dm(item, link)
                assert unmarked(text) == [] and unmarked(blocks) == []


def test_stored_reasons_are_translated_where_they_are_shown():
    """A lapse's and a failure's reason are stored as English msgids and go through the
    catalog when shown (awork's own words do too, and no catalog has them)."""
    lapsed = request(status=Status.LAPSED, lapse_reason="The invitation's 24 hours are over.")
    failed = request(status=Status.FAILED, failure=Failure(code="x", message="awork is down"))
    with marked():
        assert "«The invitation's 24 hours are over.»" in notices.outcome_notice(lapsed)
        assert "«awork is down»" in notices.outcome_notice(failed)


# --- the fixes ----------------------------------------------------------------------


def test_status_says_when_it_was_asked_once(driver, slack):
    """`/invite status <id>` of a request and of a batch: one "asked" (the card's), not the
    list line's as well."""
    request_id = submit(driver, slack)
    shown = json.dumps(reply(driver, f"status {request_id}", "UREQ")["blocks"])
    assert shown.count(" asked ") == 1 and shown.count(f"`{request_id}`") == 1
    assert lists.item_line(request(), asked=False).count("asked") == 0
    batch_id = ask_inline(driver, slack, "a@x.com b@x.com")
    shown = json.dumps(reply(driver, f"status {batch_id}", "UREQ")["blocks"])
    assert shown.count(" asked ") == 1 and shown.count(f"`{batch_id}`") == 1
    assert "asked" in lists.item_line(request())  # the lists keep it


def test_a_finished_batch_with_failures_is_not_listed_as_done():
    """A batch whose run left failures says how many, with a warning; one without, done."""
    failed = lists.item_line(batch(status=BatchStatus.DONE, failed=2))
    assert ":warning: done, 2 failed" in failed and ":envelope:" not in failed
    one = lists.item_line(batch(status=BatchStatus.DONE, failed=1))
    assert ":warning: done, 1 failed" in one
    assert ":envelope: done" in lists.item_line(batch(status=BatchStatus.DONE))
    kept = Listed.of(json.loads(json.dumps(summary(batch(status=BatchStatus.DONE, failed=2)))))
    assert kept.failed == 2  # the summary the stores keep carries it
    with marked():
        assert "«:warning: done, {n} failed»".replace("{n}", "1") in lists.item_line(
            batch(status=BatchStatus.DONE, failed=1)
        )


def test_a_batch_run_with_failures_lists_them_in_mine(driver, slack, bot, awork):
    """Seats run out for two of four: the finished batch keeps 2 failed, `/invite mine` says so."""
    awork.seats_free = 2
    batch_id = ask_inline(driver, slack, "a@x.com b@x.com c@x.com d@x.com")
    driver.click("approve_invite", batch_id, APPROVER)
    assert wait_batch(bot, batch_id, BatchStatus.DONE).failed == 2
    mine = json.dumps(reply(driver, "mine", "UREQ")["blocks"], ensure_ascii=False)
    assert ":warning: done, 2 failed" in mine and ":envelope: done" not in mine


def test_a_page_past_the_last_is_said(driver, slack, bot):
    """`/invite pending 5` with one page shows the last page and says there is no page 5;
    `/invite mine 9` alike."""
    submit(driver, slack)
    pending = json.dumps(reply(driver, "pending 5", APPROVER)["blocks"])
    assert "There is no page 5; the last page is 1." in pending
    assert "Waiting for a decision: 1" in pending
    mine = json.dumps(reply(driver, "mine 9", "UREQ")["blocks"])
    assert "There is no page 9; the last page is 1." in mine
    assert "There is no page" not in json.dumps(reply(driver, "pending 1", APPROVER)["blocks"])
    assert "There is no page" not in json.dumps(reply(driver, "mine", "UREQ")["blocks"])


@pytest.mark.parametrize("word", ["x", "0", "2a", "-1"])
def test_a_word_that_is_no_page_number_is_said(driver, slack, bot, word):
    """`/invite pending x` and `/invite mine x` show page 1 and say `x` is no page number."""
    submit(driver, slack)
    for text, user, example in (("pending", APPROVER, "pending 2"), ("mine", "UREQ", "mine 2")):
        shown = json.dumps(reply(driver, f"{text} {word}", user)["blocks"])
        assert f"`{word}` is not a page number (try `/invite {example}`); here is page 1." in shown


def test_a_typed_page_word_is_made_inert():
    """What was typed as a page is escaped, and a backtick cannot end its code span."""
    note = lists.page_note(None, 1, 1, "<!channel>`", "/invite pending 2")
    assert "<!channel>" not in note and "&lt;!channel&gt;'" in note


def test_awork_default_role_is_one_translated_term():
    """No role chosen: the invitee reads "awork's default role", through the catalog."""
    assert notices.DEFAULT_ROLE == "awork's default role"
    _, blocks = notices.invitee_dm(request())
    assert "*Role:* awork's default role" in json.dumps(blocks)
    with marked():
        _, blocks = notices.invitee_dm(request())
        assert "«awork's default role»" in json.dumps(blocks, ensure_ascii=False)


def test_counts_next_to_nouns_are_plurals():
    """One person is never "1 people": the withheld links and a batch's line count properly."""
    one, three = notices.withheld_links(False, 1), notices.withheld_links(False, 3)
    assert "the acceptance link of 1 person who is" in one and "carries it." in one
    assert "the acceptance links of 3 people who are" in three and "carries them." in three
    skipped = notices.withheld_links(True, 1)
    assert "nothing carries it: resend the invitation from" in skipped
    assert "*1 person*" in lists.item_line(batch(count=1))
    assert "*3 people*" in lists.item_line(batch(count=3))


def test_the_commands_answers_come_from_the_catalog(driver, slack, bot):
    """What `/invite` answers in the ack: help, lists, status, usage, not found, did you mean,
    and a refusal for someone who may not see the approvers' list."""
    request_id = submit(driver, slack)
    asked = [
        ("help", "UREQ"),
        ("pending", APPROVER),
        ("pending 9", APPROVER),
        ("pending xyz", APPROVER),
        ("pending", "URANDOM"),
        ("mine", "UREQ"),
        ("mine 4", "UREQ"),
        ("mine", "UNOBODY"),
        ("status", "UREQ"),
        ("status inv-nothing", "UREQ"),
        ("pendign", "UREQ"),
        ("hello", "UREQ"),
    ]
    with marked():
        for text, user in asked:
            answer = reply(driver, text, user)
            assert unmarked(answer, ["xyz", "pendign", "hello", "inv-nothing"]) == [], text
        card = reply(driver, f"status {request_id}", "UREQ")
        assert unmarked(card["blocks"][:1], [request_id]) == []
