"""PostgreSQL's compare-and-set (a mixin of `PostgresStore`): one statement when this process
has seen the record's last version - the change is made to that version and written by
`UPDATE ... WHERE version = the one seen` (`Known`), its audit entry inserted by the same
statement - else a row lock (`SELECT ... FOR UPDATE`) for the record's read-check-write.
Leases are judged on the database's clock: in the one-statement form, its reading at the last
statement plus the time since, never later than the database's own."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.types.json import Jsonb

from bot.domain.records import AuditEvent, Schedule
from bot.store import postgres_schema as schema
from bot.store.base import Change, Record, decode, facets

if TYPE_CHECKING:
    from bot.awork.ratelimit import Ride
    from bot.store.postgres_conn import Connections


class CompareAndSet:
    """`_mutate` for `PostgresStore`, which provides the connections and the schedule."""

    _known: Known
    _db: Connections
    schedule: Schedule | None

    if TYPE_CHECKING:

        def _first(self, sql: str, params: Any = None) -> tuple[Any, ...] | None: ...

    def _mutate(
        self,
        record_id: str,
        change: Change,
        audit: AuditEvent | None = None,
        ride: Ride | None = None,
    ) -> tuple[bool, Record | None]:
        # A write of ours whose answer was lost (its connection failed): stored or not, the
        # next attempt finds out. Only then - an identical write by another is not ours.
        lost: list[Record] = []
        try:
            written = self._mutate_known(record_id, change, lost, audit, ride)
        except Exception:
            self._known.forget(record_id)  # stored or not: the next change reads it
            raise
        if written is not None:
            return True, written
        tries = 0
        sent: list[Record] = []  # what this try writes, should its answer be lost
        slot: list[Any] = []  # the ride's answer in the write that is committed

        def mutate(conn: psycopg.Connection) -> tuple[bool, Record | None]:
            nonlocal tries
            tries += 1
            slot.clear()
            if tries > 1 and sent:
                lost[:] = sent
            row = conn.execute(
                "SELECT doc, clock_timestamp() FROM records WHERE id = %s FOR UPDATE",
                (record_id,),
            ).fetchone()
            if row is None:
                now = conn.execute("SELECT clock_timestamp()").fetchone()[0]
                current = None
            else:
                current, now = decode(record_id, row[0]), row[1]
            self._known.tick(now)
            if lost and current is not None and _same(current, lost[0]):
                # The earlier attempt was committed; its answer was lost - with its ride's
                # slot, which is counted but not known: the request's slot is taken again.
                slot.append(None)
                return True, current
            updated = change(current, now)
            if updated is None:
                return False, current
            sent[:] = [updated]
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
            if audit is not None:
                conn.execute(AUDIT_INSERT, audit_row(audit))
            if ride is not None:  # in the same transaction: a second statement on this path
                slot.append(conn.execute(f"SELECT {ride.sql}", ride.params).fetchone()[0])
            return True, updated

        try:
            ok, record = self._db.run(mutate, tx=True)
        except Exception:
            self._known.forget(record_id)
            raise
        if ride is not None and slot:  # answered once committed, not before
            ride.answered(slot[0])
        if record is not None:  # committed (or read): the base of the next change
            self._known.seen(record)
        return ok, record

    def _mutate_known(
        self,
        record_id: str,
        change: Change,
        lost: list[Record],
        audit: AuditEvent | None = None,
        ride: Ride | None = None,
    ) -> Record | None:
        """The change made in one statement to the version of the record this process saw
        last, on the database's clock as it was read last (never ahead of it): written only
        if that is still the stored version. None when it was not written - no version seen,
        the clock not read lately, the change refused that version (which may be out of date:
        the locked read decides), its open addresses change, another wrote since, or the time
        it was judged at is ahead of the database's clock. `audit`
        is inserted by the same statement when the update is made, and `ride`'s slot taken."""
        known, now = self._known.get(record_id)
        if known is None or now is None:
            return None
        now = max(now, known.updated_at)
        updated = change(known, now)
        if updated is None:
            return None
        f = facets(updated, self.schedule)
        before = facets(known, self.schedule)
        if (before.open_emails, before.open_target) != (f.open_emails, f.open_target):
            return None
        values = {**schema.row(updated, f), "version": known.version, "now": now}
        update = (
            "UPDATE records SET status = %(status)s, doc = %(doc)s,"
            " requester = %(requester)s, created_at = %(created_at)s,"
            " updated_at = %(updated_at)s, approvable = %(approvable)s,"
            " due_at = %(due_at)s, settled_at = %(settled_at)s"
            " WHERE id = %(id)s AND doc->'version' = to_jsonb(%(version)s::bigint)"
            # The time the change was judged at is the database's within a second: not ahead
            # of it (its clock stepped back since it was read), nor far behind (the statement
            # waited for a connection, or was sent again): else the locked read-check-write
            # judges it on the database's time - a lease is never written short.
            " AND clock_timestamp() >= %(now)s"
            " AND clock_timestamp() < %(now)s + interval '1 second'"
            " RETURNING clock_timestamp() AS now"
        )
        if ride is not None:  # evaluated only for the row updated: no update, no slot
            update += f", {ride.sql} AS slot"
            values.update(ride.params)
        if audit is not None:  # inserted only if the update is made
            update = (
                f"WITH u AS ({update}), a AS (INSERT INTO audit (at, request_id, doc)"  # noqa: S608 - constant text
                " SELECT %(audit_at)s, %(audit_request)s, %(audit_doc)s FROM u)"
                " SELECT * FROM u"
            )
            audited = audit_row(audit)
            values.update(
                audit_at=audited["at"], audit_request=audited["id"], audit_doc=audited["doc"]
            )
        tries = 0

        def write(conn: psycopg.Connection) -> tuple[Any, ...] | None:
            nonlocal tries
            tries += 1
            return conn.execute(update, values).fetchone()

        try:
            row = self._db.run(write)
        finally:
            if tries > 1:  # sent again on a fresh connection: the first may have been stored
                lost[:] = [updated]
        if row is None:
            return None
        self._known.tick(row[0])
        self._known.seen(updated)
        if ride is not None:
            ride.answered(row[1])
        return updated


