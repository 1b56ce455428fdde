"""The PostgreSQL store's connections: borrowed within the time budget, and a fresh one for
work whose connection failed.

- `borrow` lends a pooled connection. Under a time budget (bot/store/budget.py) - a store
  call answering a Slack request - it comes from the acks' own pool, so an ack never waits for
  connections busy with follow-up work; the pool is waited for, and the statements run, only
  for the time left: the acks' connections cut every statement at the per-call limit
  themselves, and a call with less time left sets its own (in a transaction, `SET LOCAL
  statement_timeout`). A pool with nothing to lend by then, or a statement cut short, is
  `StoreBusy`.
- `run` does a piece of work on a borrowed connection and, when that connection failed (a
  restart, a failover, pg_terminate_backend, a cut), has the pool's idle connections checked -
  the others may have died with it - and does the work once more on a connection found alive
  first; outside the ack's budget (follow-up work, the sweep) up to RERUNS_WITHOUT_BUDGET
  times, and a click's decision up to its budget's reruns (bot/store/budget.py) as far as
  its time allows, pausing a little longer each time, as a failover cuts connections more
  than once.
  Only a failed connection is retried, never a failed statement. The work must be safe
  to do again after a commit whose answer was lost: a read, an idempotent write, or one that
  recognises its own earlier write (the store's compare-and-set and inserts do).

The pool is not given psycopg_pool's `check=ConnectionPool.check_connection`: after a failed
check the pool waits before lending another (1 s, then 2 s, ... - its backoff against busy
loops), so after a restart that left N dead connections a query waited N seconds and more, past
the ack's budget. Checking them all at once on the first failure costs milliseconds.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import psycopg
from psycopg.errors import LockNotAvailable, QueryCanceled
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from bot.runtime import metrics
from bot.store import budget
from bot.store.base import StoreClosed

log = logging.getLogger(__name__)

T = TypeVar("T")
FRESH_TRIES = 4  # connections tried for one piece of work: its own, then up to 3 for its retry
# Work done outside the ack's budget (after the ack, the sweep) is done again after each of up
# to this many lost connections - a failover cuts them more than once in a few seconds - with a
# pause growing from PAUSE between them; under a budget, once.
RERUNS_WITHOUT_BUDGET = 4
PAUSE = 0.1
# SQLSTATEs of a connection the server ended: shut down, crashed, restarting, or terminated.
SERVER_ENDED = frozenset({"57P01", "57P02", "57P03"})


class _Stale(Exception):
    """A connection lent for a retry was found dead before the work started on it."""


def connection_lost(exc: psycopg.OperationalError, conn: psycopg.Connection | None) -> bool:
    """Whether `exc` says the connection failed (so the same work may go to a fresh one), as
    opposed to the statement: a broken connection, a server that ended it, or a connection
    error (class 08). Waiting for the pool in vain is not a lost connection."""
    if isinstance(exc, PoolTimeout):
        return False
    if conn is not None and conn.broken:
        return True
    state = exc.sqlstate or ""
    return state in SERVER_ENDED or state.startswith("08")


def time_limits(budgeted: bool, preset: float) -> dict[str, float]:
    """The limits in seconds to set for a call under a budget, unless the connection's own
    (`preset`: its statement limit; its lock wait, budget.LOCK_SECONDS) are no longer: the
    statements' (the time left) and the locks' (LOCK_SECONDS, at most half the time left, so
    that a write that waited in vain for a lock may be made without what needed it). A call
    with more time left than `preset` runs within the connection's own limits."""
    left = budget.left() if budgeted else None
    if left is None or left >= preset:
        return {}
    return {"statement_timeout": left, "lock_timeout": min(budget.LOCK_SECONDS, left / 2)}


