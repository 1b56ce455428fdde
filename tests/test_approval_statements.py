"""What one approval costs PostgreSQL: the statements and transactions the bot runs from the
Approve click until the request is invited and Slack has been told everything (issue 21).

Every statement of every store method and of the shared rate limiter is counted
(tests/pg_statements.py), each attributed to the store call that ran it and the bot code that
made that call. The breakdown is printed (`pytest -s`); the test holds the
figures at most where they are now (a ratchet), lowered as the statements are cut.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

import psycopg
import pytest

from bot.domain.details import InviteDetails
from bot.domain.records import InviteRequest, Status
from bot.runtime.command import refresh_command
from tests.conftest import APPROVERS, SIGNING_SECRET, approval_request_id
from tests.fakes.awork import ROLE_PM, TEAM_DESIGN
from tests.pg_statements import Counter, install
from tests.slack_requests import ADMIN_CHANNEL, SlackDriver
from tests.test_store import open_engine
from tests.test_store_outages import lose_after_commit

# At most, per approval; a statement outside a transaction block is a transaction of its own.
STATEMENTS = 5  # issue 21's target: 15
TRANSACTIONS = 5  # issue 21's target: 5


@pytest.fixture
def counter(monkeypatch) -> Counter:
    return install(monkeypatch)


@pytest.mark.parametrize("delivery_lease", [None, 20.0])
def test_one_approval_runs_few_statements_in_few_transactions(
    pg_bot, slack, awork, counter, delivery_lease
):
    """One approval on PostgreSQL, delivery included, stays within the statement ratchet - with
    a delivery lease shorter than a round's too (a short SLACK_TIMEOUT) - on a replica that has
    swept (the command's name read)."""
    if delivery_lease is not None:
        pg_bot.deps.courier.delivery_lease = delivery_lease
    slack.members["ada@example.com"] = "UADA"
    driver = SlackDriver(pg_bot.app, SIGNING_SECRET)
    fields = {"email": "ada@example.com", "roleId": ROLE_PM, "teamIds": [TEAM_DESIGN]}
    assert driver.submit_form(fields).status == 200
    request_id = approval_request_id(slack)
    assert pg_bot.deps.wait_idle(10)  # the request is stored and announced
    pg_bot.deps.service.inviting.workspace_id()  # known, as after a replica's first invitation
    refresh_command(pg_bot.store)  # as the sweep does at start and every INVITE_SWEEP_SECONDS

    counter.on = True
    assert driver.click("approve_invite", request_id, APPROVERS[0]).status == 200
    assert pg_bot.deps.wait_idle(20)
    counter.on = False

    request = pg_bot.store.get(request_id)
    assert request.status is Status.INVITED and len(awork.calls("POST", "/invitations")) == 1
    assert not request.needs_delivery() and request.lease_owner is None
    assert slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "DUADA")
    assert slack.wait_for("chat.update", where=lambda c: c.args["channel"] == ADMIN_CHANNEL)
    print("\n" + counter.report())
    statements = sum(counter.statements.values())
    transactions = sum(counter.transactions.values())
    assert statements <= STATEMENTS and transactions <= TRANSACTIONS, counter.report()


def test_a_lease_taken_with_a_decision_too_long_ago_is_taken_again_by_its_round(
    pg_bot, slack, awork, counter
):
    """A delivery round begins on the lease its change took only while that is fresh: older
    (a slow Slack lookup in between), the round takes it with a write of its own."""
    slack.members["ada@example.com"] = "UADA"
    pg_bot.deps.courier.fresh_for = 0.0  # every lease taken before the round is too old
    driver = SlackDriver(pg_bot.app, SIGNING_SECRET)
    fields = {"email": "ada@example.com", "roleId": ROLE_PM, "teamIds": [TEAM_DESIGN]}
    assert driver.submit_form(fields).status == 200
    request_id = approval_request_id(slack)
    assert pg_bot.deps.wait_idle(10)

    counter.on = True
    assert driver.click("approve_invite", request_id, APPROVERS[0]).status == 200
    assert pg_bot.deps.wait_idle(20)
    counter.on = False

    request = pg_bot.store.get(request_id)
    assert request.status is Status.INVITED and not request.needs_delivery()
    assert request.lease_owner is None
    assert counter.statements["courier._sync -> leasing.leased"] == 2, counter.report()
    assert counter.statements["posts._hold_delivery -> leasing.leased"] == 2, counter.report()


