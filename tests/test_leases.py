"""Issue 10 in the invite service: work leases renewed before each awork request, connection
failures retried, an already-exist-error after a possibly-sent POST settled by a lookup, and
the archive still answering `/invite status`."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from bot.awork.errors import AworkUnavailable
from bot.domain.details import InviteDetails
from bot.domain.people import Person
from bot.domain.records import Status
from bot.services.batches import BatchService
from bot.services.invites import InviteService
from bot.store import SqliteStore
from tests.fakes.awork import FakeAwork
from tests.fakes.clock import StoreClock
from tests.fakes.services import in_process_service

APPROVERS = frozenset({"UAPP1", "UAPP2"})


class Wrapped:
    """The fake awork behind a hook that sees (and may change) each request first."""

    def __init__(self, fake: FakeAwork) -> None:
        self.fake = fake
        self.before = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.before is not None:
            answer = self.before(request)
            if answer is not None:
                return answer
        return self.fake.handler(request)


@pytest.fixture
def world(tmp_path):
    fake = FakeAwork()
    wrapped = Wrapped(fake)
    store = SqliteStore(str(tmp_path / "db.sqlite"))
    service = in_process_service(
        store,
        APPROVERS,
        wrapped,
        timeout=httpx.Timeout(6.0, connect=2.0),
        lease_margin=3.0,
        instance_id="me",
    )
    yield fake, wrapped, store, service
    store.close()


def is_post(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path.endswith("/invitations")


def approved(service: InviteService, email: str = "ada@example.com") -> str:
    request = service.submit(InviteDetails(email=email), "UREQ", None)
    assert service.approve(request.id, "UAPP1").ok
    return request.id


def invite(service: InviteService, request_id: str):
    """Invite under the claim the approval took (as the approval handler does)."""
    return service.invite(request_id, service.store.get(request_id).claim_id)


def test_the_lease_outlives_the_longest_awork_request_and_is_renewed_before_each(world):
    """The work lease is connect + write + read timeouts plus the margin, and right before
    the POST leaves it runs at least that long from then, on the store's clock."""
    _fake, wrapped, store, service = world
    assert service.work_lease == 2.0 + 6.0 + 6.0 + 3.0
    request_id = approved(service)
    store.update(request_id, claim_until=store.now() + timedelta(seconds=1))  # nearly out
    left_at_send = []

    def look(request: httpx.Request) -> None:
        if is_post(request):
            held = store.get(request_id)
            left_at_send.append((held.claimed_by, (held.claim_until - store.now()).total_seconds()))

    wrapped.before = look
    assert invite(service, request_id).status is Status.INVITED
    [(holder, left)] = left_at_send
    assert holder == "me" and left > service.work_lease - 1


def test_what_is_noted_for_a_claims_renewal_is_written_by_that_claims_renewal_only(world):
    """Changes noted for the next renewal of one request's claim are not written by a renewal
    of another request, nor of the same request under another claim - only by its own."""
    _fake, _wrapped, store, service = world
    ada, bob = approved(service), approved(service, "bob@example.com")
    cy = approved(service, "cy@example.com")
    ada_claim = store.get(ada).claim_id
    service.work.with_next_renewal(ada, ada_claim, invitee_slack_id="UADA")
    assert invite(service, bob).invitee_slack_id is None  # another request's renewals
    service.work.with_next_renewal(ada, "an-older-claim", invitee_slack_id="UOLD")
    assert invite(service, ada).invitee_slack_id is None  # another claim's
    cy_claim = store.get(cy).claim_id
    service.work.with_next_renewal(cy, cy_claim, invitee_slack_id="UCY")
    service.work.with_next_renewal(cy, cy_claim, also=lambda current: {"reminder_told": True})
    invited = invite(service, cy)
    assert invited.invitee_slack_id == "UCY" and invited.reminder_told  # both, one renewal


def test_a_lost_lease_stops_the_post_before_it_is_sent(world):
    """This thread stalled past its lease and another instance took the request over (a new
    claim): its renewal before the POST is refused, it sends nothing, and writes nothing."""
    fake, _, store, service = world
    request_id = approved(service)
    mine = store.get(request_id)
    store.update(request_id, claim_until=store.now() - timedelta(seconds=1))
    ok, theirs = store.transition(
        request_id, {Status.INVITING}, Status.INVITING, claim=("other", 60), claim_expired=True
    )
    assert ok
    result = service.inviting.settle(mine, look_first=False)
    assert fake.calls("POST", "/invitations") == []
    assert result.status is Status.INVITING and result.claim_id == theirs.claim_id


