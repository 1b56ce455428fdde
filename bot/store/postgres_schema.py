"""PostgreSQL's tables: the migrations that create them, how a record is written into them,
and a whole store moved in and out of them (`invite-bot export` / `import`).

A record is a row: its JSON document (`doc`, the same JSON the sqlitedict engine keeps) and its
index facets as columns, with partial indexes - open addresses (a side table), a requester's
list, the approvers' list, due work by time, settled by time. The schema is created and
migrated by the bot (`invite_schema` holds the version) under an advisory lock, so replicas
starting at once migrate once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from bot.domain.records import AuditEvent, Schedule
from bot.store.base import Facets, Record, decode, facets

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x696E_7669_7465_0001  # pg_advisory_xact_lock keys, fixed for this app
RATE_LOCK = 0x696E_7669_7465_0002
# With an address's hash, the two-key advisory lock an ask for that address takes (two-key
# locks are a key space apart from the one-key ones above).
ADDRESS_LOCKS = 0x696E_7669


def _take_slot_saying_done(locked: bool) -> str:
    """`invite_take_slot` with the calls answered since this replica's last slot said with it
    (`done_ago` seconds before now); `locked`: under the slot's advisory lock (migration 5), as
    the holder prunes the same rows."""
    lock = (
        "PERFORM pg_advisory_xact_lock(lock_key);  -- taken again inside: re-entrant"
        if locked
        else ""
    )
    return f"""CREATE OR REPLACE FUNCTION invite_take_slot(
            lock_key bigint, counts int[], windows float8[], cap float8, prune float8,
            done_ids bigint[], done_ago float8[])
        RETURNS TABLE (slot bigint, wait float8) LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            {lock}
            IF coalesce(array_length(done_ids, 1), 0) > 0 THEN
                UPDATE awork_calls c SET counted_at = least(c.counted_at,
                    clock_timestamp() - make_interval(secs => d.ago))
                  FROM unnest(done_ids, done_ago) AS d(id, ago) WHERE c.id = d.id;
            END IF;
            RETURN QUERY SELECT * FROM invite_take_slot(lock_key, counts, windows, cap, prune);
        END $$"""  # noqa: S608 - constant text


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
    # Counters (the policy's daily limit): how many are used, and how many the last call got.
    2: ["CREATE TABLE quotas (key text PRIMARY KEY, used int NOT NULL, granted int NOT NULL)"],
    # awork's shared rate limit, one statement a call (bot/store/postgres_ratelimit.py): a
    # function, so that what it reads after taking the lock is what the last holder wrote.
    3: [
        """CREATE OR REPLACE FUNCTION invite_take_slot(
            lock_key bigint, counts int[], windows float8[], cap float8, prune float8)
        RETURNS TABLE (slot bigint, wait float8) LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            now_ts timestamptz;
            paused timestamptz;
            waiting float8 := 0;
            nth timestamptz;
        BEGIN
            PERFORM pg_advisory_xact_lock(lock_key);
            now_ts := clock_timestamp();
            SELECT until INTO paused FROM awork_pause WHERE id = 1;
            IF paused IS NOT NULL THEN
                waiting := extract(epoch FROM paused - now_ts);
            END IF;
            FOR i IN 1 .. coalesce(array_length(counts, 1), 0) LOOP
                SELECT counted_at INTO nth FROM awork_calls
                 WHERE counted_at > now_ts - make_interval(secs => windows[i])
                 ORDER BY counted_at DESC OFFSET counts[i] - 1 LIMIT 1;
                IF FOUND THEN
                    waiting := greatest(waiting,
                        extract(epoch FROM nth + make_interval(secs => windows[i]) - now_ts));
                END IF;
            END LOOP;
            IF waiting > 0 THEN
                RETURN QUERY SELECT NULL::bigint, waiting;
                RETURN;
            END IF;
            IF prune IS NOT NULL THEN
                DELETE FROM awork_calls WHERE counted_at < now_ts - make_interval(secs => prune);
            END IF;
            RETURN QUERY INSERT INTO awork_calls (counted_at)
                VALUES (now_ts + make_interval(secs => cap)) RETURNING id, 0::float8;
        END $$"""
    ],
    # The calls whose answers came since this replica's last slot count from then (`done_ago`
    # seconds before now) - said with its next slot, in its one statement, not one their own.
    4: [_take_slot_saying_done(locked=False)],
    # The answered calls are said under the lock too: updating them before it, while the
    # holder prunes the same rows, could deadlock two replicas.
    5: [_take_slot_saying_done(locked=True)],
}
SCHEMA_VERSION = max(MIGRATIONS)

COLUMNS = "kind, status, doc, requester, created_at, updated_at, approvable, due_at, settled_at"


def migrate(conn: psycopg.Connection) -> int:
    """Create or upgrade the schema in the transaction `conn` is in; the version."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
    conn.execute(
        "CREATE TABLE IF NOT EXISTS invite_schema (version int PRIMARY KEY,"
        " applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"
    )
    (current,) = conn.execute("SELECT coalesce(max(version), 0) FROM invite_schema").fetchone()
    for version in range(current + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS[version]:
            conn.execute(statement)
        conn.execute("INSERT INTO invite_schema (version) VALUES (%s)", (version,))
        log.info("store schema migrated to version %d", version)
    return max(current, SCHEMA_VERSION)


# -- a record as rows ----------------------------------------------------------------------------


def row(record: Record, f: Facets) -> dict[str, Any]:
    """The `records` row of `record`: its document and its facets."""
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


def set_emails(conn: psycopg.Connection, record: Record, f: Facets) -> None:
    """The addresses `record` holds open, in the side table (none once it is settled)."""
    conn.execute("DELETE FROM open_emails WHERE record_id = %s", (record.id,))
    if f.open_emails:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO open_emails (email, record_id, target, created_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [(email, record.id, f.open_target, f.created_at) for email in f.open_emails],
            )


INSERT_NEW = (
    "WITH held AS (SELECT target FROM open_emails WHERE email = ANY(%(unless)s::text[])"  # noqa: S608 - a constant column list
    "  ORDER BY created_at LIMIT 1),"
    f" new AS (INSERT INTO records (id, {COLUMNS})"
    "  SELECT %(id)s, %(kind)s, %(status)s, %(doc)s, %(requester)s, %(created_at)s,"
    "  %(updated_at)s, %(approvable)s, %(due_at)s, %(settled_at)s"
    "  WHERE NOT EXISTS (SELECT 1 FROM archive WHERE id = %(id)s)"
    "  AND NOT EXISTS (SELECT 1 FROM held) ON CONFLICT (id) DO NOTHING RETURNING id),"
    " emails AS (INSERT INTO open_emails (email, record_id, target, created_at)"
    "  SELECT email, %(id)s, %(target)s, %(created_at)s"
    "  FROM unnest(%(emails)s::text[]) AS email WHERE EXISTS (SELECT 1 FROM new)"
    "  ON CONFLICT DO NOTHING)"
)
# Only with audit lines: a statement that names the audit log waits for its lock. The lines
# go as one JSON array: psycopg writes a jsonb[] parameter's every quote out in Python (62 µs
# for one line's three arrays, against 5 µs for the one JSON document).
AUDIT_LINES = (
    ", lines AS (INSERT INTO audit (at, request_id, doc)"
    " SELECT (line->>'at')::timestamptz, line->>'request_id', line->'doc'"
    " FROM jsonb_array_elements(%(lines)s::jsonb) AS line WHERE EXISTS (SELECT 1 FROM new))"
)
INSERTED = " SELECT EXISTS (SELECT 1 FROM new), (SELECT target FROM held)"
# Each address's lock, in one order for all (two asks naming the same addresses in another
# order cannot deadlock), held until the transaction ends.
LOCK_ADDRESSES = (
    "SELECT pg_advisory_xact_lock(%s::int, key) FROM (SELECT DISTINCT hashtext(email) AS key"
    " FROM unnest(%s::text[]) AS email ORDER BY key) AS keys"
)


def insert_new(
    conn: psycopg.Connection,
    record: Record,
    f: Facets,
    audit: Iterable[AuditEvent] = (),
    unless_open: Iterable[str] = (),
) -> psycopg.Cursor:
    """A new record, its open addresses and its audit lines in one statement, unless one of
    `unless_open` is held by another record (whose addresses' locks are taken first, by a
    statement before it); its one row: (inserted, the id that address points to)."""
    lines = list(audit)
    unless = list(unless_open)
    if unless:
        # Two asks for one address at the same moment: the second waits here until the first
        # is committed, and its insert, whose snapshot is taken after, sees the first's
        # address. In the same transaction, and on an ask's path the same round trip.
        conn.execute(LOCK_ADDRESSES, (ADDRESS_LOCKS, unless))
    return conn.execute(
        INSERT_NEW + (AUDIT_LINES if lines else "") + INSERTED,
        {
            **row(record, f),
            "unless": unless,
            "target": f.open_target,
            "emails": list(f.open_emails),
            "lines": Jsonb(
                [
                    {
                        "at": line.at.isoformat(),
                        "request_id": line.request_id,
                        "doc": line.model_dump(mode="json"),
                    }
                    for line in lines
                ]
            ),
        },
    )


# -- moving a whole store ------------------------------------------------------------------------


def export_items(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Everything, as JSON-able items: records (live and archived), meta, audit."""
    records = conn.execute("SELECT doc FROM records ORDER BY created_at").fetchall()
    archived = conn.execute("SELECT doc FROM archive ORDER BY created_at").fetchall()
    meta = conn.execute("SELECT key, value FROM meta ORDER BY key").fetchall()
    audit = conn.execute("SELECT doc FROM audit ORDER BY at, id").fetchall()
    return [
        *({"type": "record", "doc": doc} for (doc,) in records),
        *({"type": "archived", "doc": doc} for (doc,) in archived),
        *({"type": "meta", "key": key, "value": value} for key, value in meta),
        *({"type": "audit", "doc": doc} for (doc,) in audit),
    ]


def import_items(
    conn: psycopg.Connection, items: Iterable[dict[str, Any]], schedule: Schedule
) -> dict[str, int]:
    """Take in export items in the transaction `conn` is in; what exists already is kept."""
    counts = {"record": 0, "archived": 0, "meta": 0, "audit": 0, "kept": 0}
    existing = {
        json.dumps(doc, sort_keys=True)
        for (doc,) in conn.execute("SELECT doc FROM audit").fetchall()
    }
    for item in items:
        kind = item["type"]
        if kind in ("record", "archived"):
            record = decode(item["doc"]["id"], item["doc"])
            f = facets(record, schedule)
            if kind == "record":
                taken = insert_new(conn, record, f).fetchone()[0]
            else:
                taken = conn.execute(
                    "INSERT INTO archive (id, kind, doc, requester, created_at)"
                    " SELECT %(id)s, %(kind)s, %(doc)s, %(requester)s, %(created_at)s"
                    " WHERE NOT EXISTS (SELECT 1 FROM records WHERE id = %(id)s)"
                    " ON CONFLICT (id) DO NOTHING",
                    row(record, f),
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
    return counts


def analyze(conn: psycopg.Connection) -> None:
    """Fresh statistics after an import, so the planner uses the indexes at once."""
    for table in ("records", "open_emails", "archive", "audit"):
        conn.execute(f"ANALYZE {table}")