def test_a_version_seen_before_another_replicas_change_is_not_written_over(pg_url):
    """A replica's one-statement compare-and-set on a version another has changed since, or
    refused on it, is decided again on the stored version."""
    from bot.store.postgres import PostgresStore

    one, two = PostgresStore(pg_url), PostgresStore(pg_url)
    try:
        request = one.add(InviteRequest(requester_id="U1", details=InviteDetails(email="a@x.io")))
        assert two.lease(request.id, "B", 30) is True
        assert one.lease(request.id, "A", 30) is False  # `one` saw B's lease
        two.release(request.id, "B")
        assert one.lease(request.id, "A", 30) is True  # refused on what it saw: read again
        ok, moved = two.transition(request.id, {Status.PENDING}, Status.INVITING)  # stale too
        assert ok and moved.lease_owner == "A" and moved.version == 4
        ok, current = one.transition(request.id, {Status.PENDING}, Status.DENIED)
        assert not ok and current.status is Status.INVITING  # `one` saw it pending
        assert one.get(request.id) == two.get(request.id) == moved
    finally:
        one.close()
        two.close()


def test_a_change_in_one_statement_is_never_judged_ahead_of_the_databases_clock(pg_url):
    """The time a one-statement change is made at is the database's, at most as late as its
    clock when the statement ran."""
    from bot.store.postgres import PostgresStore

    store = PostgresStore(pg_url)
    try:
        request = store.add(InviteRequest(requester_id="U1", details=InviteDetails(email="a@x.io")))
        store.get(request.id)
        for _ in range(20):
            before = store.now()
            updated = store.update(request.id, waiting_told=True)
            assert before <= updated.updated_at <= store.now()
            assert store.lease(request.id, "A", 1) and store.get(request.id).lease_until <= (
                store.now() + timedelta(seconds=1)
            )
    finally:
        store.close()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_delivery_lease_is_renewed_or_given_back_in_one_write(engine, tmp_path, request):
    """After a round: renewed while the record as stored needs more, else released; never
    another holder's."""

    store = open_engine(engine, tmp_path, request)
    try:
        record = store.add(InviteRequest(requester_id="U1", details=InviteDetails(email="a@x.io")))
        assert store.renew_or_release(record.id, "A", 30, more=lambda r: True) is None
        assert store.leased(record.id, "A", 30).lease_owner == "A"
        kept = store.renew_or_release(record.id, "A", 60, more=lambda r: True)
        assert kept.lease_owner == "A" and kept.lease_until > store.now() + timedelta(seconds=50)
        assert store.renew_or_release(record.id, "B", 30, more=lambda r: False) is None
        given = store.renew_or_release(record.id, "A", 30, more=lambda r: False)
        assert given.lease_owner is None and given.lease_until is None
        assert store.get(record.id) == given and store.lease(record.id, "B", 30)
    finally:
        store.close()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_what_a_round_noted_is_written_with_its_lease_and_judged_with_it(engine, tmp_path, request):
    """`noted` (what a message shows now) is written with the lease's release or renewal and
    judged with it - unless another changed the record since the round saw it: then the
    message is shown anew in another round."""
    store = open_engine(engine, tmp_path, request)
    try:
        record = store.add(InviteRequest(requester_id="U1", details=InviteDetails(email="a@x.io")))
        seen = store.leased(record.id, "A", 30).version
        judged = []

        def more(current) -> bool:
            judged.append(current.shown_status)
            return current.shown_status is not current.status

        shown = {"shown_status": "pending"}
        given = store.renew_or_release(record.id, "A", 30, more, noted=shown, seen=seen)
        assert judged == [Status.PENDING] and given.lease_owner is None
        assert store.get(record.id).shown_status is Status.PENDING

        seen = store.leased(record.id, "A", 30).version
        store.update(record.id, shown_status=None)  # another: a first of two approvals
        kept = store.renew_or_release(record.id, "A", 30, more, noted=shown, seen=seen)
        assert judged[1:] == [None] and kept.lease_owner == "A" and kept.shown_status is None
    finally:
        store.close()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_changes_audit_entry_is_written_with_it_and_only_with_it(engine, tmp_path, request):
    """An audit event given with a change is written once when the change is made (with it,
    after the answer; by `record` under a budget) and not at all when it is refused."""
    from bot.store.budget import budget

    store = open_engine(engine, tmp_path, request)
    try:
        one, two = (
            store.add(InviteRequest(requester_id="U1", details=InviteDetails(email=f"{n}@x.io")))
            for n in ("a", "b")
        )
        audit = ("approved", "UA", {"of": 1})
        assert store.transition(one.id, {Status.PENDING}, Status.INVITING, audit=audit)[0]
        assert not store.transition(one.id, {Status.PENDING}, Status.DENIED, audit=audit)[0]
        with budget(5.0):
            store.transition(two.id, {Status.PENDING}, Status.INVITING, audit=audit)
        store.revise(two.id, lambda r: {"waiting_told": True}, audit=("noted", None, {}))
        events = [(e.event, e.request_id, e.actor, e.detail) for e in store.audit()]
        assert events == [
            ("approved", one.id, "UA", {"of": 1}),
            ("approved", two.id, "UA", {"of": 1}),
            ("noted", two.id, None, {}),
        ]
    finally:
        store.close()


