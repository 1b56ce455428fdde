"""Issue 4 items 1 and 2 without Slack: the list and inline parsers, the rate limiter, and
the batch service's exactly-once approval, run, retry and crash recovery."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import httpx
import pytest

from bot.awork.ratelimit import RateLimiter
from bot.domain.awork_models import Role, Team
from bot.domain.batches import BATCH_LIMIT, BatchStatus
from bot.domain.details import InviteDetails
from bot.domain.inline import parse_inline, resolve
from bot.domain.people import Person, parse_people
from bot.domain.records import InviteRequest, Status
from bot.services.batches import BatchService
from bot.services.decisions import Refusal
from bot.store import SqliteStore as Store
from tests.fakes.awork import API_KEY, ROLE_PM, TEAM_DESIGN, TEAM_ENGINEERING, FakeAwork, Fault
from tests.fakes.services import in_process_service

APPROVERS = frozenset({"UAPP1", "UAPP2"})
ROLES = [Role.model_validate(r) for r in FakeAwork().roles if not r.get("isArchived")] + [
    Role(id="r-po", name="Product Owner")
]
TEAMS = [Team.model_validate(t) for t in FakeAwork().teams]


# --- parsing a list -------------------------------------------------------------------------


def test_people_one_per_line_with_optional_names():
    """`email[, first, last]` per line; blank lines, comments and a header are skipped.
    (Semicolons and tabs, one delimiter a list: tests/test_bulk_files.py.)"""
    text = (
        "email,first name,last name\n"
        "ada@example.com, Ada, Lovelace\n"
        "\n# contractors\n"
        "grace@example.com,Grace,Hopper\n"
        "linus@example.com\n"
        '"o\'brien@example.com","Pat, Jr.","O\'Brien"\n'
        "tab@example.com, Tab, User\n"
    )
    people, errors = parse_people(text)
    assert errors == []
    assert [(p.email, p.first_name, p.last_name) for p in people] == [
        ("ada@example.com", "Ada", "Lovelace"),
        ("grace@example.com", "Grace", "Hopper"),
        ("linus@example.com", None, None),
        ("o'brien@example.com", "Pat, Jr.", "O'Brien"),
        ("tab@example.com", "Tab", "User"),
    ]


def test_bad_lines_are_named_by_number():
    """A line that is not an address, or has too many fields, is reported with its number."""
    people, errors = parse_people("ada@example.com\nnot-an-address\nb@x.com, B, C, D\n")
    assert [p.email for p in people] == ["ada@example.com"]
    assert errors[0].startswith("Line 2:") and "not an email" in errors[0]
    assert errors[1].startswith("Line 3:")


def test_several_addresses_on_a_line_are_several_people():
    """`a@x.com b@y.com` on one line is two people (as inline); a line with a word that is no
    address, or with names after a delimiter, is read as before."""
    people, errors = parse_people("a@x.com  b@y.com mailto:c@z.com\nd@x.com, Dee\n")
    assert errors == []
    assert [(p.email, p.first_name, p.line) for p in people] == [
        ("a@x.com", None, 1),
        ("b@y.com", None, 1),
        ("c@z.com", None, 1),
        ("d@x.com", "Dee", 2),
    ]
    people, errors = parse_people("Email Address\nada@x.com Lovelace\n")
    assert len(people) == 1 and errors == []  # a header; one (bad) address, refused later


def test_more_than_the_limit_is_refused():
    """501 people are refused with the limit in words."""
    _, errors = parse_people("\n".join(f"p{i}@example.com" for i in range(BATCH_LIMIT + 1)))
    assert errors and f"At most {BATCH_LIMIT}" in errors[0]


# --- inline ---------------------------------------------------------------------------------


def test_inline_people_role_teams_and_no_email():
    """The issue's example: several people, a quoted role, two teams and --no-email."""
    parsed = parse_inline(
        'a@x.com b@y.com role:"Project Manager" team:Design team:engineering --no-email',
        ROLES,
        TEAMS,
    )
    assert parsed.errors == []
    assert [p.email for p in parsed.people] == ["a@x.com", "b@y.com"]
    assert parsed.role.id == ROLE_PM
    assert [t.id for t in parsed.teams] == [TEAM_DESIGN, TEAM_ENGINEERING]
    assert parsed.skip_sending_email


