"""The embedded engine: one JSON sqlitedict table in one file, for one host.

Records, their index entries, the archive, the audit log and small state all live in one
table ("store") under prefixed keys, so that a change of a record and of its index entries is
one SQLite transaction. Index entries are keys whose order is the index's order (SQLite's
primary key is a B-tree), read with range queries - never a scan of everything stored:

    r|<id>                      a live record           a|<id>      an archived record
    x|<id>                      the record's index keys h|<id>      a sweeper's hold
    io|<email>|<created>|<id>   open requests by address (value: the id to point to)
    iq|<requester>|<created>|<id>   a requester's requests and batches
    ia|<created>|<id>           waiting for approvers   id|<due>|<id>  due work by time
    is|<settled>|<id>           settled, by when (the archive takes the oldest)
    l|<at>|<unique>             the audit log           m|<key>     small state
    p|<name>                    periodic jobs' next run v|schema    the schema version

Compare-and-set holds across threads (a lock) and across processes on this host (an
exclusive `flock` on `<file>.lock`); leases are judged on this host's clock. Several hosts
need the PostgreSQL engine.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.domain.batches import InviteBatch
from bot.domain.clock import utcnow
from bot.domain.listing import Listed, summary
from bot.domain.records import AuditEvent, InviteRequest, Schedule, Status
from bot.store import budget, sqlite_schema
from bot.store.base import (
    AddressOpen,
    Change,
    Counted,
    Facets,
    LimitReached,
    Record,
    Store,
    StoreClosed,
    decode,
    facets,
    utc_key,
)
from bot.store.files import json_table, private_file
from bot.store.sqlite_conn import DirectTable
from bot.store.sqlite_state import TOP, SqliteState, audit_row

if TYPE_CHECKING:
    from bot.awork.ratelimit import Ride

TABLE = "store"
# The connection's page cache, in KiB (SQLite's own is 2 MiB): the file is in the system's
# cache anyway, and after 10,000 requests the server's two 2 MiB caches (then a second
# connection read) were ~2 MiB of its growth (bench/hot_paths.py, docs/benchmarks.md).
CACHE_KIB = 256


def index_keys(record_id: str, f: Facets, listing: dict[str, Any] | None = None) -> dict[str, Any]:
    """The index entries of a record. The approvers' list (`ia|`) holds each record's summary
    (`listing`, bot/domain/listing.py), so that a list is one range read."""
    created = utc_key(f.created_at)
    keys = {f"io|{email}|{created}|{record_id}": f.open_target for email in f.open_emails}
    if f.requester:
        keys[f"iq|{f.requester}|{created}|{record_id}"] = record_id
    if f.approvable:
        keys[f"ia|{created}|{record_id}"] = listing if listing is not None else record_id
    if f.due_at is not None:
        keys[f"id|{utc_key(f.due_at)}|{record_id}"] = record_id
    if f.settled_at is not None:
        keys[f"is|{utc_key(f.settled_at)}|{record_id}"] = record_id
    return keys


class SqliteStore(SqliteState, Store):
    engine = "sqlite"

    def __init__(self, path: str, schedule: Schedule | None = None) -> None:
        super().__init__(schedule)
        self.path = path
        # WAL: readers (another process, `invite-bot audit`) never block a commit. Its
        # statements run in the calling thread, under the locks below (bot/store/sqlite_conn.py).
        self._db = json_table(path, TABLE, autocommit=False, journal_mode="WAL", table=DirectTable)
        self._thread_lock = threading.RLock()
        private_file(f"{path}.lock")
        self._lock_file = open(f"{path}.lock", "a+b")  # noqa: SIM115 - held for the store's life
        self._depth = 0
        self.closed = False
        self.migrate()
        self._db.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        # Each commit synced, whatever SQLite was built to default to (sqlitedict's own
        # connection turns syncing off): without, a power cut or an operating system crash can
        # lose what was answered as stored, or corrupt the file.
        self._db.conn.execute("PRAGMA synchronous = FULL")

    # -- locking -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _open(self) -> Iterator[None]:
        """Any operation: refused at once once closed (`StoreClosed`), and `close` waits for
        operations under way. Under a time budget (bot/store/budget.py) the other threads'
        operations are waited for only for the time left."""
        budget.acquire(self._thread_lock)
        try:
            if self.closed:
                raise StoreClosed(self.path)
            yield
        finally:
            self._thread_lock.release()

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Exclusive across threads and processes, re-entrant in a thread; one transaction,
        committed when the outermost block ends - or rolled back when it ends with an error, so
        that an operation is never half stored (a record's old index entries deleted and its
        new ones not written). Other processes are waited for only for the time left in a
        budget."""
        with self._open():
            if self._depth == 0:
                budget.flock(self._lock_file.fileno())
            self._depth += 1
            failed = True
            try:
                yield
                failed = False
            finally:
                self._depth -= 1
                if self._depth == 0:
                    try:
                        if failed:
                            self._db.conn.rollback()
                        else:
                            self._db.commit(blocking=True)
                    finally:
                        fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)

    def close(self) -> None:
        with self._thread_lock:
            if self.closed:
                return
            self.closed = True
            self._db.close()
        self._lock_file.close()

    def now(self) -> datetime:
        return utcnow()

    # -- raw access --------------------------------------------------------------------------

    def _range(
        self,
        prefix: str,
        upper: str | None = None,
        limit: int = -1,
        reverse: bool = False,
        offset: int = 0,
    ) -> list[tuple[str, Any]]:
        """Keys from `prefix` (to `upper`, default: all that start with `prefix`), in order."""
        order = "DESC" if reverse else "ASC"
        query = (
            f'SELECT key, value FROM "{TABLE}" WHERE key >= ? AND key < ? '  # noqa: S608 - constant
            f"ORDER BY key {order} LIMIT ? OFFSET ?"
        )
        rows = self._db.conn.select(query, (prefix, upper or prefix + TOP, limit, offset))
        return [(key, json.loads(value)) for key, value in rows]

    def _put(
        self,
        record: Record,
        facets_: Facets,
        old_keys: Iterable[str] = (),
        audit: Iterable[AuditEvent] = (),
    ) -> None:
        """A record, its index keys, its list of them and `audit` - two statements at most."""
        keys = index_keys(record.id, facets_, summary(record) if facets_.approvable else None)
        gone = sorted(set(old_keys) - set(keys))
        if gone:
            marks = ", ".join("?" * len(gone))
            delete = f'DELETE FROM "{TABLE}" WHERE key IN ({marks})'  # noqa: S608 - constant
            self._db.conn.execute(delete, gone)
        rows = {
            **keys,
            f"x|{record.id}": sorted(keys),
            f"r|{record.id}": record.model_dump(mode="json"),
            **dict(audit_row(entry) for entry in audit),
        }
        self._db.conn.execute(
            f'REPLACE INTO "{TABLE}" (key, value) VALUES '  # noqa: S608 - constant table
            + ", ".join("(?, ?)" for _ in rows),
            [part for key, value in rows.items() for part in (key, json.dumps(value))],
        )

    # -- records -----------------------------------------------------------------------------

    def _insert(
        self,
        record: Record,
        facets_: Facets,
        counted: Counted | None = None,
        audit: tuple[AuditEvent, ...] = (),
        unless_open: tuple[str, ...] = (),
    ) -> bool:
        with self._lock():
            # One read for both: an address held open, a record (live or archived) of this id.
            found = self._first_keys(unless_open, (f"r|{record.id}", f"a|{record.id}"))
            if any(key[0] != "i" for key, _ in found):
                return False
            if found:
                raise AddressOpen(found[0][1])
            if counted is not None and not self.take_quota(counted[0], 1, counted[1]):
                raise LimitReached(counted[0])
            self._put(record, facets_, audit=audit)
            return True

    def _first_keys(self, emails: Iterable[str], keys: Iterable[str]) -> list[tuple[str, Any]]:
        """In one query: the oldest open-address entry of each of `emails`, and those of
        `keys` that exist, as (key, value)."""
        parts, args = [], []
        for email in emails:
            parts.append(
                f'SELECT * FROM (SELECT key, value FROM "{TABLE}"'  # noqa: S608 - constant
                " WHERE key >= ? AND key < ? ORDER BY key LIMIT 1)"
            )
            args += [f"io|{email}|", f"io|{email}|{TOP}"]
        wanted = list(keys)
        if wanted:
            marks = ", ".join("?" * len(wanted))
            parts.append(f'SELECT key, value FROM "{TABLE}" WHERE key IN ({marks})')  # noqa: S608
            args += wanted
        if not parts:
            return []
        rows = self._db.conn.select(" UNION ALL ".join(parts), args)
        return [(key, json.loads(value)) for key, value in rows]

    def _mutate(
        self,
        record_id: str,
        change: Change,
        audit: AuditEvent | None = None,
        ride: Ride | None = None,  # awork's calls are counted in this process: left unanswered
    ) -> tuple[bool, Record | None]:
        with self._lock():
            found = dict(self._first_keys((), (f"r|{record_id}", f"x|{record_id}")))
            raw = found.get(f"r|{record_id}")
            current = decode(record_id, raw) if raw is not None else None
            updated = change(current, self.now())
            if updated is None:
                return False, current
            old_keys = found.get(f"x|{record_id}", [])
            self._put(updated, facets(updated, self.schedule), old_keys, [audit] if audit else [])
            return True, updated

    def _load(self, record_id: str) -> dict[str, Any] | None:
        with self._open():
            raw = self._db.get(f"r|{record_id}")
            return raw if raw is not None else self._db.get(f"a|{record_id}")

    def _records(self, ids: Iterable[str]) -> list[Record]:
        found = []
        with self._open():
            for record_id in ids:
                raw = self._db.get(f"r|{record_id}")
                if raw is not None:
                    found.append(decode(record_id, raw))
        return found

    # -- indexed lookups -----------------------------------------------------------------------

    def open_addresses(self, emails: Iterable[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self._open():
            for email in {e.lower() for e in emails}:
                rows = self._range(f"io|{email}|", limit=1)
                if rows:
                    found[email] = rows[0][1]
        return found

    def listed(self, requester_id: str, limit: int = 100, offset: int = 0) -> list[Record]:
        with self._open():
            rows = self._range(f"iq|{requester_id}|", limit=limit, reverse=True, offset=offset)
        return self._records(value for _, value in rows)

    def count_listed(self, requester_id: str) -> int:
        prefix = f"iq|{requester_id}|"
        query = f'SELECT COUNT(*) FROM "{TABLE}" WHERE key >= ? AND key < ?'  # noqa: S608
        with self._open():
            return int(self._db.conn.select_one(query, (prefix, prefix + TOP))[0])

    def approvable_listing(self) -> list[Listed]:
        with self._open():
            rows = self._range("ia|")
            # An entry written before summaries were kept holds only the id: read that record.
            return [
                Listed.of(value if isinstance(value, dict) else self._summary_of(value))
                for _, value in rows
            ]

    def _summary_of(self, record_id: str) -> dict[str, Any]:
        return summary(decode(record_id, self._db[f"r|{record_id}"]))

    def claim_due(
        self, owner: str, hold: float, limit: int = 200, horizon: datetime | None = None
    ) -> list[Record]:
        page = max(100, 2 * limit)
        with self._lock():
            now = self.now()
            until = utc_key(now + timedelta(seconds=hold))
            lower, upper = "id|", f"id|{utc_key(horizon or now)}{TOP}"
            claimed: list[str] = []
            while len(claimed) < limit:  # page through, so a big backlog is not read at once
                rows = self._range(lower, upper, limit=page)
                for _, record_id in rows:
                    held = self._db.get(f"h|{record_id}")
                    if record_id in claimed or (held and held["until"] > utc_key(now)):
                        continue
                    self._db[f"h|{record_id}"] = {"owner": owner, "until": until}
                    claimed.append(record_id)
                    if len(claimed) >= limit:
                        break
                if len(rows) < page:
                    break
                lower = rows[-1][0] + "\x00"  # just after the last key read
        return self._records(claimed)

    def count_due(self, cap: int = 10_000) -> int:
        upper = f"id|{utc_key(self.now())}{TOP}"
        query = f'SELECT count(*) FROM (SELECT 1 FROM "{TABLE}" WHERE key >= ? AND key < ? LIMIT ?)'  # noqa: S608 - constant
        with self._lock():
            return int(self._db.conn.select_one(query, ("id|", upper, cap))[0])

    def release_due(self, owner: str, ids: Iterable[str]) -> None:
        with self._lock():
            for record_id in ids:
                held = self._db.get(f"h|{record_id}")
                if held and held["owner"] == owner:
                    del self._db[f"h|{record_id}"]

    def archive(self, before: datetime, limit: int = 500) -> int:
        moved = 0
        with self._lock():
            for key, record_id in self._range("is|", f"is|{utc_key(before)}", limit=limit):
                raw = self._db.get(f"r|{record_id}")
                if raw is None:
                    self._db.pop(key, None)
                    continue
                for old in self._db.get(f"x|{record_id}", []):
                    self._db.pop(old, None)
                for gone in (f"x|{record_id}", f"r|{record_id}", f"h|{record_id}"):
                    self._db.pop(gone, None)
                self._db[f"a|{record_id}"] = raw
                moved += 1
        return moved

    def requests(self, *statuses: Status) -> Iterator[InviteRequest]:
        with self._open():
            rows = self._range("r|inv-")
        for _, raw in rows:
            request = InviteRequest.model_validate(raw)
            if not statuses or request.status in statuses:
                yield request

    def batches(self) -> list[InviteBatch]:
        with self._open():
            rows = self._range("r|bat-")
        return [InviteBatch.model_validate(raw) for _, raw in rows]

    # -- schema and moving (bot/store/sqlite_schema.py) -------------------------------------

    def migrate(self) -> int:
        return sqlite_schema.migrate(self)

    def export(self) -> Iterator[dict[str, Any]]:
        return sqlite_schema.export_items(self)

    def import_items(self, items: Iterable[dict[str, Any]]) -> dict[str, int]:
        return sqlite_schema.import_items(self, items)


__all__ = ["SqliteStore"]