def test_a_one_statement_change_whose_answer_was_lost_is_not_made_twice(pg_url, monkeypatch):
    """The UPDATE of a version seen, with its audit entry, committed just before the
    connection failed: done again, it is recognised as ours - one change, one entry."""
    from bot.store.postgres import PostgresStore

    store = PostgresStore(pg_url)
    try:
        request = store.add(InviteRequest(requester_id="U1", details=InviteDetails(email="a@x.io")))
        store.now()  # the clock read lately: the change is tried in one statement first
        tried, known = [], store._mutate_known
        monkeypatch.setattr(store, "_mutate_known", lambda *a: tried.append(known(*a)))
        lost = lose_after_commit(store, monkeypatch)
        audit = ("approved", "UA", {})
        ok, moved = store.transition(request.id, {Status.PENDING}, Status.INVITING, audit=audit)
        assert lost and tried == [None]  # its answer lost: decided on the locked read
        assert ok and moved.status is Status.INVITING
        assert store.read(request.id).version == request.version + 1
        assert [e.event for e in store.audit()] == ["approved"]
    finally:
        store.close()


def test_a_calls_answer_is_counted_with_the_next_slot_in_its_one_statement(pg_url, counter):
    """The shared rate limiter takes a slot in one statement, which also counts the last
    call from its answer on, not `cap` after it was sent."""
    from bot.store.postgres import PostgresStore

    store = PostgresStore(pg_url)
    try:
        limiter = store.rate_limiter(50, 1000)
        counter.on = True
        first = limiter.acquire()
        limiter.done(first)
        second = limiter.acquire()
        counter.on = False
        assert sum(counter.statements.values()) == 2  # one a call, `done` none of its own
        with psycopg.connect(pg_url) as conn:
            (sent, counted) = conn.execute(
                "SELECT c.counted_at - make_interval(secs => 0.25), c.counted_at FROM awork_calls c"
                " WHERE id = %s",
                (second,),
            ).fetchone()
            (answered,) = conn.execute(
                "SELECT counted_at FROM awork_calls WHERE id = %s", (first,)
            ).fetchone()
        assert answered <= sent < counted  # the first's answer came before the second left
    finally:
        store.close()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_renewal_writes_its_changes_only_under_its_claim(engine, tmp_path, request):
    """`renew(..., uncertain=True)` marks the request with the lease's renewal, and a claim
    that is not the request's any more renews and marks nothing."""

    store = open_engine(engine, tmp_path, request)
    try:
        added = store.add(InviteRequest(requester_id="U1", details=InviteDetails(email="a@x.io")))
        _, held = store.transition(added.id, {Status.PENDING}, Status.INVITING, claim=("A", 30))
        assert not store.renew(added.id, "another claim", 60, uncertain=True)
        assert not store.get(added.id).uncertain
        assert store.renew(added.id, held.claim_id, 60, uncertain=True)
        renewed = store.get(added.id)
        assert renewed.uncertain and renewed.claim_until > held.claim_until
    finally:
        store.close()