def test_inline_tolerates_what_slack_and_phones_do_to_text():
    """Slack's <mailto:…|…> links, smart quotes and an em dash for -- are understood."""
    parsed = parse_inline(
        "<mailto:ada@example.com|ada@example.com> role:“project manager” —no-email", ROLES, TEAMS
    )
    assert parsed.errors == []
    assert [p.email for p in parsed.people] == ["ada@example.com"]
    assert parsed.role.id == ROLE_PM and parsed.skip_sending_email


def test_inline_names_on_lines():
    """One per line as `email, first, last` works inline too."""
    parsed = parse_inline("ada@example.com, Ada, Lovelace\ngrace@example.com", ROLES, TEAMS)
    assert [(p.email, p.first_name) for p in parsed.people] == [
        ("ada@example.com", "Ada"),
        ("grace@example.com", None),
    ]


def test_unique_prefix_matches_and_ambiguity_lists_the_choices():
    """'proj' is Project Manager; 'pro' could be two roles, and both are named."""
    assert resolve("proj", ROLES, "role")[0].id == ROLE_PM
    item, error = resolve("pro", ROLES, "role")
    assert item is None and "Product Owner" in error and "Project Manager" in error


def test_unknown_names_list_the_choices():
    """An unknown team is answered with the teams there are; an unclosed quote is said."""
    parsed = parse_inline('a@x.com team:Sales role:"Project', ROLES, TEAMS)
    text = " ".join(parsed.errors)
    assert "There is no team “Sales”" in text and "Design, Engineering" in text
    assert "not closed" in text


def test_words_that_are_not_addresses_are_refused():
    """`/invite ada` (no address) says what is wrong rather than guessing."""
    parsed = parse_inline("ada", ROLES, TEAMS)
    assert parsed.people == [] and "not an email" in parsed.errors[0]


# --- the rate limiter -------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_limiter_keeps_to_per_second_and_per_minute():
    """With 5/s and 12/min, the 6th call waits a second and the 13th until the minute is over."""
    clock = Clock()
    limiter = RateLimiter(5, 12, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(13):
        limiter.done(limiter.acquire())  # answered at once
        times.append(clock.now - 1000.0)
    assert times[:5] == [0.0] * 5
    assert times[5] == pytest.approx(1.0)
    assert times[10] == pytest.approx(2.0)
    assert times[12] == pytest.approx(60.0)


def test_calls_count_from_their_answer_so_jitter_cannot_exceed_the_limit():
    """A call answered 0.2 s after it was sent counts from then: the 6th waits until 1.2 s.
    Calls still in flight count at their latest (sent + cap)."""
    clock = Clock()
    limiter = RateLimiter(5, 1000, cap=0.25, clock=clock, sleep=clock.sleep)
    slots = [limiter.acquire() for _ in range(5)]
    clock.now += 0.2
    for slot in slots:
        limiter.done(slot)
    limiter.acquire()
    assert clock.now - 1000.0 == pytest.approx(1.2)
    clock.now += 5
    for _ in range(5):
        limiter.acquire()  # never answered
    start = clock.now
    limiter.acquire()
    assert clock.now - start == pytest.approx(1.25)


def test_a_call_unanswered_counts_until_a_second_after_its_slot():
    """By default a call in flight counts until a second after its slot: one that reaches
    awork late (a busy machine, a slow network) still counts in awork's second. The 51st
    call after 50 unanswered ones waits 2 s."""
    clock = Clock()
    limiter = RateLimiter(50, 1000, clock=clock, sleep=clock.sleep)
    for _ in range(50):
        limiter.acquire()  # never answered
    start = clock.now
    limiter.acquire()
    assert clock.now - start == pytest.approx(2.0)


def test_limiter_follows_awork_headers():
    """A 429's ratelimit-reset, or remaining 0 with a reset, pauses every caller."""
    clock = Clock()
    limiter = RateLimiter(50, 1000, clock=clock, sleep=clock.sleep)
    limiter.observe(httpx.Response(429, headers={"ratelimit-reset": "3"}))
    limiter.acquire()
    assert clock.now - 1000.0 == pytest.approx(3.0)
    limiter.observe(
        httpx.Response(200, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "2"})
    )
    limiter.acquire()
    assert clock.now - 1000.0 == pytest.approx(5.0)


# --- the batch service ----------------------------------------------------------------------


