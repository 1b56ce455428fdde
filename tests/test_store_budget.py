"""The store's time budgets and its retry on a fresh connection, without a database server:
budgets run out, follow-up work runs without the ack's, sqlite's lock waits are bounded, a
failed connection is worth one more try and a failed statement is not."""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg.errors import AdminShutdown, QueryCanceled
from psycopg_pool import PoolTimeout

from bot.domain.details import InviteDetails
from bot.domain.records import InviteRequest
from bot.runtime import metrics
from bot.runtime.deps import Deps
from bot.store import SqliteStore, budget, postgres_conn
from bot.store.budget import StoreBusy, StoreUnavailable
from bot.store.postgres_conn import Connections, connection_lost


def new_request() -> InviteRequest:
    return InviteRequest(requester_id="UREQ", details=InviteDetails(email="ada@example.com"))


# --- budgets ------------------------------------------------------------------------------------


def test_a_budget_gives_the_time_left_and_store_busy_once_spent():
    """Inside a budget a store call may take what is left of it; a spent one raises StoreBusy."""
    assert budget.left() is None
    with budget.budget(10):
        assert 9 < budget.left() <= 10
        with budget.budget(0.05):  # the earlier end counts
            assert budget.left() <= 0.05
        with budget.lifted():
            assert budget.left() is None and not budget.active()
    with budget.budget(0), pytest.raises(StoreBusy):
        budget.left()
    assert not budget.active()


def test_the_acks_budget_caps_each_call_and_all_of_them():
    """Answering a Slack request, one store call may take 1.5 s, and all of them end by 2.5 s
    after the request was taken up, so the answer leaves within Slack's 3 s."""
    assert (budget.ACK_SECONDS, budget.CALL_SECONDS) == (2.5, 1.5)
    with budget.ack_budget():
        assert 1.4 < budget.left() <= 1.5
        with budget.budget(0.5):  # a shorter budget inside keeps the cap
            assert budget.left() <= 0.5
        with budget.budget(10):
            assert budget.left() <= 1.5


def test_follow_up_work_runs_without_the_acks_budget():
    """Work handed on after the ack does not inherit the ack's deadline with its context."""
    seen: list[bool] = []
    with ThreadPoolExecutor(1) as pool, budget.budget(0.001):
        Deps._submit(pool, lambda: seen.append(budget.active()), ())
    assert seen == [False]


def test_sqlite_waits_for_other_threads_only_for_the_budget(tmp_path):
    """A store held by another thread's long operation: a budgeted call gives up in time."""
    store = SqliteStore(str(tmp_path / "s.sqlite"))
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store._lock():
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    started = time.monotonic()
    with budget.budget(0.2), pytest.raises(StoreBusy):
        store.add(new_request())
    assert time.monotonic() - started < 1.0
    release.set()
    holder.join()
    assert store.add(new_request())  # without a budget, and the lock free: stored
    store.close()


def test_sqlite_waits_for_another_process_only_for_the_budget(tmp_path):
    """The file lock another process holds (here a second store on the file) is waited for
    only as long as the budget allows."""
    path = str(tmp_path / "s.sqlite")
    mine, theirs = SqliteStore(path), SqliteStore(path)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with theirs._lock():
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    with budget.budget(0.2), pytest.raises(StoreBusy):
        mine.set_meta("k", 1)
    release.set()
    holder.join()
    mine.set_meta("k", 2)
    assert theirs.get_meta("k") == 2
    mine.close()
    theirs.close()


# --- a fresh connection for a failed one ---------------------------------------------------------


class FakeConnection:
    autocommit = True

    def __init__(self, broken: bool = False) -> None:
        self.broken = broken

    @contextlib.contextmanager
    def transaction(self):
        yield

    def execute(self, sql: str, params=None) -> None:
        if self.broken:  # what the pool's check of a dead connection meets
            raise psycopg.OperationalError("server closed the connection unexpectedly")