def test_a_change_judged_ahead_of_the_databases_clock_is_judged_again(pg_url, monkeypatch):
    """The database's clock behind the time carried on (stepped back): the one-statement
    change is not written, and the locked read-check-write makes it on the database's time."""
    from bot.store.postgres import PostgresStore

    store = PostgresStore(pg_url)
    try:
        added = store.add(InviteRequest(requester_id="U1", details=InviteDetails(email="a@x.io")))
        store.get(added.id)
        real = store._known.get
        ahead = timedelta(minutes=5)
        monkeypatch.setattr(
            store._known, "get", lambda record_id: (real(record_id)[0], store.now() + ahead)
        )
        tried, known = [], store._mutate_known
        monkeypatch.setattr(store, "_mutate_known", lambda *a: tried.append(known(*a)))
        assert store.lease(added.id, "A", 30)
        leased = store.get(added.id)
        assert tried == [None] and leased.lease_until < store.now() + timedelta(seconds=31)
    finally:
        store.close()


def _slots(pg_url: str) -> dict[int, object]:
    with psycopg.connect(pg_url) as conn:
        return dict(conn.execute("SELECT id, counted_at FROM awork_calls").fetchall())


def _claimed(store):
    """A request stored and claimed for inviting: (as stored, as claimed)."""
    added = store.add(InviteRequest(requester_id="U1", details=InviteDetails(email="a@x.io")))
    _, held = store.transition(added.id, {Status.PENDING}, Status.INVITING, claim=("A", 30))
    return added, held


def _answered_call(store, pg_url: str):
    """A limiter with one call made and answered: (limiter, its slot, counted at when sent)."""
    limiter = store.rate_limiter(50, 1000)
    first = limiter.acquire()
    limiter.done(first)
    return limiter, first, _slots(pg_url)[first]


@pytest.mark.parametrize("known", [True, False])
def test_a_renewal_takes_the_rate_limit_slot_of_the_request_it_comes_before(pg_url, counter, known):
    """The work lease's renewal right before an awork request takes that request's slot in the
    same statement (the version this process knows) or the same transaction (a locked read),
    with the answers to earlier calls, and only those; a renewal refused (another claim) takes
    no slot and leaves those answers to be said by a later one."""
    from bot.store.postgres import PostgresStore

    store = PostgresStore(pg_url)
    try:
        added, held = _claimed(store)
        limiter, first, sent_first = _answered_call(store, pg_url)

        refused = limiter.ride()
        assert not store.renew(added.id, "another claim", 60, ride=refused)
        assert refused.slot is None and list(_slots(pg_url)) == [first]

        ride = limiter.ride()
        limiter.done(999)  # an answer that came after the ride was made: said by the next
        if not known:  # as after a write whose answer was lost: the locked read-check-write
            store._known.forget(added.id)
        counter.on = True
        assert store.renew(added.id, held.claim_id, 60, ride=ride)
        counter.on = False
        assert limiter.ride().params["slot_done"] == [999]
        assert sum(counter.transactions.values()) == 1
        assert sum(counter.statements.values()) == (1 if known else 3), counter.report()
        slots = _slots(pg_url)
        assert sorted(slots) == [first, ride.slot]
        assert slots[first] < sent_first  # the first call counted from its answer on
    finally:
        store.close()


def test_renewals_take_slots_only_while_the_limit_has_room(pg_url):
    """Five renewals with a limit of three calls a minute: three take a slot, two are told
    there is no room (and take theirs by waiting, as without a ride)."""
    from bot.store.postgres import PostgresStore

    store = PostgresStore(pg_url)
    try:
        added, held = _claimed(store)
        limiter = store.rate_limiter(1000, 3)
        rides = [limiter.ride() for _ in range(5)]
        for ride in rides:
            assert store.renew(added.id, held.claim_id, 60, ride=ride)
        taken = [ride.slot for ride in rides if ride.slot is not None]
        assert len(taken) == 3 and sorted(_slots(pg_url)) == sorted(taken)
    finally:
        store.close()


