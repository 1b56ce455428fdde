"""The connection the embedded store's sqlitedict table runs its statements on: in the calling
thread, one statement at a time.

sqlitedict runs every statement on a thread of its own and hands each request and each answer
across through queues. The store already holds its own lock around every operation, so that
thread only added hand-overs: each one waits for the interpreter lock, which in a burst of
acks sixteen other threads want too: under a burst of 40 inline asks the store's lock was held
1.4-2.3 ms an ask (~0.5 ms alone), nearly all of it waiting for that thread's commit. Here the
same statements run in the thread that asks: SQLite lets go of the interpreter lock while it
reads, writes and syncs, and an error (a full disk, a broken file) is raised in the call that
met it rather than at some later call of another thread, or, for a failed commit, never, with
sqlitedict's thread gone and every later call waiting on it. A write takes a third less CPU;
a burst's p99 did not move beyond its noise (docs/benchmarks.md).

`DirectTable` is a sqlitedict table (its keys, JSON values and dict methods, bot/store/files.py)
whose connection is a `DirectConnection`: the interface sqlitedict's tables and the store use
(`execute`, `executemany`, `select`, `select_one`, `commit`, `close`), with sqlitedict's
transactions: one begins before the first write and lasts until `commit` (or `rollback`, which
sqlitedict's connection does not have).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from sqlitedict import SqliteDict


class DirectConnection:
    """sqlitedict's connection interface, run in the calling thread under a lock of its own."""

    def __init__(self, filename: str, autocommit: bool, journal_mode: str) -> None:
        self.filename = filename
        self.autocommit = autocommit
        self.journal_mode = journal_mode
        self._lock = threading.RLock()
        # As sqlitedict opens its own: a transaction from the first write to `commit`.
        self._conn = sqlite3.connect(
            filename, check_same_thread=False, isolation_level=None if autocommit else ""
        )
        self._conn.execute(f"PRAGMA journal_mode = {journal_mode}")

    def execute(self, req: str, arg: Iterable[Any] | None = None, res: Any = None) -> None:
        with self._lock:
            self._conn.execute(req, tuple(arg or ()))

    def executemany(self, req: str, items: Iterable[Iterable[Any]]) -> None:
        with self._lock:
            self._conn.executemany(req, items)

    def select(self, req: str, arg: Iterable[Any] | None = None) -> Iterator[tuple]:
        with self._lock:
            return iter(self._conn.execute(req, tuple(arg or ())).fetchall())

    def select_one(self, req: str, arg: Iterable[Any] | None = None) -> tuple | None:
        with self._lock:
            return self._conn.execute(req, tuple(arg or ())).fetchone()

    def commit(self, blocking: bool = True) -> None:
        """Commit what was written since the last commit; if the commit fails, it is all
        rolled back (and the error raised), so that the next operation starts afresh."""
        with self._lock:
            try:
                self._conn.commit()
            except sqlite3.Error:
                self._conn.rollback()
                raise

    def rollback(self) -> None:
        """Undo what was written since the last commit."""
        with self._lock:
            self._conn.rollback()

    def close(self, force: bool = False) -> None:
        """Close; what was not committed is rolled back, as sqlitedict's close does."""
        with self._lock:
            self._conn.close()


class DirectTable(SqliteDict):
    """A sqlitedict table on a `DirectConnection`."""

    def _new_conn(self) -> DirectConnection:
        return DirectConnection(self.filename, self.autocommit, self.journal_mode)