class Connections:
    """The store's connections: `pool` for work without a time budget (after the ack, the
    sweep), `acks` for the store calls answering a Slack request - so that an ack never waits
    for connections busy with follow-up work - whose connections limit every statement to
    `ack_limit` seconds themselves: a call with that much time left sends no limit of its own."""

    def __init__(
        self, pool: ConnectionPool, acks: ConnectionPool | None = None, ack_limit: float = 0.0
    ) -> None:
        self.pool = pool
        self.acks = acks or pool
        self.ack_limit = ack_limit if acks is not None else math.inf
        self.closed = False

    def pools(self) -> list[ConnectionPool]:
        return [self.pool] if self.acks is self.pool else [self.pool, self.acks]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            for pool in self.pools():
                pool.close()

    @contextlib.contextmanager
    def borrow(
        self,
        tx: bool = False,
        fresh: bool = False,
        lent: list | None = None,
        pipeline: bool = False,
    ) -> Iterator[psycopg.Connection]:
        """A pooled connection (in a transaction with `tx`; found alive first with `fresh`),
        also put in `lent` as soon as the pool lends it. `pipeline`: one round trip - the time
        limits and the statements are sent together, as one transaction (the pipeline's
        implicit one), and committed as the connection goes back; their results are read
        after that (a read before it, or a cursor's rowcount, would cost a round trip of its
        own)."""
        if self.closed:
            raise StoreClosed("postgresql")
        seconds = budget.left()
        pool = self.pool if seconds is None else self.acks
        try:
            with pool.connection(timeout=seconds) as conn:
                if lent is not None:
                    lent.append(conn)
                if fresh:
                    try:
                        ConnectionPool.check_connection(conn)
                    except psycopg.OperationalError as exc:
                        raise _Stale from exc  # broken now: the pool drops it
                limits = time_limits(seconds is not None, self.ack_limit)
                if not (tx or limits):  # one statement, its own transaction, within any limit
                    yield conn
                    return
                with conn.pipeline() if pipeline else conn.transaction():
                    if limits:
                        conn.execute(
                            "SELECT "
                            + ", ".join(f"set_config('{name}', %s, true)" for name in limits),
                            [f"{max(1, int(value * 1000))}ms" for value in limits.values()],
                        )
                    yield conn
        except PoolClosed as exc:
            raise StoreClosed("postgresql") from exc
        except (PoolTimeout, QueryCanceled, LockNotAvailable) as exc:
            if seconds is None:
                raise
            busy = budget.StoreLocked if isinstance(exc, LockNotAvailable) else budget.StoreBusy
            raise busy(f"PostgreSQL: {type(exc).__name__}") from exc

    def run(
        self,
        work: Callable[[psycopg.Connection], T],
        tx: bool = False,
        pipeline: bool = False,
    ) -> T:
        """`work` on a borrowed connection; once more on a fresh one when its connection
        failed (outside a budget, again after each further lost connection, a few times). A
        failure that remains is `StoreUnavailable`."""
        reruns = budget.reruns(RERUNS_WITHOUT_BUDGET)
        started = 0  # times `work` was started
        failed = False
        for _ in range(FRESH_TRIES + reruns):
            lent: list[psycopg.Connection] = []
            try:
                borrowed = self.borrow(tx, failed, lent, pipeline)
                with borrowed as conn:
                    started += 1
                    done = work(conn)
                return done  # with `pipeline`, its results arrived as the connection went back
            except _Stale:
                continue  # died with the first, but was busy when the pool was checked
            except budget.StoreLocked as exc:
                if started > 1:  # the lost attempt may have been made: not a plain "locked"
                    raise budget.StoreBusy("PostgreSQL: locked after a lost connection") from exc
                raise
            except psycopg.OperationalError as exc:
                if started > reruns or not connection_lost(exc, lent[0] if lent else None):
                    raise budget.StoreUnavailable(f"PostgreSQL: {type(exc).__name__}") from exc
                if started > 1:  # cut again: give a failover a moment, if the budget has it
                    pause = PAUSE * 3 ** (started - 2)
                    seconds = budget.left()
                    if seconds is not None and seconds <= pause:
                        raise budget.StoreUnavailable("PostgreSQL: cut again") from exc
                    time.sleep(pause)
                failed = True
                metrics.STORE_RETRIES.inc()
                log.warning("store connection failed (%s): once more", type(exc).__name__)
                # The dead among the idle ones of both pools are replaced now: what cut this
                # connection (a restart, a failover) cut the others' too.
                for pool in self.pools():
                    pool.check()
        raise budget.StoreUnavailable("PostgreSQL: no live connection")
