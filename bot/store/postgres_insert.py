"""New records on PostgreSQL (a mixin of `PostgresStore`): a request or batch, its open
addresses and its audit lines in one statement, checked in it against an open request for the
same address after taking that address's advisory lock (of two asks for it at the same moment
the second sees the first) - on an ask's path, one round trip (`postgres_conn`'s pipeline: the
time limits, the lock and the statement, committed together). A lock on the audit log held
longer than an ack waits for one (budget.LOCK_SECONDS) does not cost the ask: `Store.add`
stores the record without its lines, which follow after the answer. The policy's daily
counter (`take`) is counted in the same transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg

from bot.domain.records import AuditEvent
from bot.store import postgres_schema as schema
from bot.store.base import AddressOpen, Counted, Facets, LimitReached, Record

if TYPE_CHECKING:
    from bot.store.postgres_cas import Known
    from bot.store.postgres_conn import Connections


class Inserting:
    """`_insert` for `PostgresStore`, which provides the connections."""

    _known: Known
    _db: Connections

    if TYPE_CHECKING:

        def _first(self, sql: str, params: Any = None) -> tuple[Any, ...] | None: ...

    def _insert(
        self,
        record: Record,
        f: Facets,
        counted: Counted | None = None,
        audit: tuple[AuditEvent, ...] = (),
        unless_open: tuple[str, ...] = (),
    ) -> bool:
        tries = 0

        def send(conn: psycopg.Connection) -> psycopg.Cursor:
            nonlocal tries
            tries += 1
            return schema.insert_new(conn, record, f, audit, unless_open)

        if counted is None:  # one round trip: the limits and the statement, committed
            cursor = self._db.run(send, tx=True, pipeline=True)
            inserted, held = cursor.fetchone()
        else:

            def insert(conn: psycopg.Connection) -> tuple[bool, str | None]:
                inserted, held = send(conn).fetchone()
                # Counted after the insert, in its transaction: a retry that finds its own
                # first insert committed (below) does not count it twice.
                if inserted and not take(conn, counted[0], 1, counted[1]):
                    raise LimitReached(counted[0])  # rolls the insert back
                return inserted, held

            inserted, held = self._db.run(insert, tx=True)
        # Done again after a lost connection, the record there may be our own first insert.
        if not inserted and tries > 1:
            mine = (record.model_dump(mode="json"),)
            inserted = self._first("SELECT doc FROM records WHERE id = %s", (record.id,)) == mine
        if inserted:  # committed: the base of its first change
            self._known.seen(record)
            return True
        if held is not None:
            raise AddressOpen(held)
        return False


def take(conn: psycopg.Connection, key: str, wanted: int, limit: int) -> int:
    """Count up to `wanted` on `key`, never past `limit`; how many were counted. One
    statement: the upsert locks the row and SET reads its values as they were, so concurrent
    asks on every replica count each person once."""
    row = conn.execute(
        "INSERT INTO quotas AS q (key, used, granted)"
        " VALUES (%(key)s, LEAST(%(limit)s, %(wanted)s), LEAST(%(limit)s, %(wanted)s))"
        " ON CONFLICT (key) DO UPDATE"
        " SET used = GREATEST(q.used, LEAST(%(limit)s, q.used + %(wanted)s)),"
        " granted = GREATEST(0, LEAST(%(limit)s, q.used + %(wanted)s) - q.used)"
        " RETURNING granted",
        {"key": key, "wanted": max(0, wanted), "limit": limit},
    ).fetchone()
    return int(row[0]) if row else 0
