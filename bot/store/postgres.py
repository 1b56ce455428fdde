"""The PostgreSQL engine: any number of replicas, on any hosts, share one database.

- A record is a row: its JSON document (`doc`, the same JSON the sqlitedict engine keeps) and
  its index facets as columns, with partial indexes - open addresses (a side table), a
  requester's list, the approvers' list, due work by time, settled by time.
- Compare-and-set is a row lock (`SELECT ... FOR UPDATE`) for one record's read-check-write;
  leases are judged on the database's clock (`clock_timestamp()`), one clock for all replicas.
- Due work is claimed with `FOR UPDATE SKIP LOCKED`: each due record goes to one sweeper.
- Periodic jobs are claimed by an atomic upsert on their next run time, and awork's rate
  limit is counted in a table under an advisory lock, so it holds for all replicas together.
- The schema is created and migrated by the bot (`invite_schema` holds the version) under an
  advisory lock, so replicas starting at once migrate once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolClosed

from bot.awork.ratelimit import RateLimiter
from bot.domain.batches import InviteBatch
from bot.domain.records import AuditEvent, InviteRequest, Schedule, Status
from bot.store.base import Change, Facets, Record, Store, StoreClosed, decode, facets

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x696E_7669_7465_0001  # pg_advisory_xact_lock keys, fixed for this app
RATE_LOCK = 0x696E_7669_7465_0002

MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE records (
            id text PRIMARY KEY,
            kind text NOT NULL,
            status text NOT NULL,
            doc jsonb NOT NULL,
            requester text,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            approvable boolean NOT NULL DEFAULT false,
            due_at timestamptz,
            settled_at timestamptz,
            sweep_owner text,
            sweep_until timestamptz)""",
        "CREATE INDEX records_requester ON records (requester, created_at DESC)"
        " WHERE requester IS NOT NULL",
        "CREATE INDEX records_approvable ON records (created_at) WHERE approvable",
        "CREATE INDEX records_due ON records (due_at) WHERE due_at IS NOT NULL",
        "CREATE INDEX records_settled ON records (settled_at) WHERE settled_at IS NOT NULL",
        """CREATE TABLE open_emails (
            email text NOT NULL,
            record_id text NOT NULL REFERENCES records (id) ON DELETE CASCADE,
            target text NOT NULL,
            created_at timestamptz NOT NULL,
            PRIMARY KEY (email, record_id))""",
        "CREATE INDEX open_emails_record ON open_emails (record_id)",
        """CREATE TABLE archive (
            id text PRIMARY KEY,
            kind text NOT NULL,
            doc jsonb NOT NULL,
            requester text,
            created_at timestamptz NOT NULL,
            archived_at timestamptz NOT NULL DEFAULT clock_timestamp())""",
        """CREATE TABLE audit (
            id bigserial PRIMARY KEY,
            at timestamptz NOT NULL,
            request_id text,
            doc jsonb NOT NULL)""",
        "CREATE INDEX audit_at ON audit (at)",
        "CREATE INDEX audit_request ON audit (request_id)",
        "CREATE TABLE meta (key text PRIMARY KEY, value jsonb NOT NULL)",
        "CREATE TABLE periodic (name text PRIMARY KEY, next_at timestamptz NOT NULL, owner text)",
        "CREATE TABLE awork_calls (id bigserial PRIMARY KEY, counted_at timestamptz NOT NULL)",
        "CREATE INDEX awork_calls_counted ON awork_calls (counted_at)",
        "CREATE TABLE awork_pause (id int PRIMARY KEY, until timestamptz NOT NULL)",
    ],
}
SCHEMA_VERSION = max(MIGRATIONS)

COLUMNS = "kind, status, doc, requester, created_at, updated_at, approvable, due_at, settled_at"


def _row(record: Record, f: Facets) -> dict[str, Any]:
    return {
        "id": record.id,
        "kind": f.kind,
        "status": f.status,
        "doc": Jsonb(record.model_dump(mode="json")),
        "requester": f.requester,
        "created_at": f.created_at,
        "updated_at": record.updated_at,
        "approvable": f.approvable,
        "due_at": f.due_at,
        "settled_at": f.settled_at,
    }