AUDIT_INSERT = "INSERT INTO audit (at, request_id, doc) VALUES (%(at)s, %(id)s, %(doc)s)"


def audit_row(entry: AuditEvent) -> dict[str, Any]:
    return {"at": entry.at, "id": entry.request_id, "doc": Jsonb(entry.model_dump(mode="json"))}


class Known:
    """The last version of each record this process read or wrote (a bounded number), the
    base of a one-statement compare-and-set; and the database's clock as the last statement
    read it, carried on by the time since (this host's monotonic clock), so that a change
    judged on it is never judged later than the database's own time. Read back as a record
    only as a decision's first guess (`PostgresStore.recent`), which its compare-and-set
    checks: any other read asks the database."""

    RECORDS = 1000  # the most recently used (a batch of 500 people is a big one)
    FRESH = 5.0  # seconds a clock reading is carried on before it is read again

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: OrderedDict[str, Record] = OrderedDict()
        self._clock: tuple[datetime, float] | None = None

    def seen(self, record: Record) -> None:
        # An older read arriving late only costs its next change the locked read-check-write.
        with self._lock:
            self._records[record.id] = record
            self._records.move_to_end(record.id)
            while len(self._records) > self.RECORDS:
                self._records.popitem(last=False)

    def tick(self, now: datetime) -> datetime:
        """The database's time `now`, just read: kept unless the reading carried on is later
        already (a slower statement's reading, arriving last, does not set the clock back)."""
        at = time.monotonic()
        with self._lock:
            if self._clock is not None:
                now = max(now, self._clock[0] + timedelta(seconds=at - self._clock[1]))
            self._clock = (now, at)
        return now

    def forget(self, record_id: str) -> None:
        """A change whose outcome is not known: its next change reads the record first."""
        with self._lock:
            self._records.pop(record_id, None)

    def get(self, record_id: str) -> tuple[Record | None, datetime | None]:
        """The version seen last, and the database's time now (None: not read lately)."""
        with self._lock:
            record = self._records.get(record_id)
            clock = self._clock
        if clock is None:
            return record, None
        elapsed = time.monotonic() - clock[1]
        if not 0 <= elapsed < self.FRESH:
            return record, None
        return record, clock[0] + timedelta(seconds=elapsed)


def _same(stored: Record, written: Record) -> bool:
    """Whether `stored` is the very version `written` was: a write of ours, not another's."""
    return stored.version == written.version and stored.model_dump(
        mode="json"
    ) == written.model_dump(mode="json")
