"""The PostgreSQL connections answering Slack requests are a pool of their own (issue 21): an
ack never waits for connections busy with follow-up work, and their statements are limited by
the connection itself, so a call with its whole time left sends one statement, not four."""

from __future__ import annotations

import time

import pytest

from bot.domain.details import InviteDetails
from bot.domain.records import AuditEvent, InviteRequest, Status
from bot.store import budget
from tests.pg_statements import Counter, install


@pytest.fixture
def counter(monkeypatch) -> Counter:
    return install(monkeypatch)


@pytest.fixture
def pg_store(pg_url, monkeypatch):
    from bot.store.postgres import PostgresStore

    monkeypatch.setattr(budget, "CALL_SECONDS", 0.3)  # the ack connections' own limit
    store = PostgresStore(pg_url, max_connections=2)
    yield store
    store.close()


def test_an_ack_gets_a_connection_while_follow_up_work_holds_them_all(pg_store):
    """With every connection of the follow-up work's pool lent, a read answering a Slack
    request is served at once by the ack connections."""
    request = pg_store.add(InviteRequest(requester_id="U1", details=InviteDetails(email="a@x.io")))
    held = [pg_store._db.pool.getconn(timeout=5) for _ in range(2)]
    try:
        started = time.monotonic()
        with budget.ack_budget():
            assert pg_store.read(request.id).id == request.id
        assert time.monotonic() - started < 0.25
    finally:
        for conn in held:
            pg_store._db.pool.putconn(conn)


def test_a_call_with_its_whole_time_left_sends_no_limit_of_its_own(pg_store, counter):
    """Under the ack's budget a read is one statement on an ack connection; with less time
    left than the connection's limit, the call sets its own in a transaction."""
    request = pg_store.add(InviteRequest(requester_id="U1", details=InviteDetails(email="a@x.io")))
    counter.on = True
    with budget.ack_budget():
        pg_store.read(request.id)
    assert sum(counter.statements.values()) == 1 and counter.blocks == 0, counter.report()
    with budget.budget(0.2):
        pg_store.read(request.id)
    assert sum(counter.statements.values()) == 3 and counter.blocks == 1, counter.report()


def test_an_ack_connections_statement_is_cut_at_its_limit(pg_store):
    """A statement on an ack connection that runs past the connection's own limit is cut
    there and is `StoreBusy`, though the call sent no limit."""
    started = time.monotonic()
    with budget.ack_budget(), pytest.raises(budget.StoreBusy):
        pg_store._first("SELECT pg_sleep(2)")
    assert time.monotonic() - started < 1.0


def test_a_write_whose_audit_log_is_locked_is_made_and_its_line_follows(pg_store, pg_url):
    """With the audit log locked, an ask and a decision answering Slack wait for it no longer
    than the ack connection's lock wait, are stored without their lines, and the lines are
    written once the lock is gone."""
    from tests.test_store_outages import locked

    request = InviteRequest(requester_id="U1", details=InviteDetails(email="a@x.io"))
    lock = locked(pg_url, "audit")
    try:
        started = time.monotonic()
        with budget.ack_budget():
            pg_store.add(request, audit=[AuditEvent(event="submitted", request_id=request.id)])
            ok, _ = pg_store.transition(
                request.id, {Status.PENDING}, Status.DENIED, audit=("denied", "UA", {})
            )
        assert ok and time.monotonic() - started < 1.0
        with budget.ack_budget():  # the follow-up work's connections wait for the lock
            assert pg_store.read(request.id).status is Status.DENIED
    finally:
        lock.commit()
        lock.close()
    deadline = time.monotonic() + 5
    while sorted(e.event for e in pg_store.audit()) != ["denied", "submitted"]:
        assert time.monotonic() < deadline, pg_store.audit()
        time.sleep(0.02)