class LeasedClient:
    """What `Work` asks of the awork client: how long an attempt takes, and the hook."""

    def longest_attempt(self) -> float:
        return 10.0

    @contextlib.contextmanager
    def before_each_send(self, hook):
        from bot.awork.ratelimit import before_send

        token = before_send.set(hook)
        try:
            yield
        finally:
            before_send.reset(token)


def test_with_postgresql_away_a_request_under_a_lease_is_retried_as_not_sent(pg_url):
    """PostgreSQL away when a request under a work lease is about to leave: it is not sent,
    and fails as a connection failure after the client's attempts (ridden out if the database
    comes back meanwhile) - not at once as a lease lost to another holder."""
    import httpx

    from bot.awork.ratelimit import RateLimitTransport
    from bot.awork.retry import RetryTransport
    from bot.services.leases import Work
    from bot.store.postgres import PostgresStore

    store = PostgresStore(pg_url)
    try:
        added, held = _claimed(store)
        limiter, sent, attempts = store.rate_limiter(50, 1000), [], []

        def awork(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return httpx.Response(200, json={})

        limited = RateLimitTransport(httpx.MockTransport(awork), limiter)

        class Counted(httpx.BaseTransport):
            def handle_request(self, request: httpx.Request) -> httpx.Response:
                attempts.append(request)
                return limited.handle_request(request)

        transport = RetryTransport(Counted(), sleep=lambda seconds: None)
        store._db.pool.close()  # the database away for this process's connections
        with (
            httpx.Client(transport=transport) as client,
            pytest.raises(httpx.ConnectError),
            Work(store, LeasedClient()).holding(added.id, held.claim_id),
        ):
            client.post("https://api.awork.com/api/v1/invitations", json={})
        assert sent == [] and len(attempts) == 4
    finally:
        store.close()


def test_what_a_failed_ride_was_to_write_goes_with_the_renewal_after_it(pg_url, monkeypatch):
    """The write carrying the ride failed once: the request still leaves, after a renewal
    that writes what was to go with the first (`with_next_renewal`)."""
    import httpx

    from bot.awork.ratelimit import RateLimitTransport
    from bot.services.leases import Work
    from bot.store.postgres import PostgresStore

    store = PostgresStore(pg_url)
    try:
        added, held = _claimed(store)
        real, failed, sent = store.renew, [], []

        def renew(*args, ride=None, **changes):
            if ride is not None and not failed:
                failed.append(ride)
                raise psycopg.OperationalError("the connection was cut")
            return real(*args, ride=ride, **changes)

        monkeypatch.setattr(store, "renew", renew)
        limited = RateLimitTransport(
            httpx.MockTransport(lambda request: sent.append(request) or httpx.Response(200)),
            store.rate_limiter(50, 1000),
        )
        work = Work(store, LeasedClient())
        with httpx.Client(transport=limited) as client, work.holding(added.id, held.claim_id):
            work.with_next_renewal(added.id, held.claim_id, uncertain=True)
            client.post("https://api.awork.com/api/v1/invitations", json={})
        assert len(failed) == 1 and len(sent) == 1 and store.get(added.id).uncertain
    finally:
        store.close()


def test_a_renewal_whose_answer_was_lost_says_its_slot_is_not_known(pg_url, monkeypatch):
    """The locked renewal with its ride committed just before the connection failed: done
    again, it is recognised as ours and the ride answered as carried - the earlier calls'
    answers said - with no slot known (the request takes one on its own; the lost one counts
    until it ages out, on the safe side)."""
    from bot.store.postgres import PostgresStore

    store = PostgresStore(pg_url)
    try:
        added, held = _claimed(store)
        limiter, first, sent_first = _answered_call(store, pg_url)
        store._known.forget(added.id)  # the locked read-check-write
        lost = lose_after_commit(store, monkeypatch)
        ride = limiter.ride()
        assert store.renew(added.id, held.claim_id, 60, ride=ride)
        assert lost and ride.slot is None
        slots = _slots(pg_url)
        assert len(slots) == 2 and slots[first] < sent_first
        assert limiter.ride().params["slot_done"] == []  # said once, not again
    finally:
        store.close()