@pytest.fixture
def world(tmp_path):
    fake = FakeAwork()
    store = Store(str(tmp_path / "db.sqlite"))
    service = in_process_service(store, APPROVERS, fake.handler)
    yield fake, store, service, BatchService(service, concurrency=8)
    store.close()


def people(count: int, start: int = 0) -> list[Person]:
    return [Person(f"p{i}@example.com", f"P{i}", "Test") for i in range(start, start + count)]


def test_prepare_leaves_out_members_open_requests_and_repeats(world):
    """Nobody already in awork, already asked for, or listed twice reaches the admins."""
    _, _, service, batches = world
    open_request = service.submit(InviteDetails(email="open@example.com"), "UREQ", None)
    prepared = batches.prepare(
        [
            Person("owner@ncnstn.com"),
            Person("open@example.com"),
            Person("new@example.com"),
            Person("NEW@example.com"),
        ]
    )
    assert [e.email for e in prepared.entries] == ["new@example.com"]
    assert {(s.email, s.reason) for s in prepared.skipped} == {
        ("owner@ncnstn.com", "member"),
        ("open@example.com", "open"),
        ("NEW@example.com", "repeated"),
    }
    assert [s.request_id for s in prepared.skipped if s.reason == "open"] == [open_request.id]


def test_concurrent_approvals_claim_one_run(world):
    """Ten approvers clicking "Approve all" at once: one claims the run, the rest are told."""
    _, _, _, batches = world
    batch = batches.submit(batches.prepare(people(3)), "UREQ", None)
    results = []
    barrier = threading.Barrier(10)

    def click(i: int) -> None:
        barrier.wait()
        results.append(batches.approve(batch.id, sorted(APPROVERS)[i % 2]))

    threads = [threading.Thread(target=click, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(1 for d in results if d.ok) == 1
    assert all(d.refusal is Refusal.ALREADY_DECIDED for d in results if not d.ok)
    assert batches.store.get_batch(batch.id).status is BatchStatus.RUNNING


def test_run_invites_each_once_and_a_rerun_sends_nothing(world):
    """Every entry becomes one POST; running the same run again finds its members and sends none."""
    fake, store, _, batches = world
    batch = batches.submit(batches.prepare(people(30)), "UREQ", None)
    assert batches.approve(batch.id, "UAPP1").ok
    done = batches.run(batch.id, batches.store.get_batch(batch.id).claim_id)
    assert done.status is BatchStatus.DONE
    assert len(fake.calls("POST", "/invitations")) == 30
    summary = batches.summary(done)
    assert len(summary.invited) == 30 and not summary.failed and not summary.waiting
    # The same run again (as after a crash right before DONE was written): nothing is resent.
    store.transition(batch.id, {BatchStatus.DONE}, BatchStatus.RUNNING)
    batches.run(batch.id, batches.store.get_batch(batch.id).claim_id)
    assert len(fake.calls("POST", "/invitations")) == 30


def test_summary_sorts_members_from_failures_and_retry_resends_only_failures(world):
    """awork's already-exist is "already a member"; other failures are retried once, on request."""
    fake, _, _, batches = world
    batch = batches.submit(batches.prepare(people(6)), "UREQ", None)
    fake.users.append(
        {
            **fake.users[0],
            "id": "late",
            "userContactInfos": [{"type": "email", "value": "p0@example.com"}],
        }
    )  # joined awork after the batch was asked for
    fake.seats_free = 3
    batches.approve(batch.id, "UAPP1")
    done = batches.run(batch.id, batches.store.get_batch(batch.id).claim_id)
    summary = batches.summary(done)
    assert summary.already == ["p0@example.com"]
    assert len(summary.invited) == 3 and len(summary.failed) == 2
    assert all(m.failure.code == "insufficient-seats" for m in summary.failed)
    assert batches.retry_failed(batch.id, "UREQ").refusal is Refusal.NOT_APPROVER
    fake.seats_free = 10
    posts_before = len(fake.calls("POST", "/invitations"))
    decisions = [batches.retry_failed(batch.id, "UAPP2") for _ in range(3)]
    assert [d.ok for d in decisions] == [True, False, False]
    done = batches.run(batch.id, batches.store.get_batch(batch.id).claim_id)
    assert done.run == 2 and len(fake.calls("POST", "/invitations")) == posts_before + 2
    summary = batches.summary(done)
    assert (
        len(summary.invited) == 5 and summary.failed == [] and summary.already == ["p0@example.com"]
    )


def test_a_run_cut_off_by_a_crash_is_taken_over_without_duplicates(world):
    """A run whose lease expired, with a member whose lease expired too, is finished by
    another instance: one POST each; a run whose lease still runs is not taken over."""
    fake, store, _, batches = world
    batch = batches.submit(batches.prepare(people(5)), "UREQ", None)
    batches.approve(batch.id, "UAPP1")
    dead = "elsewhere:1:dead"  # no process id is ever consulted: only the lease counts
    store.transition(batch.id, {BatchStatus.RUNNING}, BatchStatus.RUNNING, claim=(dead, 60))
    assert batches.take_over(store.get_batch(batch.id)) is None  # its lease runs
    expired = store.now() - timedelta(seconds=1)
    store.update(batch.id, claim_until=expired)
    # The dead process had created member 0 and its POST reached awork; member 1 was never sent.
    running = store.get_batch(batch.id)
    for index in (0, 1):
        store.add(
            InviteRequest(
                id=running.member_id(index),
                status=Status.INVITING,
                batch_id=batch.id,
                batch_run=1,
                requester_id="UREQ",
                details=running.entries[index],
                claimed_by=dead,
                claimed_at=running.claimed_at - timedelta(hours=1),
                claim_until=expired,
                invite_started_at=running.claimed_at - timedelta(minutes=1),
            )
        )
    fake.handler(
        httpx.Request(
            "POST",
            "https://api.awork.com/api/v1/invitations",
            headers={"Authorization": f"Bearer {API_KEY}"},
            json={"email": "p0@example.com", "workspaceId": fake.workspace["id"]},
        )
    )
    orphan = store.get_batch(batch.id)
    claimed = batches.take_over(orphan)
    assert claimed is not None and batches.take_over(orphan) is None  # once
    done = batches.run(batch.id, batches.store.get_batch(batch.id).claim_id)
    assert done.status is BatchStatus.DONE
    posted = fake.calls("POST", "/invitations")
    emails = sorted(json.loads(r.content)["email"] for r in posted)
    assert emails == sorted(f"p{i}@example.com" for i in range(5))  # one each, p0 not resent
    assert len(batches.summary(done).invited) == 5


def test_members_cannot_be_approved_on_their_own(world):
    """A crafted click with a member's id changes nothing: members go with their batch."""
    fake, store, service, batches = world
    batch = batches.submit(batches.prepare(people(2)), "UREQ", None)
    fake.fail_next.append(Fault(503, path="/invitations"))
    fake.fail_next.append(Fault(503, path="/invitations"))
    batches.approve(batch.id, "UAPP1")
    batches.run(batch.id, batches.store.get_batch(batch.id).claim_id)
    member_id = store.get_batch(batch.id).member_id(0)
    assert service.approve(member_id, "UAPP2").refusal is Refusal.ALREADY_DECIDED
    assert service.waiting("UAPP2") == []


def test_a_batch_nobody_decides_gets_one_reminder_then_expires(world):
    """Reminder once after remind_after (stored), expiry after expire_after; then no approval."""
    _, store, _, batches = world
    batch = batches.submit(batches.prepare(people(2)), "UREQ", None)
    day = timedelta(days=1)
    store.update(batch.id, created_at=batch.created_at - 2 * day)
    aged = store.batches()
    assert batches.remind_and_expire(aged, day, 7 * day) == [batch.id]
    assert batches.remind_and_expire(store.batches(), day, 7 * day) == []  # not twice
    store.update(batch.id, created_at=batch.created_at - 8 * day)
    assert batches.remind_and_expire(store.batches(), day, 7 * day) == [batch.id]
    assert store.get_batch(batch.id).status is BatchStatus.EXPIRED
    assert batches.approve(batch.id, "UAPP1").refusal is Refusal.ALREADY_DECIDED


def test_a_whole_list_is_checked_with_one_read_of_the_store(world, monkeypatch):
    """prepare looks open requests up once for the whole list, by address (an index), not
    once per person."""
    _, store, service, batches = world
    service.submit(InviteDetails(email="open@example.com"), "UREQ", None)
    reads = []
    original = store.open_addresses
    monkeypatch.setattr(store, "open_addresses", lambda *a: reads.append(1) or original(*a))
    prepared = batches.prepare([*people(50), Person("open@example.com")])
    assert len(prepared.entries) == 50 and reads == [1]
    assert [s.reason for s in prepared.skipped] == ["open"]
