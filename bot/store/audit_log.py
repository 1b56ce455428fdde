"""The audit log (a mixin of `Store`, whose engines keep it): the events that record what
happened to a request or a batch, each written with the change it records when there is one
(`_audited`: in the same write, one statement on PostgreSQL), and never lost to a lock held
on the log, a spent time budget or a lost connection - then it follows after the answer."""

from __future__ import annotations

import abc
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from bot.domain.records import AuditEvent
from bot.runtime import metrics
from bot.store.budget import StoreLocked, StoreUnavailable, later
from bot.store.facets import Record

Change = Callable[[Record | None, datetime], Record | None]
Audited = tuple[str, str | None, dict[str, Any]]  # an audit event's name, actor and detail
T = TypeVar("T")


class AuditLog(abc.ABC):
    if TYPE_CHECKING:

        def _mutate(
            self, record_id: str, change: Change, audit: AuditEvent | None = None
        ) -> tuple[bool, Record | None]: ...

    @abc.abstractmethod
    def _append_audit(self, entry: AuditEvent) -> None: ...

    @abc.abstractmethod
    def audit(self, since: datetime | None = None) -> list[AuditEvent]:
        """The audit log from `since` on, oldest first."""

    def _audited(
        self, record_id: str, change: Change, audit: Audited | None
    ) -> tuple[bool, Record | None]:
        """`_mutate`, and the audit event `audit` (name, actor, detail) when it changed the
        record, in the same write (one statement on PostgreSQL; `_with_lines`)."""
        if audit is None:
            return self._mutate(record_id, change)
        event, actor, detail = audit
        entry = AuditEvent(event=event, request_id=record_id, actor=actor, detail=detail)
        ok, record = self._with_lines(
            lambda kept: self._mutate(record_id, change, *kept), (entry,), lambda done: done[0]
        )
        if ok:
            metrics.audit_event(event, detail)
        return ok, record

    def _with_lines(
        self,
        write: Callable[[tuple[AuditEvent, ...]], T],
        lines: tuple[AuditEvent, ...],
        made: Callable[[T], bool],
    ) -> T:
        """`write(lines)`: a write with its audit lines in it. An audit log locked longer than
        a call under a budget may wait (StoreLocked) never turns the write into a failure: it
        is made without them, and when it was `made`, they follow after the answer."""
        try:
            return write(lines)
        except StoreLocked:
            if not lines:
                raise
            done = write(())
            for entry in lines if made(done) else ():
                later(self._append_audit, entry)
            return done

    def record(
        self, event: str, request_id: str | None = None, actor: str | None = None, **detail: Any
    ) -> None:
        """Append one event to the audit log. Never holds a code or a secret. An event whose
        change is stored is never lost to a spent time budget or a lost connection, nor turns
        that change into a failure: it is written after the answer."""
        entry = AuditEvent(event=event, request_id=request_id, actor=actor, detail=detail)
        try:
            self._append_audit(entry)
        except StoreUnavailable:  # busy (StoreBusy) or its connection lost
            later(self._append_audit, entry)
        metrics.audit_event(event, detail)
