"""What a store keeps beside each record: its index facets (open addresses, requester,
approvable, due time, settled time), recomputed and written with every change; and how a
change is applied to a record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain.batches import InviteBatch
from bot.domain.records import InviteRequest, Schedule

Record = InviteRequest | InviteBatch


def model_for(record_id: str) -> type[InviteRequest] | type[InviteBatch]:
    """A batch's id starts with "bat-"; everything else is a request."""
    return InviteBatch if record_id.startswith("bat-") else InviteRequest


def decode(record_id: str, raw: dict[str, Any]) -> Record:
    return model_for(record_id).model_validate(raw)


@dataclass(frozen=True)
class Facets:
    """What the indexes know of a record; recomputed and written with every change."""

    kind: str  # "request" or "batch"
    status: str
    requester: str | None  # listed under this requester ("/invite mine", App Home)
    created_at: datetime
    # Addresses it holds (a duplicate check finds them): asked for and not yet decided, or
    # invited or joined (the address is in awork, whatever awork's member list says yet).
    open_emails: tuple[str, ...]
    open_target: str  # the id a duplicate points to (an open batch member's batch)
    approvable: bool  # on the approvers' list
    due_at: datetime | None  # when a sweep next has work for it
    settled_at: datetime | None  # decided and told since then (archived after retention)


def facets(record: Record, schedule: Schedule) -> Facets:
    if isinstance(record, InviteBatch):
        emails = tuple(sorted({e.email.lower() for e in record.entries})) if record.is_open else ()
        return Facets(
            kind="batch",
            status=str(record.status),
            requester=record.requester_id,
            created_at=record.created_at,
            open_emails=emails,
            open_target=record.id,
            approvable=record.approvable,
            due_at=record.due_at(schedule),
            settled_at=record.updated_at if record.settled else None,
        )
    return Facets(
        kind="request",
        status=str(record.status),
        requester=record.requester_id if record.batch_id is None else None,
        created_at=record.created_at,
        open_emails=(record.details.email.lower(),) if record.holds_address else (),
        open_target=(record.batch_id if record.is_open else None) or record.id,
        approvable=record.approvable,
        due_at=record.due_at(schedule),
        settled_at=record.updated_at if record.settled else None,
    )


def changed(current: Record, now: datetime, changes: dict[str, Any]) -> Record:
    """The record with `changes` applied, its version bumped. Only the changed fields are
    validated (a bad change cannot be stored and break later reads); the rest was validated
    when it was read, and re-validating a 500-person batch on every write is what made bulk
    runs slow."""
    updated = current.model_copy(update={"version": current.version + 1, "updated_at": now})
    validator = type(current).__pydantic_validator__
    for name, value in changes.items():
        if name not in type(current).model_fields:
            raise ValueError(f"{type(current).__name__} has no field {name!r}")
        validator.validate_assignment(updated, name, value)
    return updated