class FakePool:
    """Lends a new connection each time; `refuse` makes the wait for one time out."""

    def __init__(self, refuse: bool = False, dead: int = 0) -> None:
        self.dead = dead  # idle connections that died unnoticed, lent first after a failure
        self.lent: list[FakeConnection] = []
        self.timeouts: list[float | None] = []
        self.refuse = refuse
        self.checked = 0  # how often its idle connections were checked

    def check(self) -> None:
        self.checked += 1

    @contextlib.contextmanager
    def connection(self, timeout: float | None = None):
        self.timeouts.append(timeout)
        if self.refuse:
            raise PoolTimeout("no connection")
        stale = self.dead > 0 and bool(self.lent)
        self.dead -= stale
        conn = FakeConnection(broken=stale)
        self.lent.append(conn)
        yield conn


def lost(conn: FakeConnection) -> psycopg.OperationalError:
    conn.broken = True
    return psycopg.OperationalError("server closed the connection unexpectedly")


def test_work_whose_connection_failed_is_done_again_on_a_fresh_one():
    """A connection cut under an operation: the pool's idle connections are checked (the dead
    ones replaced) and the same work is done once more, on another connection."""
    pool, calls = FakePool(), []
    connections = Connections(pool)
    retries = metrics.STORE_RETRIES._value.get()

    def work(conn: FakeConnection) -> str:
        calls.append(conn)
        if len(calls) == 1:
            raise lost(conn)
        return "done"

    assert connections.run(work) == "done"
    assert calls == pool.lent and len(pool.lent) == 2 and pool.lent[0] is not pool.lent[1]
    assert pool.checked == 1
    assert metrics.STORE_RETRIES._value.get() == retries + 1


def test_dead_connections_lent_for_the_retry_are_passed_over():
    """Idle connections that died with the first one are found dead before the retry starts
    on them: the work is done once more, once, on a live one."""
    pool, calls = FakePool(dead=2), []
    connections = Connections(pool)

    def work(conn: FakeConnection) -> str:
        calls.append(conn)
        if len(calls) == 1:
            raise lost(conn)
        return "done"

    assert connections.run(work) == "done"
    assert len(calls) == 2 and len(pool.lent) == 4 and calls[1] is pool.lent[3]


def test_a_failed_statement_is_not_done_again():
    """A statement that failed on a sound connection is not retried: StoreUnavailable."""
    pool = FakePool()
    connections = Connections(pool)

    def work(conn: FakeConnection) -> None:
        raise psycopg.errors.DiskFull("no space")

    with pytest.raises(StoreUnavailable):
        connections.run(work)
    assert len(pool.lent) == 1


def test_under_the_acks_budget_a_connection_that_fails_twice_gives_store_unavailable():
    """Answering Slack, once more and no more: a second failed connection is the caller's."""
    pool = FakePool()
    connections = Connections(pool)
    with budget.budget(2.0), pytest.raises(StoreUnavailable) as raised:
        connections.run(lambda conn: (_ for _ in ()).throw(lost(conn)))
    assert len(pool.lent) == 2 and not isinstance(raised.value, StoreBusy)


def cut_in_a_row(monkeypatch, times: int):
    """Connections over a fake pool, and work whose first `times` connections are cut (-1:
    all): the connections (their pool `connections.pool`), the work, the connections it was
    given and the pauses between."""
    pauses: list[float] = []
    monkeypatch.setattr(postgres_conn.time, "sleep", pauses.append)
    pool, calls = FakePool(), []

    def work(conn: FakeConnection) -> str:
        calls.append(conn)
        if times < 0 or len(calls) <= times:
            raise lost(conn)
        return "done"

    return Connections(pool), work, calls, pauses


def test_a_decision_outlives_a_connection_cut_twice_within_its_budget(monkeypatch):
    """A click's decision (its own budget, after the ack) whose connection is cut twice in a
    row is done on the third, a short pause between; cut forever, it gives up within it."""

    def decision():
        return budget.budget(
            budget.DECISION_SECONDS, budget.CALL_SECONDS, reruns=budget.DECISION_RERUNS
        )

    connections, work, calls, pauses = cut_in_a_row(monkeypatch, 2)
    with decision():
        assert connections.run(work) == "done"
    assert len(calls) == 3 and pauses == [0.1]
    connections, cut, calls, _ = cut_in_a_row(monkeypatch, -1)
    with decision(), pytest.raises(StoreUnavailable):
        connections.run(cut)
    assert len(calls) == 1 + budget.DECISION_RERUNS
    calls.clear()
    with budget.budget(2.0), decision(), pytest.raises(StoreUnavailable):
        connections.run(cut)  # inside an ack's budget: the ack's once more
    assert len(calls) == 2


