"""The embedded engine's schema and moving: upgrading an old file to the one-table layout
(bot/store/sqlite.py), and the export lines `invite-bot export` writes and `import` reads -
as bot/store/postgres_schema.py is for PostgreSQL."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any, Protocol

from bot.domain.records import AuditEvent, Schedule
from bot.store.base import Facets, Record, decode, facets, utc_key
from bot.store.leasing import WORKING


class SqliteStore(Protocol):
    """What of bot/store/sqlite.py's store the schema and moving use (no import back)."""

    path: str
    schedule: Schedule
    _db: Any  # the one sqlitedict table

    def _open(self) -> AbstractContextManager[None]: ...
    def _lock(self) -> AbstractContextManager[None]: ...
    def _range(
        self, prefix: str, upper: str | None = None, limit: int = -1, reverse: bool = False
    ) -> list[tuple[str, Any]]: ...
    def _put(self, record: Record, facets_: Facets, old_keys: Iterable[str] = ()) -> None: ...


SCHEMA_VERSION = 2
TABLES = "SELECT name FROM sqlite_master WHERE type = 'table'"


def migrate(store: SqliteStore) -> int:
    """Version 1 kept requests, batches, meta and audit in four tables without indexes;
    version 2 is the one table bot/store/sqlite.py describes. Upgrading reads the old tables once."""
    with store._lock():
        version = store._db.get("v|schema")
        if version == SCHEMA_VERSION:
            return version
        # On the store's own connection: sqlitedict's get_tablenames opens one it never
        # closes, left to the garbage collector. With the collector off during start-up it
        # lingered, and a second process on the same file met "disk I/O error".
        tables = {name for (name,) in store._db.conn.select(TABLES)}
        old = {"requests", "batches", "meta", "audit"} & tables
        for table in sorted(old):
            rows = list(store._db.conn.select(f'SELECT key, value FROM "{table}"'))  # noqa: S608
            for key, value in rows:
                raw = json.loads(value)
                if table in ("requests", "batches"):
                    record = decode(key, raw)
                    if str(record.status) in WORKING and record.claim_until is None:
                        # Version 1 claimed for 10 minutes by process; now a lease.
                        since = record.claimed_at or record.updated_at
                        record = record.model_copy(
                            update={"claim_until": since + timedelta(minutes=10)}
                        )
                    store._put(record, facets(record, store.schedule))
                elif table == "meta":
                    store._db[f"m|{key}"] = raw
                else:
                    entry = AuditEvent.model_validate(raw)
                    store._db[f"l|{utc_key(entry.at)}|{key}"] = raw
            store._db.conn.execute(f'DROP TABLE "{table}"')
        store._db["v|schema"] = SCHEMA_VERSION
        return SCHEMA_VERSION


def export_items(store: SqliteStore) -> Iterator[dict[str, Any]]:
    """Every record, archived record, small state and audit entry, as export lines."""
    with store._open():
        records = store._range("r|")
        archived = store._range("a|")
        meta = store._range("m|")
        audit = store._range("l|")
    for _, raw in records:
        yield {"type": "record", "doc": raw}
    for _, raw in archived:
        yield {"type": "archived", "doc": raw}
    for key, value in meta:
        yield {"type": "meta", "key": key[2:], "value": value}
    for _, raw in audit:
        yield {"type": "audit", "doc": raw}


def import_items(store: SqliteStore, items: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Export lines into the store, keeping what it holds already; counts by kind."""
    counts = {"record": 0, "archived": 0, "meta": 0, "audit": 0, "kept": 0}
    with store._lock():
        existing_audit = {json.dumps(raw, sort_keys=True) for _, raw in store._range("l|")}
        for item in items:
            kind = item["type"]
            if kind in ("record", "archived"):
                record = decode(item["doc"]["id"], item["doc"])
                if f"r|{record.id}" in store._db or f"a|{record.id}" in store._db:
                    counts["kept"] += 1
                    continue
                if kind == "record":
                    store._put(record, facets(record, store.schedule))
                else:
                    store._db[f"a|{record.id}"] = record.model_dump(mode="json")
            elif kind == "meta":
                if f"m|{item['key']}" in store._db:
                    counts["kept"] += 1
                    continue
                store._db[f"m|{item['key']}"] = item["value"]
            elif kind == "audit":
                if json.dumps(item["doc"], sort_keys=True) in existing_audit:
                    counts["kept"] += 1
                    continue
                entry = AuditEvent.model_validate(item["doc"])
                key = f"l|{utc_key(entry.at)}|import-{secrets.token_hex(4)}"
                store._db[key] = item["doc"]
            else:
                raise ValueError(f"unknown export item {kind!r}")
            counts[kind] += 1
    return counts