def test_a_stale_claim_of_the_same_process_cannot_finish_the_request(world):
    """Two claims by the same process (a stalled thread, then a retry): the older one's
    outcome is not written over the newer claim."""
    _, _, store, service = world
    request_id = approved(service)
    old = store.get(request_id)
    store.transition(request_id, {Status.INVITING}, Status.INVITING, claim=("me", 60))
    failed = service.inviting._fail(old, AworkUnavailable("timeout", "late"))
    assert failed.status is Status.INVITING and failed.failure is None


def test_a_refused_connection_is_retried_and_invites_once(world):
    """Connection refused on the first five attempts (more than the transport's own retries):
    nothing reached awork, so the service tries again after a backoff, without a lookup."""
    fake, wrapped, _, service = world
    refused = []

    def refuse(request: httpx.Request) -> None:
        if is_post(request) and len(refused) < 5:
            refused.append(1)
            raise httpx.ConnectError("connection refused", request=request)

    wrapped.before = refuse
    lookups = len(fake.calls("GET", "/users"))
    request = invite(service, approved(service))
    assert request.status is Status.INVITED and request.result.invitation_code is not None
    assert len(fake.invitations) == 1 and len(fake.calls("GET", "/users")) == lookups


def test_a_connect_timeout_is_not_ambiguous(world):
    """A connect timeout sent nothing: retried like a refused connection, no lookup first."""
    fake, wrapped, _, service = world
    timeouts = []

    def slow_connect(request: httpx.Request) -> None:
        if is_post(request) and len(timeouts) < 5:
            timeouts.append(1)
            raise httpx.ConnectTimeout("connect timed out", request=request)

    wrapped.before = slow_connect
    lookups = len(fake.calls("GET", "/users"))
    assert invite(service, approved(service)).status is Status.INVITED
    assert len(fake.invitations) == 1 and len(fake.calls("GET", "/users")) == lookups


def test_bulk_members_are_retried_after_refused_connections(world):
    """The same in a bulk run: every member invited once although connections were refused."""
    fake, wrapped, _, service = world
    batches = BatchService(service, concurrency=4)
    refused: dict[str, int] = {}

    def refuse(request: httpx.Request) -> None:
        if is_post(request):
            email = json.loads(request.content)["email"]
            if refused.get(email, 0) < 5:
                refused[email] = refused.get(email, 0) + 1
                raise httpx.ConnectError("connection refused", request=request)

    wrapped.before = refuse
    people = [Person(f"p{i}@example.com") for i in range(6)]
    batch = batches.submit(batches.prepare(people), "UREQ", None)
    assert batches.approve(batch.id, "UAPP1").ok
    done = batches.run(batch.id, batches.store.get_batch(batch.id).claim_id)
    assert len(batches.summary(done).invited) == 6 and len(fake.invitations) == 6


def test_already_exists_after_a_lost_answer_is_our_invitation_not_a_member(world):
    """The POST's answer was lost (a timeout after awork created it) and awork's user list
    does not show the person even after the settle window; the POST sent once more gets
    already-exist-error. A lookup then finds the user created after our first attempt:
    invited (code unknown), never "already a member"."""
    fake, wrapped, store, service = world
    clock = StoreClock(store)
    state = {"posts": 0, "hidden": True}

    def lose_answer(request: httpx.Request) -> httpx.Response | None:
        if is_post(request):
            state["posts"] += 1
            if state["posts"] == 1:
                fake.handler(request)
                raise httpx.ReadTimeout("timed out", request=request)
            answer = fake.handler(request)
            state["hidden"] = False  # awork's list catches up
            return answer
        if request.method == "GET" and request.url.path.endswith("/users") and state["hidden"]:
            return httpx.Response(200, json=[u for u in fake.users if "ada" not in json.dumps(u)])
        return None

    wrapped.before = lose_answer
    request = invite(service, approved(service))
    while request.status is Status.INVITING:  # each look due in turn, awork not showing it
        clock.advance((request.claim_until - store.now()).total_seconds())
        request = service.recover(request)
    assert state["posts"] == 2 and len(fake.invitations) == 1
    assert request.status is Status.INVITED and request.result.invitation_code is None
    assert request.failure is None


