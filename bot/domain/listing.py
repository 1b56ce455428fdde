"""A request or a batch as the lists show it (`/invite pending`, the App Home's "Waiting for a
decision"): the few fields they show and whom it waits for, read from the store's index or a
projection of the stored JSON - never the whole record decoded. `summary` is that projection
of a record; every engine stores or computes the same keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# The keys of a summary, as the engines read them (bot/store/postgres.py builds the same).
KEYS = (
    "id",
    "kind",
    "status",
    "created_at",
    "requester_id",
    "email",
    "first_name",
    "last_name",
    "people",
    "retryable",
    "route_approvers",
    "failed",
)


@dataclass(frozen=True)
class Listed:
    id: str
    kind: str  # "request" or "batch"
    status: str
    created_at: datetime
    requester_id: str
    email: str  # a batch: its first person's
    full_name: str | None
    people: int  # a batch: how many; a request: 1
    retryable: bool  # a failure an approver may try again
    route_approvers: tuple[str, ...]  # the policy's route (bot/services/decisions.Approvers)
    failed: int = 0  # a finished batch: its people awork did not invite (its last run)

    @property
    def is_batch(self) -> bool:
        return self.kind == "batch"

    @classmethod
    def of(cls, summary: dict[str, Any]) -> Listed:
        first, last = summary.get("first_name"), summary.get("last_name")
        created = summary["created_at"]
        return cls(
            id=summary["id"],
            kind=summary["kind"],
            status=summary["status"],
            created_at=created if isinstance(created, datetime) else _when(created),
            requester_id=summary["requester_id"],
            email=summary.get("email") or "",
            full_name=" ".join(p for p in (first, last) if p) or None,
            people=int(summary.get("people") or 1),
            retryable=bool(summary.get("retryable")),
            route_approvers=tuple(summary.get("route_approvers") or ()),
            failed=int(summary.get("failed") or 0),
        )


def summary(record: Any) -> dict[str, Any]:
    """The listed fields of a request or a batch, as JSON."""
    batch = hasattr(record, "entries")
    person = record.entries[0] if batch else record.details
    failure = getattr(record, "failure", None)
    return {
        "id": record.id,
        "kind": "batch" if batch else "request",
        "status": str(record.status),
        "created_at": record.created_at.isoformat(),
        "requester_id": record.requester_id,
        "email": person.email,
        "first_name": None if batch else person.first_name,
        "last_name": None if batch else person.last_name,
        "people": len(record.entries) if batch else 1,
        "retryable": bool(failure is not None and failure.retryable),
        "route_approvers": list(record.route_approvers),
        "failed": int(getattr(record, "failed", 0) or 0) if batch else 0,
    }


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
