"""A new request is one write (issue 21): the record, its index entries and its audit lines
together, checked in the same write against an open request for the address - on
PostgreSQL one statement in one round trip, on sqlitedict one transaction with one read."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from bot.domain.details import InviteDetails
from bot.domain.records import AuditEvent, InviteRequest, Status
from bot.store.base import AddressOpen, LimitReached
from tests.conftest import SIGNING_SECRET
from tests.pg_statements import Counter, install
from tests.slack_requests import GENERAL, SlackDriver
from tests.test_store import open_engine
from tests.test_store_outages import lose_after_commit

ENGINES = ["sqlite", "postgresql"]


def asked(email: str, requester: str = "U1") -> InviteRequest:
    return InviteRequest(requester_id=requester, details=InviteDetails(email=email))


def submitted(request: InviteRequest) -> AuditEvent:
    return AuditEvent(event="submitted", request_id=request.id, actor=request.requester_id)


@pytest.fixture
def counter(monkeypatch) -> Counter:
    return install(monkeypatch)


@pytest.fixture(params=ENGINES)
def store(request, tmp_path):
    opened = open_engine(request.param, tmp_path, request)
    yield opened
    opened.close()


def test_an_open_address_keeps_a_new_request_out_and_names_the_one_holding_it(store):
    """With `unless_open`, an address held by an open request (in any case) stores nothing and
    no audit line, and says which request holds it; without it, the request is stored."""
    first = store.add(asked("ada@example.com"))
    second = asked("Ada@Example.com", "U2")
    with pytest.raises(AddressOpen) as held:
        store.add(second, audit=[submitted(second)], unless_open=[second.details.email])
    assert held.value.target == first.id
    assert store.read(second.id) is None
    assert store.audit() == []
    other = asked("bob@example.com")
    assert store.add(other, unless_open=["bob@example.com"]).id == other.id
    assert store.add(asked("ada@example.com")).id  # no check asked for: stored


def test_a_decided_request_no_longer_holds_its_address(store):
    """A denied request frees its address: the next ask for it is stored."""
    first = store.add(asked("ada@example.com"))
    assert store.transition(first.id, {Status.PENDING}, Status.DENIED)[0]
    again = asked("ada@example.com")
    assert store.add(again, unless_open=["ada@example.com"]).id == again.id


def test_a_new_records_audit_lines_are_written_with_it_and_only_with_it(store):
    """The lines given with a new record are stored with it, in order, each at its own time;
    a refused one (its id taken, its address held, the daily limit reached) leaves none."""
    request = asked("ada@example.com")
    first = submitted(request)
    later = first.at + timedelta(seconds=1)
    lines = [first, AuditEvent(event="approved", request_id=request.id, at=later)]
    store.add(request, audit=lines, unless_open=["ada@example.com"])
    assert [(e.event, e.request_id, e.at) for e in store.audit()] == [
        ("submitted", request.id, first.at),
        ("approved", request.id, later),
    ]
    assert [e.event for e in store.audit(since=later)] == ["approved"]  # by the stored time
    if store.engine == "postgresql":  # the columns, not only the documents, hold them
        columns = store._rows("SELECT at, request_id FROM audit ORDER BY at, id")
        assert columns == [(first.at, request.id), (later, request.id)]
    with pytest.raises(KeyError):
        store.add(request, audit=[AuditEvent(event="again", request_id=request.id)])
    limited = asked("bob@example.com")
    store.take_quota("2026-12-05|U1", 1, 1)
    with pytest.raises(LimitReached):
        store.add(limited, counted=("2026-12-05|U1", 1), audit=[submitted(limited)])
    assert store.read(limited.id) is None
    assert [e.event for e in store.audit()] == ["submitted", "approved"]


def test_an_insert_whose_answer_was_lost_after_its_commit_is_ours(pg_url, monkeypatch):
    """The one-statement insert committed just before its connection failed: sent again, it
    is recognised as ours - one record, its audit line once, not "address open"."""
    from bot.store.postgres import PostgresStore

    store = PostgresStore(pg_url)
    try:
        lost = lose_after_commit(store, monkeypatch)
        request = asked("ada@example.com")
        assert store.add(request, audit=[submitted(request)], unless_open=["ada@example.com"])
        assert lost and store.read(request.id) == request
        assert [e.event for e in store.audit()] == ["submitted"]
        assert store.open_addresses(["ada@example.com"]) == {"ada@example.com": request.id}
    finally:
        store.close()


def test_an_inline_ask_on_postgresql_is_one_statement_in_one_round_trip(pg_bot, slack, counter):
    """`/invite ada@…` stores the request, its open address and its audit line in one
    statement after the address's lock, one transaction in one round trip (no BEGIN/COMMIT:
    its time limits are the ack connection's), before the ack;
    an ask for an address already asked for is that and a read of the request holding it."""
    driver = SlackDriver(pg_bot.app, SIGNING_SECRET)
    assert driver.command("warm@example.com", channel=GENERAL).status == 200
    assert pg_bot.deps.wait_idle(10)
    counter.on, counter.thread = True, threading.get_ident()
    assert driver.command("ada@example.com", channel=GENERAL).status == 200
    counter.on = False
    report = counter.report()
    assert sum(counter.statements.values()) == 2, report  # the address's lock, the insert
    assert sum(counter.transactions.values()) == 1 and counter.blocks == 0, report
    stored = pg_bot.store.open_addresses(["ada@example.com"])
    assert stored and [e.event for e in pg_bot.store.audit() if e.request_id in stored.values()]

    counter.statements.clear()
    counter.on = True
    response = driver.command("ada@example.com", channel=GENERAL)
    counter.on = False
    assert "already an open request" in response.body
    assert sum(counter.statements.values()) == 3, counter.report()  # and the read


def test_an_inline_asks_follow_up_does_not_read_the_request_it_stored(pg_bot, slack, counter):
    """After the ack of `/invite ada@…`, the names awork suggests are looked for with the
    request as it was stored, not read again: the ask, its approval message and the
    requester's notice take 7 statements in all (the ask's 2 among them)."""
    driver = SlackDriver(pg_bot.app, SIGNING_SECRET)
    assert driver.command("warm@example.com", channel=GENERAL).status == 200
    assert pg_bot.deps.wait_idle(10)
    counter.on = True
    assert driver.command("ada@example.com", channel=GENERAL).status == 200
    assert pg_bot.deps.wait_idle(10)
    counter.on = False
    report = counter.report()
    assert not [where for where in counter.statements if "autofill" in where], report
    assert sum(counter.statements.values()) <= 7, report
    assert slack.wait_for("chat.postMessage")  # the approval message went out


def test_a_sqlite_write_is_one_read_one_statement_and_its_commit(tmp_path):
    """On sqlitedict the checks a write depends on are one read, and a new record (index
    entries and audit line with it) or a change is one statement, then its commit."""
    from bot.store import SqliteStore

    store = SqliteStore(str(tmp_path / "s.sqlite"))
    try:
        ran: list[str] = []
        store._db.conn._conn.set_trace_callback(lambda sql: ran.append(sql.split()[0].upper()))
        request = asked("ada@example.com")
        store.add(request, audit=[submitted(request)], unless_open=["ada@example.com"])
        assert ran == ["SELECT", "BEGIN", "REPLACE", "COMMIT"]
        ran.clear()
        assert store.transition(request.id, {Status.PENDING}, Status.DENIED, audit=("d", None, {}))
        # No longer waiting: its index entry is gone.
        assert ran == ["SELECT", "BEGIN", "DELETE", "REPLACE", "COMMIT"]
        assert [e.event for e in store.audit()] == ["submitted", "d"]
    finally:
        store.close()


def test_a_sqlite_change_that_fails_halfway_leaves_nothing_half_stored(tmp_path, monkeypatch):
    """A decision whose write fails after its old index entry was deleted is rolled back: the
    request is still waiting, and still in the approvers' list."""
    import sqlite3

    from bot.store import SqliteStore

    store = SqliteStore(str(tmp_path / "s.sqlite"))
    try:
        request = asked("ada@example.com")
        store.add(request, audit=[submitted(request)])
        real = store._db.conn.execute

        def execute(req: str, *args):
            if req.startswith("REPLACE"):
                raise sqlite3.OperationalError("disk I/O error")
            return real(req, *args)

        monkeypatch.setattr(store._db.conn, "execute", execute)
        with pytest.raises(sqlite3.OperationalError):
            store.transition(request.id, {Status.PENDING}, Status.DENIED, audit=("d", None, {}))
        monkeypatch.undo()
        assert store.read(request.id).status is Status.PENDING
        assert [listed.id for listed in store.approvable_listing()] == [request.id]
    finally:
        store.close()