def test_a_member_from_before_is_still_reported_as_already_in(world):
    """Without any earlier attempt, already-exist-error stays what it says: a member."""
    _fake, _, _, service = world
    request = invite(service, approved(service, "owner@ncnstn.com"))
    assert request.status is Status.FAILED and request.failure.code == "already-exist-error"


def test_an_archived_request_is_still_visible_by_id_and_in_the_audit(world):
    """Settled past retention, a request leaves the live store but `status <id>` (visible
    request) and the audit log still show it."""
    _, _, store, service = world
    request = service.submit(InviteDetails(email="old@example.com"), "UREQ", None)
    service.deny(request.id, "UAPP1", "not now")
    store.update(request.id, approval_message={"channel": "C", "ts": "1"}, shown_status="denied")
    store.update(request.id, waiting_told=True, outcome_told=True)
    store.retention = timedelta(seconds=0)
    assert store.archive_settled() == 1
    assert store.listed("UREQ") == []
    shown = service.visible_request(request.id, "UREQ")
    assert shown is not None and shown.status is Status.DENIED and shown.deny_reason == "not now"
    assert "denied" in [e.event for e in store.audit() if e.request_id == request.id]


def test_a_claim_taken_over_by_this_processs_own_sweep_is_not_invited_twice(world):
    """The approval's thread is slow (Slack) past its lease; this same process's sweep takes
    the request over (a new claim, same owner) and is inviting it. When the approval's thread
    gets to invite, the claim it took is not the request's any more: it sends nothing, and
    the sweep's claim sends the one POST."""
    fake, _, store, service = world
    request_id = approved(service)
    approvals_claim = store.get(request_id).claim_id
    store.update(request_id, claim_until=store.now() - timedelta(seconds=1))
    ok, sweeps = store.transition(
        request_id, {Status.INVITING}, Status.INVITING, claim=("me", 60), claim_expired=True
    )
    assert ok and sweeps.claimed_by == "me" and sweeps.claim_id != approvals_claim
    assert service.invite(request_id, approvals_claim).status is Status.INVITING
    assert fake.calls("POST", "/invitations") == []
    assert service.inviting.settle(sweeps, look_first=True).status is Status.INVITED
    assert len(fake.calls("POST", "/invitations")) == 1


def test_a_batch_run_goes_only_under_the_claim_its_caller_took(world):
    """A run whose approval's claim was taken over meanwhile does nothing; the takeover's
    claim runs it, one POST per person."""
    fake, _, store, service = world
    batches = BatchService(service, concurrency=4)
    batch = batches.submit(
        batches.prepare([Person(f"q{i}@example.com") for i in range(3)]), "UREQ", None
    )
    approval = batches.approve(batch.id, "UAPP1").request
    store.update(batch.id, claim_until=store.now() - timedelta(seconds=1))
    takeover = batches.take_over(store.get_batch(batch.id))
    assert takeover is not None and takeover.claim_id != approval.claim_id
    assert batches.run(batch.id, approval.claim_id).status.value == "running"
    assert fake.calls("POST", "/invitations") == []
    assert batches.run(batch.id, takeover.claim_id).status.value == "done"
    assert len(fake.calls("POST", "/invitations")) == 3


def test_a_claim_taken_over_after_the_approvals_last_write_sends_nothing(world):
    """The approval's thread invites with the request as it last wrote it (no read); its claim
    was taken over since: the renewal before the first awork request finds that out, and
    nothing is sent under the old claim."""
    fake, _, store, service = world
    request_id = approved(service)
    as_written = store.get(request_id)
    store.update(request_id, claim_until=store.now() - timedelta(seconds=1))
    ok, sweeps = store.transition(
        request_id, {Status.INVITING}, Status.INVITING, claim=("me", 60), claim_expired=True
    )
    assert ok and sweeps.claim_id != as_written.claim_id
    assert service.invite(request_id, as_written.claim_id, as_written).claim_id == sweeps.claim_id
    assert fake.calls("POST", "/invitations") == [] and not store.get(request_id).uncertain
    assert service.inviting.settle(sweeps, look_first=True).status is Status.INVITED
    assert len(fake.calls("POST", "/invitations")) == 1
