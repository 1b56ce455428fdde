"""Counting what the bot asks of PostgreSQL: every statement and transaction of every store
method, each attributed to the store call that ran it and the bot code that made that call.

psycopg is wrapped at the lowest point the store uses (`Connection.execute`,
`Cursor.executemany`, `Connection.transaction`); statements sent in one pipeline are one
transaction and one round trip. Used by the tests of what an approval and an ask cost.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import pq

STORE = str(Path(__file__).resolve().parent.parent / "bot" / "store")
ROOT = str(Path(__file__).resolve().parent.parent)


class Counter:
    """Statements and transactions run while `on`, each under the store call that ran it."""

    def __init__(self) -> None:
        self.on = False
        self.lock = threading.Lock()
        self.statements: collections.Counter[str] = collections.Counter()
        self.transactions: collections.Counter[str] = collections.Counter()
        self.blocks = 0  # transactions begun explicitly (each two more round trips)
        self.pipelines: list = []  # pipelines seen: each is one transaction, one round trip
        self.thread: int | None = None  # only this thread's statements, when set

    @staticmethod
    def where() -> str:
        """'caller -> store call': the outermost frame in bot/store and the frame calling it."""
        frames = traceback.extract_stack()[:-3]
        inner = [
            i
            for i, f in enumerate(frames)
            if f.filename.startswith(STORE) and not f.filename.endswith("budget.py")
        ]
        if not inner:
            return "?"
        first = inner[0]
        store = frames[first]
        caller = next(
            (
                f
                for f in reversed(frames[:first])
                if f.filename.startswith(ROOT)
                and "/tests/" not in f.filename
                and not f.filename.endswith(("budget.py", "deps.py"))
            ),
            None,
        )

        def name(f) -> str:
            return f"{Path(f.filename).stem}.{f.name}"

        return f"{name(caller) if caller else 'test'} -> {name(store)}"

    def statement(self, conn: psycopg.Connection, count: int = 1) -> None:
        if not self.on or self.thread not in (None, threading.get_ident()):
            return
        label = self.where()
        pipeline = conn._pipeline
        with self.lock:
            self.statements[label] += count
            if pipeline is not None:  # statements up to the pipeline's end: one transaction
                if not any(seen is pipeline for seen in self.pipelines):
                    self.pipelines.append(pipeline)
                    self.transactions[label] += 1
            elif conn.info.transaction_status == pq.TransactionStatus.IDLE:
                self.transactions[label] += 1  # autocommit: a transaction of its own

    def transaction(self, conn: psycopg.Connection) -> None:
        if self.on and conn.info.transaction_status == pq.TransactionStatus.IDLE:
            label = self.where()
            with self.lock:
                self.transactions[label] += 1
                self.blocks += 1

    def report(self) -> str:
        labels = sorted(set(self.statements) | set(self.transactions))
        lines = [
            f"{self.statements[label]:4d} st {self.transactions[label]:3d} tx  {label}"
            for label in labels
        ]
        total = sum(self.statements.values()), sum(self.transactions.values())
        blocks = f"({self.blocks} of them BEGIN ... COMMIT blocks)"
        return "\n".join([*lines, f"{total[0]:4d} st {total[1]:3d} tx  in all {blocks}"])


def install(monkeypatch) -> Counter:
    """A Counter wrapped around psycopg for the test (monkeypatch undoes it)."""
    counting = Counter()
    execute, executemany = psycopg.Connection.execute, psycopg.Cursor.executemany
    transaction = psycopg.Connection.transaction

    def counted_execute(self, *args, **kwargs):
        counting.statement(self)
        return execute(self, *args, **kwargs)

    def counted_executemany(self, query, params_seq, *args, **kwargs):
        params_seq = list(params_seq)
        counting.statement(self.connection, len(params_seq))
        return executemany(self, query, params_seq, *args, **kwargs)

    @contextlib.contextmanager
    def counted_transaction(self, *args, **kwargs) -> Iterator:
        counting.transaction(self)
        with transaction(self, *args, **kwargs) as tx:
            yield tx

    monkeypatch.setattr(psycopg.Connection, "execute", counted_execute)
    monkeypatch.setattr(psycopg.Cursor, "executemany", counted_executemany)
    monkeypatch.setattr(psycopg.Connection, "transaction", counted_transaction)
    return counting
