"""The one-statement compare-and-set's edges on PostgreSQL (bot/store/postgres_cas.py), and an
approval's claim across a slow Slack lookup: each case a review of the day's store work found,
each a way to lose a change or to send a second invitation."""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from types import SimpleNamespace

import httpx
import psycopg
import pytest

from bot.domain.details import InviteDetails
from bot.domain.records import Status
from bot.store import SqliteStore
from bot.store.budget import StoreUnavailable
from bot.store.facets import changed
from handlers.actions import invite_approved
from tests.fakes.awork import FakeAwork
from tests.fakes.services import in_process_service


def new_request(store):
    service = in_process_service(store, {"UAPP1"}, FakeAwork().handler)
    return service.submit(InviteDetails(email=f"x{secrets.token_hex(3)}@example.com"), "UREQ", None)


def test_a_change_whose_commit_was_lost_is_not_the_base_of_the_next(pg_url):
    """A change whose commit never happened is not remembered as the version this replica saw:
    another replica's change made since survives this replica's next change."""
    from bot.store.postgres import PostgresStore

    a, b = PostgresStore(pg_url), PostgresStore(pg_url)
    try:
        request = new_request(b)
        run = a._db.run

        def commit_lost(work, tx=False):
            if tx:  # the locked read-check-write runs, then its commit is lost for good
                with a._db.pool.connection() as conn, conn.transaction(force_rollback=True):
                    work(conn)
                raise StoreUnavailable("PostgreSQL: connection lost")
            return run(work, tx)

        a._db.run = commit_lost
        with pytest.raises(StoreUnavailable):
            a.update(request.id, invitee_slack_id="UNEVER")
        a._db.run = run
        b.update(request.id, delivery_failures=5)  # another replica's change
        a.now()  # a fresh clock: the one-statement path is open
        a.update(request.id, outcome_told=True)
        final = b.read(request.id)
        assert final.delivery_failures == 5 and final.invitee_slack_id is None
        assert final.outcome_told
    finally:
        a.close()
        b.close()


def test_two_identical_changes_from_one_version_win_once(pg_url):
    """Two callers making the same change from the same version: one wins, the other is told
    it lost - an identical document written by another is not taken for its own."""
    from bot.store.postgres import PostgresStore

    store = PostgresStore(pg_url)
    try:
        request = new_request(store)
        before = store.read(request.id)
        store._known.tick(before.updated_at - timedelta(seconds=2))  # a slow read's older time
        wins = []

        def same(current, now):
            if current is None or current.invitee_slack_id is not None:
                return None
            return changed(current, now, {"invitee_slack_id": "U1"})

        first = True

        def racing(current, now):
            nonlocal first
            if first:  # meanwhile "another thread" makes the same change from the same version
                first = False
                wins.append(store._mutate(request.id, same)[0])
            return same(current, now)

        wins.append(store._mutate(request.id, racing)[0])
        after = store.read(request.id)
        assert wins.count(True) == after.version - before.version == 1
    finally:
        store.close()


def test_an_approval_decided_on_this_replicas_old_version_is_decided_again(pg_url):
    """A replica decides first on the version it saw last: refused on it (another replica has
    since settled the invitation as failed, worth retrying), it decides again on the stored
    record - an approver's click claims the request for inviting again, once."""
    from bot.domain.records import Failure
    from bot.store.postgres import PostgresStore

    one, two = PostgresStore(pg_url), PostgresStore(pg_url)
    try:
        service = in_process_service(one, {"UAPP1"}, FakeAwork().handler)
        request = service.submit(InviteDetails(email="ada@example.com"), "UREQ", None)
        assert service.approve(request.id, "UAPP1").ok  # `one` saw it inviting last
        failed = Failure(code="answer-lost", message="lost", retryable=True)
        ok, _ = two.transition(request.id, {Status.INVITING}, Status.FAILED, failure=failed)
        assert ok and one.recent(request.id)[0].status is Status.INVITING
        retried = service.approve(request.id, "UAPP1")
        assert retried.ok and retried.request.status is Status.INVITING
        assert retried.request.attempts == 2
    finally:
        one.close()
        two.close()