def test_a_lock_met_after_a_lost_answer_is_busy_not_someone_elses_request(pg_url, monkeypatch):
    """The insert committed, its answer lost, and the retry then kept waiting for a lock: the
    ask is "busy" - not "already open" about its own request - and nothing is doubled."""
    from bot.store import budget
    from bot.store.postgres import PostgresStore
    from tests.test_store_outages import locked

    store = PostgresStore(pg_url)
    try:
        # Committed: the audit log is locked, then the connection "fails".
        lock = lose_after_commit(store, monkeypatch, lambda: locked(pg_url, "audit"))
        request = asked("ada@example.com")
        with budget.ack_budget(), pytest.raises(budget.StoreBusy) as busy:
            store.add(request, audit=[submitted(request)], unless_open=["ada@example.com"])
        assert not isinstance(busy.value, budget.StoreLocked)
        lock[0].commit()
        lock[0].close()
        assert store.read(request.id) == request
        assert [e.event for e in store.audit()] == ["submitted"]
    finally:
        store.close()


def test_sqlitedicts_audit_lines_of_one_moment_each_keep_a_key_of_their_own():
    """20,000 audit lines stamped with the same instant get 20,000 keys on sqlitedict: a line's
    key is numbered in its process, with no random part per line two lines could share."""
    from bot.store.sqlite_state import audit_row

    entry = AuditEvent(event="submitted", request_id="inv-1", actor="U1")
    assert len({audit_row(entry)[0] for _ in range(20_000)}) == 20_000


