"""The PostgreSQL engine: any number of replicas, on any hosts, share one database.

- A record is a row (its JSON document and its index facets as columns; see
  `postgres_schema`), so every lookup on a request's path is an indexed read.
- Compare-and-set is a row lock (`SELECT ... FOR UPDATE`) for one record's read-check-write;
  leases are judged on the database's clock (`clock_timestamp()`), one clock for all replicas.
- Due work is claimed with `FOR UPDATE SKIP LOCKED`: each due record goes to one sweeper.
- Periodic jobs are claimed by an atomic upsert on their next run time, and awork's rate
  limit is counted in a table (`postgres_ratelimit`), so it holds for all replicas together.
- Opening probes the database first (`postgres_pool`): a database that is not there is one
  line within seconds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import PoolClosed

from bot.domain.batches import InviteBatch
from bot.domain.records import AuditEvent, InviteRequest, Schedule, Status
from bot.store import postgres_schema as schema
from bot.store.base import Change, Facets, Record, Store, StoreClosed, decode, facets
from bot.store.postgres_pool import CONNECT_TIMEOUT, open_pool
from bot.store.postgres_ratelimit import SharedRateLimiter


class PostgresStore(Store):
    engine = "postgresql"

    def __init__(
        self,
        url: str,
        schedule: Schedule | None = None,
        max_connections: int = 20,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        super().__init__(schedule)
        self.closed = False
        self._pool = open_pool(url, max_connections, connect_timeout)
        try:
            self.migrate()
        except Exception:
            self.close()
            raise

    @contextlib.contextmanager
    def _conn(self) -> Iterator[psycopg.Connection]:
        if self.closed:
            raise StoreClosed("postgresql")
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolClosed as exc:
            raise StoreClosed("postgresql") from exc

    @contextlib.contextmanager
    def _tx(self) -> Iterator[psycopg.Connection]:
        """One transaction on a pooled connection."""
        with self._conn() as conn, conn.transaction():
            yield conn

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._pool.close()

    def now(self) -> datetime:
        with self._conn() as conn:
            return conn.execute("SELECT clock_timestamp()").fetchone()[0]

    # -- records -----------------------------------------------------------------------------

    def _insert(self, record: Record, f: Facets) -> bool:
        with self._tx() as conn:
            return schema.insert_record(conn, record, f)

    def _mutate(self, record_id: str, change: Change) -> tuple[bool, Record | None]:
        with self._tx() as conn:
            row = conn.execute(
                "SELECT doc, clock_timestamp() FROM records WHERE id = %s FOR UPDATE",
                (record_id,),
            ).fetchone()
            if row is None:
                now = conn.execute("SELECT clock_timestamp()").fetchone()[0]
                current = None
            else:
                current, now = decode(record_id, row[0]), row[1]
            updated = change(current, now)
            if updated is None:
                return False, current
            f = facets(updated, self.schedule)
            conn.execute(
                "UPDATE records SET status = %(status)s, doc = %(doc)s,"
                " requester = %(requester)s, created_at = %(created_at)s,"
                " updated_at = %(updated_at)s, approvable = %(approvable)s,"
                " due_at = %(due_at)s, settled_at = %(settled_at)s WHERE id = %(id)s",
                schema.row(updated, f),
            )
            before = facets(current, self.schedule) if current is not None else None
            if before is None or (before.open_emails, before.open_target) != (
                f.open_emails,
                f.open_target,
            ):
                schema.set_emails(conn, updated, f)
            return True, updated

    def _load(self, record_id: str) -> dict[str, Any] | None:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT doc FROM records WHERE id = %s"
                " UNION ALL SELECT doc FROM archive WHERE id = %s LIMIT 1",
                (record_id, record_id),
            ).fetchone()
        return row[0] if row else None

    def read_many(self, record_ids: list[str]) -> list[Record | None]:
        if not record_ids:
            return []
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT id, doc FROM records WHERE id = ANY(%(ids)s)"
                " UNION ALL SELECT id, doc FROM archive WHERE id = ANY(%(ids)s)",
                {"ids": list(record_ids)},
            ).fetchall()
        found = {record_id: doc for record_id, doc in rows}
        return [
            decode(record_id, found[record_id]) if record_id in found else None
            for record_id in record_ids
        ]

    def _decode_rows(self, rows: Iterable[tuple[str, dict[str, Any]]]) -> list[Record]:
        return [decode(record_id, doc) for record_id, doc in rows]

    # -- indexed lookups -----------------------------------------------------------------------

    def open_addresses(self, emails: Iterable[str]) -> dict[str, str]:
        wanted = sorted({email.lower() for email in emails})
        if not wanted:
            return {}
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT DISTINCT ON (email) email, target FROM open_emails"
                " WHERE email = ANY(%s) ORDER BY email, created_at",
                (wanted,),
            ).fetchall()
        return dict(rows)

    def listed(self, requester_id: str, limit: int = 100) -> list[Record]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT id, doc FROM records WHERE requester = %s"
                " ORDER BY created_at DESC LIMIT %s",
                (requester_id, limit),
            ).fetchall()
        return self._decode_rows(rows)

    def approvable(self, limit: int = 500) -> list[Record]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT id, doc FROM records WHERE approvable ORDER BY created_at LIMIT %s",
                (limit,),
            ).fetchall()
        return self._decode_rows(rows)

    def claim_due(
        self, owner: str, hold: float, limit: int = 200, horizon: datetime | None = None
    ) -> list[Record]:
        with self._conn() as conn:
            rows = conn.execute(
                "WITH due AS (SELECT id FROM records"
                " WHERE due_at <= coalesce(%(horizon)s::timestamptz, clock_timestamp())"
                " AND (sweep_until IS NULL OR sweep_until < clock_timestamp())"
                " ORDER BY due_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
                " UPDATE records r SET sweep_owner = %(owner)s,"
                " sweep_until = clock_timestamp() + make_interval(secs => %(hold)s)"
                " FROM due WHERE r.id = due.id RETURNING r.id, r.doc",
                {"horizon": horizon, "limit": limit, "owner": owner, "hold": hold},
            ).fetchall()
        return self._decode_rows(rows)

    def count_due(self, cap: int = 10_000) -> int:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM records"
                " WHERE due_at <= clock_timestamp() LIMIT %s) due",
                (cap,),
            ).fetchone()
        return int(row[0])

    def release_due(self, owner: str, ids: Iterable[str]) -> None:
        ids = list(ids)
        if not ids:
            return
        with self._conn() as conn:
            conn.execute(
                "UPDATE records SET sweep_owner = NULL, sweep_until = NULL"
                " WHERE id = ANY(%s) AND sweep_owner = %s",
                (ids, owner),
            )

    def archive(self, before: datetime, limit: int = 500) -> int:
        with self._tx() as conn:
            return conn.execute(
                "WITH moved AS (DELETE FROM records WHERE id IN (SELECT id FROM records"
                " WHERE settled_at < %s ORDER BY settled_at LIMIT %s FOR UPDATE SKIP LOCKED)"
                " RETURNING id, kind, doc, requester, created_at)"
                " INSERT INTO archive (id, kind, doc, requester, created_at)"
                " SELECT id, kind, doc, requester, created_at FROM moved"
                " ON CONFLICT (id) DO NOTHING",
                (before, limit),
            ).rowcount

    def requests(self, *statuses: Status) -> Iterator[InviteRequest]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT doc FROM records WHERE kind = 'request' ORDER BY created_at"
            ).fetchall()
        for (doc,) in rows:
            request = InviteRequest.model_validate(doc)
            if not statuses or request.status in statuses:
                yield request

    def batches(self) -> list[InviteBatch]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT doc FROM records WHERE kind = 'batch' ORDER BY created_at"
            ).fetchall()
        return [InviteBatch.model_validate(doc) for (doc,) in rows]

    # -- audit log, small state, periodic jobs --------------------------------------------------

    def _append_audit(self, entry: AuditEvent) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO audit (at, request_id, doc) VALUES (%s, %s, %s)",
                (entry.at, entry.request_id, Jsonb(entry.model_dump(mode="json"))),
            )

    def audit(self, since: datetime | None = None) -> list[AuditEvent]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT doc FROM audit WHERE %s::timestamptz IS NULL OR at >= %s ORDER BY at, id",
                (since, since),
            ).fetchall()
        return [AuditEvent.model_validate(doc) for (doc,) in rows]

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self._conn() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: Any) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (%s, %s)"
                " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (key, Jsonb(value)),
            )

    def delete_meta(self, key: str) -> None:
        with self._conn() as conn:
            conn.execute("DELETE FROM meta WHERE key = %s", (key,))

    def add_to_meta_set(self, key: str, value: str) -> bool:
        with self._tx() as conn:
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

    def claim_period(self, name: str, seconds: float, owner: str) -> bool:
        with self._conn() as conn:
            row = conn.execute(
                "INSERT INTO periodic (name, next_at, owner)"
                " VALUES (%(name)s, clock_timestamp() + make_interval(secs => %(secs)s), %(owner)s)"
                " ON CONFLICT (name) DO UPDATE SET next_at = EXCLUDED.next_at,"
                " owner = EXCLUDED.owner WHERE periodic.next_at <= clock_timestamp()"
                " RETURNING 1",
                {"name": name, "secs": seconds, "owner": owner},
            ).fetchone()
        return row is not None

    # -- awork's rate limit, shared ------------------------------------------------------------

    def rate_limiter(self, per_second: int, per_minute: int) -> SharedRateLimiter:
        return SharedRateLimiter(self._tx, self._conn, per_second, per_minute)

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