def test_an_approval_on_a_version_changed_since_is_decided_on_the_stored_one(pg_url):
    """A replica's guess is written only as the very version it decided on: changed since by
    another replica (two approvals needed now), the approval is decided on the stored record -
    a first of two, not a complete one."""
    from bot.store.postgres import PostgresStore

    one, two = PostgresStore(pg_url), PostgresStore(pg_url)
    try:
        service = in_process_service(one, {"UAPP1", "UAPP2"}, FakeAwork().handler)
        request = service.submit(InviteDetails(email="bob@example.com"), "UREQ", None)
        assert two.update(request.id, approvals_needed=2).approvals_needed == 2
        assert one.recent(request.id) == (request, True)  # `one` still knows it needing one
        first = service.approve(request.id, "UAPP1")
        assert first.ok and first.request.status is Status.PENDING
        assert one.get(request.id).approvals == ["UAPP1"]
    finally:
        one.close()
        two.close()


def test_an_approval_guessed_on_a_request_archived_since_is_already_decided(pg_url):
    """The version a replica saw last may be of a request decided and archived since: the
    approval is refused as decided (read from the archive), not as unknown."""
    from bot.services.decisions import Refusal
    from bot.store.postgres import PostgresStore

    one, two = PostgresStore(pg_url), PostgresStore(pg_url)
    try:
        service = in_process_service(one, {"UAPP1"}, FakeAwork().handler)
        request = service.submit(InviteDetails(email="cy@example.com"), "UREQ", None)
        ok, _ = two.transition(request.id, {Status.PENDING}, Status.DENIED, decided_by="UAPP1")
        told = {"approval_message": {"channel": "C", "ts": "1"}, "shown_status": "denied"}
        two.update(request.id, waiting_told=True, outcome_told=True, **told)  # all said: settled
        assert ok and two.archive(two.now() + timedelta(seconds=1)) >= 1
        assert one.recent(request.id) == (request, True)
        refused = service.approve(request.id, "UAPP1")
        assert refused.refusal is Refusal.ALREADY_DECIDED
        assert refused.request.status is Status.DENIED
    finally:
        one.close()
        two.close()


def test_a_change_sent_late_is_judged_on_the_databases_time(pg_url):
    """A one-statement change judged on a time well behind the database's (it waited for a
    connection) is not written so: a lease it sets is never short."""
    from bot.store.postgres import PostgresStore

    store = PostgresStore(pg_url)
    try:
        request = new_request(store)
        reading = store.now()
        with psycopg.connect(pg_url, autocommit=True) as conn:  # last changed a minute ago
            conn.execute(
                "UPDATE records SET doc = jsonb_set(doc, '{updated_at}', to_jsonb(%s::text))"
                " WHERE id = %s",
                ((reading - timedelta(minutes=1)).isoformat(), request.id),
            )
        store.read(request.id)
        store._known._clock = (reading - timedelta(seconds=3), time.monotonic())
        store.update(request.id, invitee_slack_id="U1")
        written = store.read(request.id).updated_at
        assert (store.now() - written).total_seconds() < 1.0
    finally:
        store.close()


def test_an_approval_never_invites_under_a_claim_taken_over_during_its_lookup(tmp_path):
    """Slack's lookup of the invitee outlives the approval's lease and another replica takes
    the request over: the approval sends nothing, under its claim or the other's."""
    fake = FakeAwork()
    store = SqliteStore(str(tmp_path / "db.sqlite"))
    options = {"timeout": httpx.Timeout(6.0, connect=2.0), "lease_margin": 3.0}
    mine = in_process_service(store, {"UAPP1"}, fake.handler, instance_id="me", **options)
    other = in_process_service(store, {"UAPP1"}, fake.handler, instance_id="other", **options)
    request = mine.submit(InviteDetails(email="ada@example.com"), "UREQ", None)
    decision = mine.approve(request.id, "UAPP1")
    assert decision.ok and decision.request.status is Status.INVITING

    def slow_lookup(email):  # meanwhile: the lease runs out, the other replica takes it over
        store.update(request.id, claim_until=store.now() - timedelta(seconds=1))
        ok, _ = store.transition(
            request.id,
            {Status.INVITING},
            Status.INVITING,
            claim=other.work.claim,
            claim_expired=True,
            uncertain=True,
        )
        assert ok
        return "UINVITEE"

    courier = SimpleNamespace(
        slack_user=slow_lookup, sync=lambda _id, **_: None, lease_here=lambda: None
    )
    invite_approved(SimpleNamespace(service=mine, courier=courier), decision.request)
    assert fake.calls("POST", "/invitations") == []
    store.close()
