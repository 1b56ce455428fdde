"""Issue 17, items 2 and 3: an invitation whose answer was lost (a read timeout, a connection
lost mid-request, a 5xx, a success that is not an invitation) is unsure - looked for in awork at
growing intervals within INVITE_SETTLE_SECONDS, held under its lease - and sent again only once
awork confirms the person absent after that window. The store's clock is faked: the minutes of
the window pass at once."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.domain.batches import BatchStatus
from bot.domain.details import InviteDetails
from bot.domain.people import Person
from bot.domain.records import Status
from bot.domain.settling import Settling
from bot.services.batches import BatchService
from bot.services.invites import InviteService
from bot.services.leases import Alarm
from bot.store import SqliteStore
from tests.fakes.awork import FakeAwork, Fault
from tests.fakes.clock import StoreClock
from tests.fakes.services import in_process_service

APPROVERS = frozenset({"UAPP1", "UAPP2"})


class SlowAwork:
    """The fake awork behind answers that get lost. `plan` says, POST by POST, what becomes
    of it: "late" (the answer times out; awork creates the invitation only at `finish()`),
    "lost" (awork creates it, the answer times out), "never" (times out, nothing created),
    "reset" (created, then the connection breaks), "ok" (answered as usual); POSTs past
    the plan are answered as usual."""

    def __init__(self, fake: FakeAwork, plan: list[str] | None = None) -> None:
        self.fake = fake
        self.plan = list(plan or [])
        self.late: list[httpx.Request] = []
        self.lookups = 0
        self.on_lookup = None
        self.on_post = None  # called as each POST arrives

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith("/users"):
            self.lookups += 1
            if self.on_lookup is not None:
                self.on_lookup()
        if not (request.method == "POST" and request.url.path.endswith("/invitations")):
            return self.fake.handler(request)
        if self.on_post is not None:
            self.on_post()
        step = self.plan.pop(0) if self.plan else "ok"
        if step in ("ok", "lost", "reset"):
            answer = self.fake.handler(request)
            if step == "ok":
                return answer
        else:
            self.fake.requests.append(request)  # received; nothing created (yet)
            if step == "late":
                self.late.append(request)
        if step == "reset":
            raise httpx.ReadError("connection reset by peer", request=request)
        raise httpx.ReadTimeout("timed out", request=request)

    def finish(self) -> None:
        """awork finishes the invitations it was still working on."""
        for request in self.late:
            self.fake._route(request, "/invitations")
        self.late.clear()


@pytest.fixture
def world(tmp_path):
    fake = FakeAwork()
    slow = SlowAwork(fake)
    store = SqliteStore(str(tmp_path / "db.sqlite"))
    clock = StoreClock(store)
    service = in_process_service(store, APPROVERS, slow, instance_id="one")
    slow.lookups = 0  # the catalog's first reading
    yield fake, slow, store, clock, service
    store.close()


def posts(fake: FakeAwork) -> int:
    return len(fake.calls("POST", "/invitations"))


def approved(service: InviteService, email: str = "ada@example.com") -> str:
    request = service.submit(InviteDetails(email=email), "UREQ", None)
    assert service.approve(request.id, "UAPP1").ok
    return request.id


def invite(service: InviteService, request_id: str):
    """Invite under the claim the approval took, as the approval handler does."""
    return service.invite(request_id, service.store.get(request_id).claim_id)


def look(service: InviteService, request_id: str):
    """What a sweep does with a due request: take it over once its lease ran out, and look."""
    return service.recover(service.store.get(request_id))


def lease_left(store, request_id: str) -> float:
    return (store.get(request_id).claim_until - store.now()).total_seconds()


def test_a_read_timeout_is_unsure_and_awork_is_asked_later_not_at_once(world):
    """The POST timed out while awork was still creating the invitation: no lookup and no
    second POST right away; the first look after 5 s does not find it yet, the next (10 s
    later) does: invited without a code, after exactly one POST."""
    fake, slow, store, clock, service = world
    slow.plan = ["late"]
    request = invite(service, approved(service))
    assert request.status is Status.INVITING and request.unsure_since == store.now()
    assert slow.lookups == 0 and posts(fake) == 1 and lease_left(store, request.id) == 5
    assert look(service, request.id) is None  # its lease runs until the look is due
    clock.advance(5)
    request = look(service, request.id)
    assert request.status is Status.INVITING and request.unsure_checks == 1
    assert slow.lookups == 1 and lease_left(store, request.id) == 10
    slow.finish()  # awork is done at last
    clock.advance(10)
    request = look(service, request.id)
    assert request.status is Status.INVITED and request.result.invitation_code is None
    assert request.unsure_since is None and request.failure is None
    assert posts(fake) == 1 and len(fake.invitations) == 1
    events = [e.event for e in store.audit() if e.request_id == request.id]
    assert events.count("invite_unsure") == 1 and "recovering" not in events


@pytest.mark.parametrize(
    ("plan", "fault", "code"),
    [
        (["lost"], None, "timeout"),
        (["reset"], None, "connection-lost"),
        ([], Fault(503, after_processing=True, path="/invitations"), "http-503"),
        ([], Fault(200, after_processing=True, path="/invitations", raw=b"<html>ok</html>"), "unreadable-answer"),
        ([], Fault(201, after_processing=True, path="/invitations", body={"ok": True}), "unreadable-answer"),
    ],
    ids=["read-timeout", "connection-lost", "5xx", "not-json", "wrong-shape"],
)  # fmt: skip
def test_every_lost_answer_is_unsure_and_found_later(world, plan, fault, code):
    """awork created the invitation but its answer was lost - timed out, cut off, a 5xx, a
    success that is not JSON or not an invitation: unsure (never "refused"), and found at
    the first look: invited, one POST."""
    fake, slow, store, clock, service = world
    slow.plan = plan
    if fault is not None:
        fake.fail_next.append(fault)
    request = invite(service, approved(service))
    assert request.status is Status.INVITING and request.failure is None
    unsure = [e for e in store.audit() if e.event == "invite_unsure"]
    assert [e.detail["code"] for e in unsure] == [code]
    clock.advance(5)
    request = look(service, request.id)
    assert request.status is Status.INVITED and request.result.invitation_code is None
    assert posts(fake) == 1 and len(fake.invitations) == 1


def test_absent_after_the_window_is_sent_exactly_once_more(world):
    """Nothing was created: awork is asked at 5, 15, 35, 75 s and at the window's end (120
    s), each look sending nothing; only then, absent, the POST goes once more - and invites,
    with a code this time."""
    fake, slow, store, clock, service = world
    slow.plan = ["never"]
    request_id = approved(service)
    invite(service, request_id)
    waits = []
    while store.get(request_id).status is Status.INVITING:
        assert posts(fake) == 1
        wait = lease_left(store, request_id)
        waits.append(wait)
        clock.advance(wait)
        look(service, request_id)
    assert waits == [5, 10, 20, 40, 45]
    request = store.get(request_id)
    assert request.status is Status.INVITED and request.result.invitation_code is not None
    assert posts(fake) == 2 and len(fake.invitations) == 1
    assert [e.event for e in store.audit() if e.event.startswith("invite_")] == [
        "invite_unsure",
        "invite_resent",
    ]


def test_absent_after_two_windows_fails_for_an_approver_to_try_again(world):
    """The POST sent again after a confirmed absence loses its answer too, and awork again
    has nobody after its window: failed, worth a retry - never a third POST on a guess."""
    fake, slow, store, clock, service = world
    slow.plan = ["never", "never"]
    request_id = approved(service)
    invite(service, request_id)
    for _ in range(20):
        if store.get(request_id).status is not Status.INVITING:
            break
        clock.advance(lease_left(store, request_id))
        look(service, request_id)
    request = store.get(request_id)
    assert request.status is Status.FAILED and request.failure.retryable
    assert (
        "lost twice" in request.failure.message and "nobody was invited" in request.failure.message
    )
    assert posts(fake) == 2 and fake.invitations == []
    assert request.unsure_since is None and not request.resent  # a retry starts afresh


def test_the_window_counts_from_the_lost_answer_even_when_the_sweep_comes_late(world):
    """A look that comes long after it was due (the sweep was late) but uses awork's user
    list read before the window ended confirms nothing: awork is asked afresh first."""
    fake, slow, _store, clock, service = world
    slow.plan = ["never"]
    request_id = approved(service)
    invite(service, request_id)
    clock.advance(5)
    look(service, request_id)  # reads the user list at 5 s
    clock.advance(200)  # the next look, due at 15 s, is made at 205 s
    lookups = slow.lookups
    request = look(service, request_id)
    assert slow.lookups == lookups + 1  # read again: the one from 5 s proves nothing
    assert request.status is Status.INVITED and posts(fake) == 2


def test_a_member_from_before_found_while_unsure_is_already_in(world):
    """The address belonged to a member long before: the look says so - already a member,
    not invited - and nothing is sent again."""
    fake, slow, _store, clock, service = world
    slow.plan = ["never"]
    request_id = approved(service, "owner@ncnstn.com")
    invite(service, request_id)
    clock.advance(5)
    request = look(service, request_id)
    assert request.status is Status.FAILED and request.failure.code == "already-exist-error"
    assert posts(fake) == 1


def test_looks_due_together_share_one_reading_of_awork_users(world):
    """Ten unsure requests due at the same time: one reading of awork's user list answers
    all ten looks."""
    fake, slow, store, clock, service = world
    slow.plan = ["late"] * 10
    ids = [approved(service, f"p{i}@example.com") for i in range(10)]
    for request_id in ids:
        invite(service, request_id)
    slow.finish()
    clock.advance(5)
    for request_id in ids:
        look(service, request_id)
    assert slow.lookups == 1
    assert {store.get(i).status for i in ids} == {Status.INVITED} and posts(fake) == 10


def test_an_unsure_request_outlives_its_holder_and_is_found_by_the_due_index(world):
    """The holder crashed while the request was unsure: nothing is in memory anywhere. The
    store's due index names it once its look is due - not before - and another instance
    settles it: invited, one POST."""
    fake, slow, store, clock, service = world
    slow.plan = ["late"]
    request_id = approved(service)
    invite(service, request_id)  # ... and this instance is gone
    other = in_process_service(store, APPROVERS, slow, instance_id="two")
    slow.lookups = 0
    assert store.claim_due("two", hold=60) == [] and other.recover(store.get(request_id)) is None
    slow.finish()
    clock.advance(5)
    due = store.claim_due("two", hold=60)
    assert [r.id for r in due] == [request_id]
    request = other.recover(due[0])
    assert request.status is Status.INVITED and request.claimed_by == "two"
    assert posts(fake) == 1


def test_no_look_is_made_while_another_holders_lease_is_live(world):
    """While one instance looks (its lease renewed for the call), another instance's sweep
    cannot take the request over and looks at nothing."""
    _fake, slow, store, clock, service = world
    slow.plan = ["late"]
    request_id = approved(service)
    invite(service, request_id)
    other = in_process_service(store, APPROVERS, slow, instance_id="two")
    slow.lookups = 0
    clock.advance(5)
    seen = []

    def meanwhile() -> None:
        if not seen:  # the first instance is reading awork's users right now
            seen.append(other.recover(store.get(request_id)))

    slow.on_lookup = meanwhile
    request = look(service, request_id)
    assert seen == [None] and slow.lookups == 1
    assert request.status is Status.INVITING and request.claimed_by == "one"


def test_a_batch_in_slow_awork_posts_each_person_once(world):
    """A bulk run while awork is slower than the timeout: every POST's answer is lost (half
    of them were created by then, half never). The run does not wait in a thread: it pauses,
    says how many are unsure, and is taken up again as its members' looks come due - the
    created ones found, the others sent once more after the window. POSTs = people plus the
    confirmed-absent ones; everyone is invited once."""
    fake, slow, store, clock, service = world
    batches = BatchService(service, concurrency=4)
    people = [Person(f"b{i}@example.com") for i in range(6)]
    slow.plan = ["lost", "never"] * 3
    batch = batches.submit(batches.prepare(people), "UREQ", None)
    assert batches.approve(batch.id, "UAPP1").ok
    batch = batches.run(batch.id, store.get_batch(batch.id).claim_id)
    assert batch.status is BatchStatus.RUNNING and batch.unsure == 6 and posts(fake) == 6
    for _ in range(20):
        if batch.status is BatchStatus.DONE:
            break
        clock.advance(max(0.0, (batch.claim_until - store.now()).total_seconds()))
        claimed = batches.take_over(batch)
        assert claimed is not None
        batch = batches.run(batch.id, claimed.claim_id)
    assert batch.status is BatchStatus.DONE and batch.unsure == 0
    summary = batches.summary(batch)
    assert len(summary.invited) == 6 and summary.failed == []
    assert posts(fake) == 9 and len(fake.invitations) == 6
    emails = [json.loads(r.content)["email"] for r in fake.calls("POST", "/invitations")]
    assert all(emails.count(p.email) <= 2 for p in people)
    assert "batch_recovering" not in [e.event for e in store.audit()]


def test_the_settle_schedule_doubles_and_ends_on_the_window():
    """Looks 5, 10, 20, 40 s apart, the last one on the window's end; after it (awork could
    not be asked), a minute apart."""
    settling = Settling(window=timedelta(seconds=120))
    since = datetime(2025, 1, 1, tzinfo=UTC)
    at, offsets = since, []
    for checks in range(6):
        at = settling.next_check(since, checks, at)
        offsets.append((at - since).total_seconds())
    assert offsets == [5, 15, 35, 75, 120, 180]
    assert not settling.over(since, since + timedelta(seconds=119))
    assert settling.over(since, since + timedelta(seconds=120))


def test_the_sweeps_alarm_wakes_it_when_a_look_is_due():
    """The sweeper waits its round unless a look is due sooner: then it wakes at that time;
    a stop wakes it at once."""
    alarm = Alarm()
    started = time.monotonic()
    alarm.set(0.05)
    alarm.wait(30)
    assert 0.04 <= time.monotonic() - started < 5
    threading.Timer(0.02, alarm.ring).start()
    started = time.monotonic()
    alarm.wait(30)
    assert time.monotonic() - started < 5
