"""The embedded engine's audit log, small state, periodic jobs and daily counters (a mixin of
`SqliteStore`, which provides the table, its locks and its range reads): keys `l|` (the audit
log, in time order), `m|` (small state), `p|` (periodic jobs' next runs) and `q|` (counters)
of the one JSON table (bot/store/sqlite.py)."""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.domain.records import AuditEvent
from bot.store.base import utc_key

if TYPE_CHECKING:
    from sqlitedict import SqliteDict

TOP = "\uffff"  # sorts after every character a key holds


_LINES = itertools.count()  # this process's audit lines, numbered (`next` holds the GIL)
# This process's own mark, drawn once (and again in a forked child): two processes with one
# process id - pid 1 in two containers on one volume, a pid used again - do not share keys.
_PROCESS = secrets.token_hex(4)


def _new_process() -> None:
    global _PROCESS, _LINES
    _PROCESS, _LINES = secrets.token_hex(4), itertools.count()


os.register_at_fork(after_in_child=_new_process)


def audit_row(entry: AuditEvent) -> tuple[str, dict[str, Any]]:
    """An audit entry's key (in time order; unique across processes: the process's id and
    mark and its line number - no random part per line that two lines of one moment could
    share) and value."""
    key = f"l|{utc_key(entry.at)}|{os.getpid()}-{_PROCESS}-{next(_LINES):08x}"
    return key, entry.model_dump(mode="json")


class SqliteState:
    _db: SqliteDict

    if TYPE_CHECKING:

        def _open(self) -> contextlib.AbstractContextManager[None]: ...

        def _lock(self) -> contextlib.AbstractContextManager[None]: ...

        def _range(self, prefix: str, upper: str | None = None) -> list[tuple[str, Any]]: ...

        def now(self) -> datetime: ...

    def _append_audit(self, entry: AuditEvent) -> None:
        with self._lock():
            self._db.update([audit_row(entry)])

    def audit(self, since: datetime | None = None) -> list[AuditEvent]:
        with self._open():
            rows = self._range(f"l|{utc_key(since)}" if since else "l|", "l|" + TOP)
        return [AuditEvent.model_validate(raw) for _, raw in rows]

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self._open():
            return self._db.get(f"m|{key}", default)

    def set_meta(self, key: str, value: Any) -> None:
        with self._lock():
            self._db[f"m|{key}"] = value

    def delete_meta(self, key: str) -> None:
        with self._lock():
            self._db.pop(f"m|{key}", None)

    def add_to_meta_set(self, key: str, value: str) -> bool:
        with self._lock():
            members = list(self._db.get(f"m|{key}", []))
            if value in members:
                return False
            self._db[f"m|{key}"] = sorted([*members, value])
            return True

    def remove_from_meta_set(self, key: str, value: str) -> bool:
        with self._lock():
            members = list(self._db.get(f"m|{key}", []))
            if value not in members:
                return False
            self._db[f"m|{key}"] = [member for member in members if member != value]
            return True

    def claim_period(self, name: str, seconds: float, owner: str) -> bool:
        with self._lock():
            now = self.now()
            due = self._db.get(f"p|{name}")
            if due is not None and due["next"] > utc_key(now):
                return False
            self._db[f"p|{name}"] = {
                "next": utc_key(now + timedelta(seconds=seconds)),
                "owner": owner,
            }
            return True

    def take_quota(self, key: str, wanted: int, limit: int) -> int:
        with self._lock():  # re-entrant: in `_insert`'s transaction when called from there
            used = int(self._db.get(f"q|{key}", 0))
            granted = max(0, min(wanted, limit - used))
            if granted:
                self._db[f"q|{key}"] = used + granted
            return granted

    def forget_quotas(self, before: str) -> int:
        with self._lock():
            old = [key for key, _ in self._range("q|", "q|" + before)]
            for key in old:
                del self._db[key]
            return len(old)