class PostgresStore(Store):
    engine = "postgresql"

    def __init__(
        self, url: str, schedule: Schedule | None = None, max_connections: int = 20
    ) -> None:
        super().__init__(schedule)
        self.closed = False
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True},
            timeout=10.0,
            open=False,
            name="invite-bot",
        )
        try:
            self._pool.open(wait=True, timeout=10.0)
        except Exception:
            self._pool.close()
            raise
        self._rate_calls = 0
        self.migrate()

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

    @staticmethod
    def _set_emails(conn: psycopg.Connection, record: Record, f: Facets) -> None:
        conn.execute("DELETE FROM open_emails WHERE record_id = %s", (record.id,))
        if f.open_emails:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO open_emails (email, record_id, target, created_at)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [(email, record.id, f.open_target, f.created_at) for email in f.open_emails],
                )

    def _insert(self, record: Record, f: Facets) -> bool:
        with self._tx() as conn:
            return self._insert_in(conn, record, f)

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
                _row(updated, f),
            )
            before = facets(current, self.schedule) if current is not None else None
            if before is None or (before.open_emails, before.open_target) != (
                f.open_emails,
                f.open_target,
            ):
                self._set_emails(conn, updated, f)
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

    def rate_limiter(self, per_second: int, per_minute: int) -> RateLimiter:
        return SharedRateLimiter(self, per_second, per_minute)

    def rate_acquire(self, limits: list[tuple[int, float]], cap: float) -> tuple[int | None, float]:
        """Take a slot if every window has room: (slot id, 0); else (None, seconds to wait)."""
        with self._tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (RATE_LOCK,))
            now, paused = conn.execute(
                "SELECT clock_timestamp(), (SELECT until FROM awork_pause WHERE id = 1)"
            ).fetchone()
            wait = (paused - now).total_seconds() if paused is not None else 0.0
            for count, window in limits:
                row = conn.execute(
                    "SELECT counted_at FROM awork_calls WHERE counted_at > %s"
                    " ORDER BY counted_at DESC OFFSET %s LIMIT 1",
                    (now - timedelta(seconds=window), count - 1),
                ).fetchone()
                if row is not None:
                    wait = max(wait, (row[0] + timedelta(seconds=window) - now).total_seconds())
            if wait > 0:
                return None, wait
            (slot,) = conn.execute(
                "INSERT INTO awork_calls (counted_at) VALUES (%s) RETURNING id",
                (now + timedelta(seconds=cap),),
            ).fetchone()
            self._rate_calls += 1
            if self._rate_calls % 200 == 0:  # forget calls older than the longest window
                longest = max((window for _, window in limits), default=60.0)
                conn.execute(
                    "DELETE FROM awork_calls WHERE counted_at < %s",
                    (now - timedelta(seconds=longest + 5),),
                )
            return slot, 0.0

    def rate_done(self, slot: int) -> None:
        with self._conn() as conn:
            conn.execute(
                "UPDATE awork_calls SET counted_at = least(counted_at, clock_timestamp())"
                " WHERE id = %s",
                (slot,),
            )

    def rate_pause(self, seconds: float) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO awork_pause (id, until)"
                " VALUES (1, clock_timestamp() + make_interval(secs => %(s)s))"
                " ON CONFLICT (id) DO UPDATE SET until = greatest(awork_pause.until,"
                " EXCLUDED.until)",
                {"s": seconds},
            )

    # -- schema and moving ---------------------------------------------------------------------

    def migrate(self) -> int:
        with self._tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS invite_schema (version int PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"
            )
            (current,) = conn.execute(
                "SELECT coalesce(max(version), 0) FROM invite_schema"
            ).fetchone()
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                conn.execute("INSERT INTO invite_schema (version) VALUES (%s)", (version,))
                log.info("store schema migrated to version %d", version)
            return max(current, SCHEMA_VERSION)

    def export(self) -> Iterator[dict[str, Any]]:
        with self._conn() as conn:
            records = conn.execute("SELECT doc FROM records ORDER BY created_at").fetchall()
            archived = conn.execute("SELECT doc FROM archive ORDER BY created_at").fetchall()
            meta = conn.execute("SELECT key, value FROM meta ORDER BY key").fetchall()
            audit = conn.execute("SELECT doc FROM audit ORDER BY at, id").fetchall()
        for (doc,) in records:
            yield {"type": "record", "doc": doc}
        for (doc,) in archived:
            yield {"type": "archived", "doc": doc}
        for key, value in meta:
            yield {"type": "meta", "key": key, "value": value}
        for (doc,) in audit:
            yield {"type": "audit", "doc": doc}

    def import_items(self, items: Iterable[dict[str, Any]]) -> dict[str, int]:
        counts = {"record": 0, "archived": 0, "meta": 0, "audit": 0, "kept": 0}
        with self._tx() as conn:
            existing = {
                json.dumps(doc, sort_keys=True)
                for (doc,) in conn.execute("SELECT doc FROM audit").fetchall()
            }
            for item in items:
                kind = item["type"]
                if kind in ("record", "archived"):
                    record = decode(item["doc"]["id"], item["doc"])
                    f = facets(record, self.schedule)
                    if kind == "record":
                        taken = self._insert_in(conn, record, f)
                    else:
                        taken = conn.execute(
                            "INSERT INTO archive (id, kind, doc, requester, created_at)"
                            " SELECT %(id)s, %(kind)s, %(doc)s, %(requester)s, %(created_at)s"
                            " WHERE NOT EXISTS (SELECT 1 FROM records WHERE id = %(id)s)"
                            " ON CONFLICT (id) DO NOTHING",
                            _row(record, f),
                        ).rowcount
                elif kind == "meta":
                    taken = conn.execute(
                        "INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        (item["key"], Jsonb(item["value"])),
                    ).rowcount
                elif kind == "audit":
                    taken = json.dumps(item["doc"], sort_keys=True) not in existing
                    if taken:
                        entry = AuditEvent.model_validate(item["doc"])
                        conn.execute(
                            "INSERT INTO audit (at, request_id, doc) VALUES (%s, %s, %s)",
                            (entry.at, entry.request_id, Jsonb(item["doc"])),
                        )
                else:
                    raise ValueError(f"unknown export item {kind!r}")
                counts[kind if taken else "kept"] += 1
        with self._conn() as conn:  # fresh statistics, so the planner uses the indexes at once
            for table in ("records", "open_emails", "archive", "audit"):
                conn.execute(f"ANALYZE {table}")
        return counts

    def _insert_in(self, conn: psycopg.Connection, record: Record, f: Facets) -> bool:
        inserted = conn.execute(
            f"INSERT INTO records (id, {COLUMNS})"  # noqa: S608 - constant column list
            " SELECT %(id)s, %(kind)s, %(status)s, %(doc)s, %(requester)s, %(created_at)s,"
            " %(updated_at)s, %(approvable)s, %(due_at)s, %(settled_at)s"
            " WHERE NOT EXISTS (SELECT 1 FROM archive WHERE id = %(id)s)"
            " ON CONFLICT (id) DO NOTHING",
            _row(record, f),
        ).rowcount
        if inserted:
            self._set_emails(conn, record, f)
        return bool(inserted)


class SharedRateLimiter(RateLimiter):
    """awork's per-workspace limit for every replica together: the calls are counted in the
    database, on its clock (see `RateLimiter` for how a call is counted)."""

    def __init__(
        self,
        store: PostgresStore,
        per_second: int = 50,
        per_minute: int = 1000,
        cap: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(per_second, per_minute, cap=cap, sleep=sleep)
        self._store = store

    def acquire(self) -> Any:
        while True:
            slot, wait = self._store.rate_acquire(self.limits, self.cap)
            if slot is not None:
                return slot
            self.waited += wait
            self._sleep(min(wait, 1.0))

    def done(self, cell: Any) -> None:
        self._store.rate_done(cell)

    def pause(self, seconds: float) -> None:
        self._store.rate_pause(seconds)
