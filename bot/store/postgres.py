"""The PostgreSQL engine: any number of replicas, on any hosts, share one database.

- A record is a row (its JSON document and its index facets as columns; see
  `postgres_schema`), so every lookup on a request's path is an indexed read.
- Compare-and-set (`postgres_cas`) is one statement when this process has seen the record's
  last version: the change is made to that version and written by `UPDATE ... WHERE version
  = the one seen`; otherwise - another replica moved it on, or the change refuses the version
  seen - it is a row lock (`SELECT ... FOR UPDATE`) for the record's read-check-write. Leases
  are judged on the database's clock (`clock_timestamp()`), one clock for all replicas.
- Due work is claimed with `FOR UPDATE SKIP LOCKED`: each due record goes to one sweeper.
- Periodic jobs are claimed by an atomic upsert on their next run time, and awork's rate
  limit is counted in a table (`postgres_ratelimit`), so it holds for all replicas together.
- Opening probes the database first (`postgres_pool`): a database that is not there is one
  line within seconds.
- An operation whose connection fails (a restart, a failover, a cut) is done once more on a
  fresh one (`postgres_conn`): reads and idempotent writes as they are; a compare-and-set or
  an insert recognises its own earlier write, in case that was committed before the
  connection failed; an audit entry is not appended twice. Under a time budget
  (bot/store/budget.py) a call runs only for the time left, then raises `StoreBusy`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from bot.domain.batches import InviteBatch
from bot.domain.listing import Listed
from bot.domain.records import AuditEvent, InviteRequest, Schedule, Status
from bot.store import budget
from bot.store import postgres_schema as schema
from bot.store.base import Record, Store, decode
from bot.store.postgres_cas import AUDIT_INSERT, CompareAndSet, Known, audit_row
from bot.store.postgres_conn import Connections
from bot.store.postgres_insert import Inserting, take
from bot.store.postgres_pool import CONNECT_TIMEOUT, open_pool
from bot.store.postgres_ratelimit import SharedRateLimiter

# Connections for the store calls answering Slack requests (each a statement or two, under
# a millisecond in the database), apart from the follow-up work's `max_connections`; all
# opened right after start and kept, so that the first burst after a quiet hour does not wait
# for them one by one (psycopg_pool opens one at a time, each a TCP, TLS and password exchange).
ACK_CONNECTIONS = 8


class PostgresStore(Inserting, CompareAndSet, Store):
    engine = "postgresql"

    def __init__(
        self,
        url: str,
        schedule: Schedule | None = None,
        max_connections: int = 20,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        super().__init__(schedule)
        self._known = Known()
        work = open_pool(url, max_connections, connect_timeout)
        try:
            limits = budget.CALL_SECONDS, budget.LOCK_SECONDS
            acks = open_pool(
                url,
                ACK_CONNECTIONS,
                connect_timeout,
                *limits,
                name="invite-bot-acks",
                probed=True,
                kept=ACK_CONNECTIONS,
            )
        except Exception:
            work.close()
            raise
        self._db = Connections(work, acks, budget.CALL_SECONDS)
        try:
            self.migrate()
        except Exception:
            self.close()
            raise

    def _conn(self) -> contextlib.AbstractContextManager[psycopg.Connection]:
        """A pooled connection, within the time budget if one is set (`postgres_conn`)."""
        return self._db.borrow()

    def _tx(self) -> contextlib.AbstractContextManager[psycopg.Connection]:
        """One transaction on a pooled connection."""
        return self._db.borrow(tx=True)

    def close(self) -> None:
        self._db.close()

    def _rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """A read's rows (retried on a fresh connection)."""
        return self._db.run(lambda conn: conn.execute(sql, params).fetchall())

    def _first(self, sql: str, params: Any = None) -> tuple[Any, ...] | None:
        return self._db.run(lambda conn: conn.execute(sql, params).fetchone())

    def _write(self, sql: str, params: Any = None) -> int:
        """An idempotent write, or one whose repetition is harmless; rows affected."""
        return self._db.run(lambda conn: conn.execute(sql, params).rowcount)

    def now(self) -> datetime:
        return self._known.tick(self._first("SELECT clock_timestamp()")[0])

    # -- records -----------------------------------------------------------------------------

    def _load(self, record_id: str) -> dict[str, Any] | None:
        row = self._first(
            "SELECT doc FROM records WHERE id = %s"
            " UNION ALL SELECT doc FROM archive WHERE id = %s LIMIT 1",
            (record_id, record_id),
        )
        return row[0] if row else None

    def recent(self, record_id: str) -> tuple[Record | None, bool]:
        known, _ = self._known.get(record_id)
        return (known, True) if known is not None else (self.read(record_id), False)

    def read(self, record_id: str) -> Record | None:
        row = self._first(
            "SELECT doc, clock_timestamp() FROM records WHERE id = %s"
            " UNION ALL SELECT doc, clock_timestamp() FROM archive WHERE id = %s LIMIT 1",
            (record_id, record_id),
        )
        if row is None:
            return None
        record = decode(record_id, row[0])
        self._known.tick(row[1])
        self._known.seen(record)
        return record

    def read_many(self, record_ids: list[str]) -> list[Record | None]:
        if not record_ids:
            return []
        rows = self._rows(
            "SELECT id, doc FROM records WHERE id = ANY(%(ids)s)"
            " UNION ALL SELECT id, doc FROM archive WHERE id = ANY(%(ids)s)",
            {"ids": list(record_ids)},
        )
        found = {record_id: doc for record_id, doc in rows}
        return [
            decode(record_id, found[record_id]) if record_id in found else None
            for record_id in record_ids
        ]

    def _decode_rows(self, rows: Iterable[tuple[Any, ...]]) -> list[Record]:
        return [decode(record_id, doc) for record_id, doc in rows]

    # -- indexed lookups -----------------------------------------------------------------------

    def open_addresses(self, emails: Iterable[str]) -> dict[str, str]:
        wanted = sorted({email.lower() for email in emails})
        if not wanted:
            return {}
        rows = self._rows(
            "SELECT DISTINCT ON (email) email, target FROM open_emails"
            " WHERE email = ANY(%s) ORDER BY email, created_at",
            (wanted,),
        )
        return dict(rows)

    def listed(self, requester_id: str, limit: int = 100, offset: int = 0) -> list[Record]:
        return self._decode_rows(
            self._rows(
                "SELECT id, doc FROM records WHERE requester = %s"
                " ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s",
                (requester_id, limit, offset),
            )
        )

    def count_listed(self, requester_id: str) -> int:
        row = self._first("SELECT count(*) FROM records WHERE requester = %s", (requester_id,))
        return int(row[0]) if row else 0

    def approvable_listing(self) -> list[Listed]:
        # Only the listed fields leave the database (a batch's 500 entries do not).
        rows = self._rows(
            "SELECT jsonb_build_object('id', id, 'kind', kind, 'status', status,"
            " 'created_at', created_at, 'requester_id', doc->'requester_id',"
            " 'email', COALESCE(doc->'details'->'email', doc->'entries'->0->'email'),"
            " 'first_name', doc->'details'->'first_name', 'last_name', doc->'details'->'last_name',"
            " 'people', COALESCE(jsonb_array_length(doc->'entries'), 1),"
            " 'retryable', COALESCE(doc->'failure'->'retryable', 'false'::jsonb),"
            " 'route_approvers', COALESCE(doc->'route_approvers', '[]'::jsonb))"
            " FROM records WHERE approvable ORDER BY created_at, id"
        )
        return [Listed.of(row) for (row,) in rows]

    def claim_due(
        self, owner: str, hold: float, limit: int = 200, horizon: datetime | None = None
    ) -> list[Record]:
        # Done again after a lost answer, the first claim's records stay held until `hold`
        # runs out, as a sweeper's that stopped would: swept a little later, never twice.
        rows = self._rows(
            "WITH due AS (SELECT id FROM records"
            " WHERE due_at <= coalesce(%(horizon)s::timestamptz, clock_timestamp())"
            " AND (sweep_until IS NULL OR sweep_until < clock_timestamp())"
            " ORDER BY due_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
            " UPDATE records r SET sweep_owner = %(owner)s,"
            " sweep_until = clock_timestamp() + make_interval(secs => %(hold)s)"
            " FROM due WHERE r.id = due.id RETURNING r.id, r.doc",
            {"horizon": horizon, "limit": limit, "owner": owner, "hold": hold},
        )
        return self._decode_rows(rows)

    def count_due(self, cap: int = 10_000) -> int:
        row = self._first(
            "SELECT count(*) FROM (SELECT 1 FROM records"
            " WHERE due_at <= clock_timestamp() LIMIT %s) due",
            (cap,),
        )
        return int(row[0])

    def release_due(self, owner: str, ids: Iterable[str]) -> None:
        ids = list(ids)
        if not ids:
            return
        self._write(
            "UPDATE records SET sweep_owner = NULL, sweep_until = NULL"
            " WHERE id = ANY(%s) AND sweep_owner = %s",
            (ids, owner),
        )

    def archive(self, before: datetime, limit: int = 500) -> int:
        return self._write(
            "WITH moved AS (DELETE FROM records WHERE id IN (SELECT id FROM records"
            " WHERE settled_at < %s ORDER BY settled_at LIMIT %s FOR UPDATE SKIP LOCKED)"
            " RETURNING id, kind, doc, requester, created_at)"
            " INSERT INTO archive (id, kind, doc, requester, created_at)"
            " SELECT id, kind, doc, requester, created_at FROM moved"
            " ON CONFLICT (id) DO NOTHING",
            (before, limit),
        )

    def requests(self, *statuses: Status) -> Iterator[InviteRequest]:
        rows = self._rows("SELECT doc FROM records WHERE kind = 'request' ORDER BY created_at")
        for (doc,) in rows:
            request = InviteRequest.model_validate(doc)
            if not statuses or request.status in statuses:
                yield request

    def batches(self) -> list[InviteBatch]:
        rows = self._rows("SELECT doc FROM records WHERE kind = 'batch' ORDER BY created_at")
        return [InviteBatch.model_validate(doc) for (doc,) in rows]

    # -- audit log, small state, periodic jobs --------------------------------------------------

    def _append_audit(self, entry: AuditEvent) -> None:
        doc = Jsonb(entry.model_dump(mode="json"))
        tries = 0

        def append(conn: psycopg.Connection) -> None:
            nonlocal tries
            tries += 1
            if tries == 1:
                conn.execute(AUDIT_INSERT, audit_row(entry))
                return
            # Again after a lost connection: not a second time if the first was committed.
            conn.execute(
                "INSERT INTO audit (at, request_id, doc) SELECT %(at)s, %(id)s, %(doc)s"
                " WHERE NOT EXISTS (SELECT 1 FROM audit WHERE at = %(at)s AND doc = %(doc)s)",
                {"at": entry.at, "id": entry.request_id, "doc": doc},
            )

        self._db.run(append)

    def audit(self, since: datetime | None = None) -> list[AuditEvent]:
        rows = self._rows(
            "SELECT doc FROM audit WHERE %s::timestamptz IS NULL OR at >= %s ORDER BY at, id",
            (since, since),
        )
        return [AuditEvent.model_validate(doc) for (doc,) in rows]

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._first("SELECT value FROM meta WHERE key = %s", (key,))
        return row[0] if row else default

    def set_meta(self, key: str, value: Any) -> None:
        self._write(
            "INSERT INTO meta (key, value) VALUES (%s, %s)"
            " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            (key, Jsonb(value)),
        )

    def delete_meta(self, key: str) -> None:
        self._write("DELETE FROM meta WHERE key = %s", (key,))

    def add_to_meta_set(self, key: str, value: str) -> bool:
        def add(conn: psycopg.Connection) -> bool:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (%s, '[]'::jsonb) ON CONFLICT DO NOTHING",
                (key,),
            )
            (members,) = conn.execute(
                "SELECT value FROM meta WHERE key = %s FOR UPDATE", (key,)
            ).fetchone()
            if value in members:
                return False
            conn.execute(
                "UPDATE meta SET value = %s WHERE key = %s", (Jsonb(sorted([*members, value])), key)
            )
            return True

        return self._db.run(add, tx=True)

    def remove_from_meta_set(self, key: str, value: str) -> bool:
        # One statement: the row is locked by the update, the list read as it is then.
        row = self._first(
            "UPDATE meta SET value = value - %s WHERE key = %s AND value ? %s RETURNING 1",
            (value, key, value),
        )
        return row is not None

    def claim_period(self, name: str, seconds: float, owner: str) -> bool:
        # Done again after a lost answer, the period is taken and this caller skips it.
        row = self._first(
            "INSERT INTO periodic (name, next_at, owner)"
            " VALUES (%(name)s, clock_timestamp() + make_interval(secs => %(secs)s), %(owner)s)"
            " ON CONFLICT (name) DO UPDATE SET next_at = EXCLUDED.next_at,"
            " owner = EXCLUDED.owner WHERE periodic.next_at <= clock_timestamp()"
            " RETURNING 1",
            {"name": name, "secs": seconds, "owner": owner},
        )
        return row is not None

    def take_quota(self, key: str, wanted: int, limit: int) -> int:
        return self._db.run(lambda conn: take(conn, key, wanted, limit))

    def forget_quotas(self, before: str) -> int:
        return self._write("DELETE FROM quotas WHERE key < %s", (before,))

    # -- awork's rate limit, shared ------------------------------------------------------------

    def rate_limiter(self, per_second: int, per_minute: int) -> SharedRateLimiter:
        return SharedRateLimiter(self._conn, per_second, per_minute)

    # -- schema and moving ---------------------------------------------------------------------

    def migrate(self) -> int:
        with self._tx() as conn:
            return schema.migrate(conn)

    def export(self) -> Iterator[dict[str, Any]]:
        with self._conn() as conn:
            items = schema.export_items(conn)
        yield from items

    def import_items(self, items: Iterable[dict[str, Any]]) -> dict[str, int]:
        with self._tx() as conn:
            counts = schema.import_items(conn, items, self.schedule)
        with self._conn() as conn:
            schema.analyze(conn)
        return counts