def test_two_asks_for_one_address_at_the_same_moment_store_one_on_postgresql(pg_url):
    """On PostgreSQL, an ask for an address whose first ask is being stored at that moment
    waits for it, then is told which request holds the address - it is not stored beside it."""
    import psycopg

    from bot.store import postgres_schema
    from bot.store.base import facets
    from bot.store.postgres import PostgresStore

    store = PostgresStore(pg_url)
    first, second = asked("ada@example.com", "U1"), asked("Ada@example.com", "U2")
    outcome: list[object] = []

    def ask_second() -> None:
        try:
            outcome.append(store.add(second, unless_open=["ada@example.com"]))
        except AddressOpen as exc:
            outcome.append(exc)

    asking = threading.Thread(target=ask_second)
    try:
        with psycopg.connect(pg_url, autocommit=True) as conn, conn.transaction():
            # The first ask, stored and not committed yet: the second starts meanwhile.
            f = facets(first, store.schedule)
            postgres_schema.insert_new(conn, first, f, unless_open=["ada@example.com"])
            asking.start()
            waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            deadline = time.monotonic() + 10
            while conn.execute(waiting).fetchone()[0] == 0:
                assert time.monotonic() < deadline, f"the second ask did not wait: {outcome}"
                time.sleep(0.01)
        asking.join(10)
        assert len(outcome) == 1 and isinstance(outcome[0], AddressOpen), outcome
        assert outcome[0].target == first.id
        assert store.read(second.id) is None
        assert store.open_addresses(["ada@example.com"]) == {"ada@example.com": first.id}
    finally:
        asking.join(10)
        store.close()


def test_sqlitedicts_audit_lines_of_two_processes_with_one_pid_keep_keys_of_their_own():
    """Two processes with one process id (pid 1 in two containers on one volume), each at its
    first line, stamped with the same instant, write two keys: each process has a mark of its
    own, drawn as it starts (and again in a forked child)."""
    from bot.store import sqlite_state

    entry = AuditEvent(event="submitted", request_id="inv-1", actor="U1")
    sqlite_state._new_process()  # as a process starts: line numbers from 0
    first = sqlite_state.audit_row(entry)[0]
    sqlite_state._new_process()
    assert sqlite_state.audit_row(entry)[0] != first