def test_after_the_ack_work_outlives_connections_cut_again_and_again(monkeypatch):
    """Follow-up work (no budget) whose connections are cut three times in a row - a failover
    - is done on the fourth, pausing a little longer each time; cut forever, it gives up."""
    connections, work, calls, pauses = cut_in_a_row(monkeypatch, 3)
    assert connections.run(work) == "done"
    assert len(calls) == 4 and pauses == [0.1, pytest.approx(0.3)]
    connections, cut, calls, _ = cut_in_a_row(monkeypatch, -1)
    with pytest.raises(StoreUnavailable):
        connections.run(cut)
    assert len(connections.pool.lent) == 1 + postgres_conn.RERUNS_WITHOUT_BUDGET


def test_the_pool_is_waited_for_only_within_the_budget():
    """Under a budget the pool is asked for a connection with the time left, and a pool that
    has none by then is StoreBusy (not waited for again); without one, the pool's own wait."""
    pool = FakePool(refuse=True)
    connections = Connections(pool)
    with budget.budget(0.3), pytest.raises(StoreBusy):
        connections.run(lambda conn: None)
    assert len(pool.timeouts) == 1 and 0 < pool.timeouts[0] <= 0.3
    with pytest.raises(StoreUnavailable):
        connections.run(lambda conn: None)
    assert pool.timeouts[1] is None


def test_which_failures_are_a_lost_connection():
    """A server that ended the connection or a broken one are; a cancelled statement or a
    pool that had no connection are not."""
    assert connection_lost(AdminShutdown("terminating connection"), None)
    assert connection_lost(psycopg.OperationalError("gone"), FakeConnection(broken=True))
    assert not connection_lost(QueryCanceled("statement timeout"), FakeConnection())
    assert not connection_lost(PoolTimeout("no connection"), None)


def test_the_acks_connections_are_all_open_before_a_burst(pg_url):
    """The acks' pool opens its 8 connections as the store opens and keeps them: a burst of 8
    asks at once after a quiet time opens none (psycopg_pool would open them one at a time)."""
    from bot.store.postgres import ACK_CONNECTIONS, PostgresStore

    store = PostgresStore(pg_url)
    try:
        acks = store._db.acks
        acks.wait(timeout=10)  # filled in the background once the store is open
        assert acks.min_size == ACK_CONNECTIONS == acks.get_stats()["pool_size"]
        opened = acks.get_stats()["connections_num"]
        gate = threading.Barrier(ACK_CONNECTIONS)

        def ask(_: int) -> None:
            with budget.ack_budget(), store._db.borrow() as conn:
                gate.wait(timeout=5)  # all 8 borrowed at once
                conn.execute("SELECT 1")

        with ThreadPoolExecutor(ACK_CONNECTIONS) as pool:
            list(pool.map(ask, range(ACK_CONNECTIONS)))
        assert acks.get_stats()["connections_num"] == opened
    finally:
        store.close()


def test_a_database_allowing_fewer_connections_still_opens_the_store(pg_base_url, pg_url):
    """A role allowed 4 connections (fewer than the acks' 8 and the work's 1): the store opens
    and answers an ack's call; psycopg's pool goes on asking for the rest, and logs why not."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from bot.store.postgres import PostgresStore

    role = "r_" + secrets.token_hex(4)
    schema = conninfo_to_dict(pg_url)["options"].split("=", 1)[1]
    with psycopg.connect(pg_base_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 4")
        conn.execute(f"GRANT ALL ON SCHEMA {schema} TO {role}")
    try:
        store = PostgresStore(make_conninfo(pg_url, user=role))
        try:
            with budget.ack_budget():
                assert store.now() is not None
        finally:
            store.close()
    finally:
        with psycopg.connect(pg_base_url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")
