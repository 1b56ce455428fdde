"""The embedded store: invite requests, an audit log and a little state, JSON in sqlitedict.

Every state change is a compare-and-set: it is written only when the request is still in one of
the states the caller expected, so a double click, a second approver or a retried delivery
finds the request already moved on and changes nothing. The read-check-write runs under a
thread lock and an exclusive `flock` on `<file>.lock`, so it holds across threads and across
processes sharing one store file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlitedict import SqliteDict

from bot.models import AuditEvent, InviteBatch, InviteRequest, Status, utcnow

Record = InviteRequest | InviteBatch


def json_table(path: str, name: str) -> SqliteDict:
    """A sqlitedict table that stores JSON, never pickle: a store file must not be able to run
    code when it is read. Every write is committed."""
    return SqliteDict(
        path,
        tablename=name,
        autocommit=True,
        encode=json.dumps,
        decode=json.loads,
        outer_stack=False,
    )


class StoreClosed(RuntimeError):
    """The store was closed (the bot is stopping); the operation was not carried out."""


class Store:
    def __init__(self, path: str) -> None:
        self.path = path
        self._requests = json_table(path, "requests")
        self._meta = json_table(path, "meta")
        self._audit = json_table(path, "audit")
        self._batches = json_table(path, "batches")
        self._thread_lock = threading.RLock()
        self._lock_file = open(f"{path}.lock", "a+b")  # noqa: SIM115 - held for the store's life
        self._depth = 0
        self.closed = False

    @contextlib.contextmanager
    def _open(self) -> Iterator[None]:
        """Any operation: refused at once once closed (sqlitedict would wait forever), and
        `close` waits for operations under way."""
        with self._thread_lock:
            if self.closed:
                raise StoreClosed(self.path)
            yield

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Exclusive across threads (RLock) and processes (flock), re-entrant in a thread."""
        with self._open():
            if self._depth == 0:
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)

    def close(self) -> None:
        with self._thread_lock:
            if self.closed:
                return
            self.closed = True
            self._requests.close()
            self._meta.close()
            self._audit.close()
            self._batches.close()
        self._lock_file.close()

    # -- requests and batches ----------------------------------------------------------------
    # A batch's id starts with "bat-"; everything below works on both, by id.

    def _table(self, record_id: str) -> tuple[SqliteDict, type[InviteRequest] | type[InviteBatch]]:
        if record_id.startswith("bat-"):
            return self._batches, InviteBatch
        return self._requests, InviteRequest

    def add(self, record: Record) -> Record:
        """Store a new request or batch; KeyError if one with its id exists (create-once)."""
        table, _ = self._table(record.id)
        with self._lock():
            if record.id in table:
                raise KeyError(f"{record.id} exists already")
            table[record.id] = record.model_dump(mode="json")
        return record

    def get(self, request_id: str) -> InviteRequest | None:
        found = self.read(request_id)
        return found if isinstance(found, InviteRequest) else None

    def get_batch(self, batch_id: str) -> InviteBatch | None:
        found = self.read(batch_id)
        return found if isinstance(found, InviteBatch) else None

    def read(self, record_id: str) -> Record | None:
        table, model = self._table(record_id)
        with self._open():
            raw = table.get(record_id)
        return model.model_validate(raw) if raw is not None else None

    def transition(
        self,
        request_id: str,
        expected: Iterable[Any],
        to: Any,
        require: dict[str, Any] | None = None,
        **changes: Any,
    ) -> tuple[bool, Any]:
        """Move a request (or batch) to `to` only if it is in one of `expected` and, when
        given, its fields still hold the `require`d values (e.g. the same claimant).

        The condition names what matters, not a version number: delivery bookkeeping (leases,
        "told" flags) may change a request at any time without invalidating a decision.
        Returns (True, the new record) when this call made the change, else (False, the
        record as it is, or None when there is none).
        """
        expected = frozenset(expected)
        with self._lock():
            current = self.read(request_id)
            if current is None or current.status not in expected:
                return False, current
            if any(getattr(current, name) != value for name, value in (require or {}).items()):
                return False, current
            return True, self._write(current, status=to, **changes)

    def lease(
        self, request_id: str, owner: str, seconds: float, steal_from: str | None = None
    ) -> bool:
        """Take a short exclusive lease on a record's Slack deliveries; False if held.
        `steal_from` names a holder known to be dead, whose lease may be taken over."""
        with self._lock():
            current = self.read(request_id)
            if current is None:
                return False
            now = utcnow()
            held = current.lease_owner not in (None, owner, steal_from) and (
                current.lease_until is not None and current.lease_until > now
            )
            if held:
                return False
            self._write(current, lease_owner=owner, lease_until=now + timedelta(seconds=seconds))
            return True

    def release(self, request_id: str, owner: str) -> None:
        with self._lock():
            current = self.read(request_id)
            if current is not None and current.lease_owner == owner:
                self._write(current, lease_owner=None, lease_until=None)

    def update(self, request_id: str, **changes: Any) -> Any:
        """Change fields that are not the state (message references, delivery notes)."""
        with self._lock():
            current = self.read(request_id)
            return self._write(current, **changes) if current is not None else None

    def _write(self, current: Record, **changes: Any) -> Any:
        table, model = self._table(current.id)
        updated = current.model_copy(
            update={**changes, "version": current.version + 1, "updated_at": utcnow()}
        )
        # Re-validate so a bad change cannot be stored and break later reads.
        updated = model.model_validate(updated.model_dump(mode="json"))
        table[updated.id] = updated.model_dump(mode="json")
        return updated

    def batches(self) -> list[InviteBatch]:
        with self._open():
            raws = list(self._batches.values())
        return [InviteBatch.model_validate(raw) for raw in raws]

    def open_addresses(
        self, statuses: Iterable[str], batch_statuses: Iterable[str]
    ) -> dict[str, str]:
        """Every address with an open request or batch -> the id to point to (a member's batch
        id), in one read of each table: for checking a whole list at once."""
        states, batch_states = {str(s) for s in statuses}, {str(s) for s in batch_statuses}
        with self._open():
            raws = list(self._requests.values())
            batch_raws = list(self._batches.values())
        found: dict[str, str] = {}
        for raw in sorted(raws, key=lambda r: r.get("created_at", "")):  # the oldest request
            if raw.get("status") in states:
                email = str(raw.get("details", {}).get("email", "")).lower()
                found.setdefault(email, raw.get("batch_id") or raw["id"])
        for raw in batch_raws:
            if raw.get("status") in batch_states:
                for entry in raw.get("entries", []):
                    found.setdefault(str(entry.get("email", "")).lower(), raw["id"])
        return found

    def requests(self, *statuses: Status) -> Iterator[InviteRequest]:
        with self._open():
            raws = list(self._requests.values())
        for raw in raws:
            request = InviteRequest.model_validate(raw)
            if not statuses or request.status in statuses:
                yield request

    # -- audit log --------------------------------------------------------------------------

    def record(
        self, event: str, request_id: str | None = None, actor: str | None = None, **detail: Any
    ) -> None:
        """Append one event to the audit log. Never holds a code or a secret."""
        entry = AuditEvent(event=event, request_id=request_id, actor=actor, detail=detail)
        key = f"{entry.at.strftime('%Y%m%dT%H%M%S.%f')}-{os.getpid()}-{secrets.token_hex(3)}"
        with self._open():
            self._audit[key] = entry.model_dump(mode="json")

    def audit(self, since: datetime | None = None) -> list[AuditEvent]:
        with self._open():
            raws = list(self._audit.values())
        events = [AuditEvent.model_validate(raw) for raw in raws]
        if since is not None:
            events = [e for e in events if e.at >= since]
        return sorted(events, key=lambda e: e.at)

    # -- small state ------------------------------------------------------------------------

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self._open():
            return self._meta.get(key, default)

    def set_meta(self, key: str, value: Any) -> None:
        with self._open():
            self._meta[key] = value
