"""Leases, held on the store's clock, never by a process id (a mixin of `Store`, each a
compare-and-set through the engine's `_mutate`): the work lease of a claim (`claimed_by`
until `claim_until`, renewed while awork is called) and the short delivery lease on a
record's Slack messages (`lease_owner` until `lease_until`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.store.facets import Record, changed

if TYPE_CHECKING:
    from bot.awork.ratelimit import Ride
    from bot.domain.records import AuditEvent
    from bot.store.audit_log import Audited

WORKING = frozenset({"inviting", "joining", "running"})  # the states a work lease holds


@dataclass
class DeliveryLease:
    """A delivery lease taken with another change (`Store.transition(lease=...)`), so that the
    delivery round that follows it needs no write of its own to begin: `owner`'s, `seconds`
    long. `sent` (this host's monotonic clock, set by the store) is when the write that made
    the change left - None when no change was made: the lease runs at least `seconds` from
    then, on any clock, if that write took it (the record's `lease_owner` says whether)."""

    owner: str
    seconds: float
    sent: float | None = None

    def until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.seconds)


def lease_held_by_another(current: Record, owner: str, now: datetime) -> bool:
    """Whether another holder's delivery lease on `current` still runs at `now`."""
    return current.lease_owner not in (None, owner) and (
        current.lease_until is not None and current.lease_until > now
    )


RELEASED = {"lease_owner": None, "lease_until": None}  # a delivery lease given back


def noted_if_unchanged(current: Record, noted: dict[str, Any] | None, seen: int | None) -> dict:
    """What a delivery round `noted`, when the record is still at version `seen` (the round's
    last sight of it: another's change since may need the message shown anew); else nothing."""
    return noted if noted and current.version == seen else {}


def closing(owner: str, noted: dict[str, Any], seen: int) -> Callable[[Any], dict[str, Any]]:
    """A delivery round's closing as changes made from the record as stored by the write that
    carries it (another write than `renew_or_release`): the lease given back if it is still
    `owner`'s, with `noted` if the record is still at version `seen`."""

    def closed(current: Any) -> dict[str, Any]:
        if current.lease_owner != owner:
            return {}
        return {**noted_if_unchanged(current, noted, seen), **RELEASED}

    return closed


class Leases:
    if TYPE_CHECKING:

        def _mutate(
            self,
            record_id: str,
            change: Callable[[Record | None, datetime], Record | None],
            audit: AuditEvent | None = None,
            ride: Ride | None = None,
        ) -> tuple[bool, Record | None]: ...

        def _audited(
            self,
            record_id: str,
            change: Callable[[Record | None, datetime], Record | None],
            audit: Audited | None,
        ) -> tuple[bool, Record | None]: ...

    def renew(
        self,
        record_id: str,
        claim_id: str | None,
        seconds: float,
        also: Callable[[Any], dict[str, Any]] | None = None,
        ride: Ride | None = None,
        **changes: Any,
    ) -> bool:
        """Extend the work lease of the claim `claim_id` to `seconds` from now, while the record
        is still being worked on under that claim, with `changes` - and `also(the record as
        stored)` - in the same write; False otherwise - then the work must stop: the lease
        expired and another holder (or a later claim) has it. `ride`: the rate-limit slot of
        the awork request the renewal comes right before, taken by the same write where the
        engine can (`_mutate`)."""

        def change(current: Record | None, now: datetime) -> Record | None:
            if current is None or claim_id is None or current.claim_id != claim_id:
                return None
            if str(current.status) not in WORKING:
                return None
            until = now + timedelta(seconds=seconds)
            more = also(current) if also is not None else {}
            return changed(current, now, {**changes, **more, "claim_until": until})

        ok, _ = self._mutate(record_id, change, ride=ride)
        return ok

    def lease(self, record_id: str, owner: str, seconds: float) -> bool:
        """Take (or renew) the short exclusive lease on a record's Slack deliveries; False
        while another holder's lease runs."""
        return self.leased(record_id, owner, seconds) is not None

    def leased(
        self,
        record_id: str,
        owner: str,
        seconds: float,
        also: Callable[[Any], dict[str, Any]] | None = None,
    ) -> Record | None:
        """`lease`, answering with the record as stored with the lease (no read after it);
        None while another holder's lease runs. `also`: what else to change, judged on the
        record as stored, in the same write."""

        def change(current: Record | None, now: datetime) -> Record | None:
            if current is None or lease_held_by_another(current, owner, now):
                return None
            until = now + timedelta(seconds=seconds)
            more = also(current) if also is not None else {}
            return changed(current, now, {**more, "lease_owner": owner, "lease_until": until})

        ok, record = self._mutate(record_id, change)
        return record if ok else None

    def renew_or_release(
        self,
        record_id: str,
        owner: str,
        seconds: float,
        more: Callable[[Any], bool],
        noted: dict[str, Any] | None = None,
        seen: int | None = None,
        placed: Callable[[Any], dict[str, Any]] | None = None,
        audit: Audited | None = None,
    ) -> Record | None:
        """After a round of deliveries, one write: `owner`'s delivery lease renewed when the
        record as stored needs `more` of them (another round), else given back - with `noted`,
        what the round did that it need not have written at once (what a message shows now),
        judged with it, when the record is still at version `seen` (the round's last sight of
        it: another's change since may need the message shown anew); and with `placed(record
        as stored)`, where the round's last post went, whatever the version (the audit event
        `audit` records it). The record as stored (its `lease_owner` says which); None when the
        lease is not `owner`'s - then nothing is written."""

        def change(current: Record | None, now: datetime) -> Record | None:
            if current is None or current.lease_owner != owner:
                return None
            noted_now = noted_if_unchanged(current, noted, seen)
            facts = {**(placed(current) if placed is not None else {}), **noted_now}
            if more(changed(current, now, facts) if facts else current):
                until = now + timedelta(seconds=seconds)
                return changed(current, now, {**facts, "lease_until": until})
            return changed(current, now, {**facts, **RELEASED})

        ok, record = self._audited(record_id, change, audit)  # without `audit`: `_mutate`
        return record if ok else None

    def release(self, record_id: str, owner: str) -> None:
        def change(current: Record | None, now: datetime) -> Record | None:
            if current is None or current.lease_owner != owner:
                return None
            return changed(current, now, RELEASED)

        self._mutate(record_id, change)
