"""The store contract: what the service, the bulk runner and the courier may ask of a store.

Two engines keep it: `SqliteStore` (sqlitedict, JSON; one host, zero set-up) and
`PostgresStore` (any number of replicas). Everything that decides is written here, once, on
top of one engine primitive - `_mutate`, a read-check-write of one record under that record's
lock, with the engine's clock:

- Every state change is a compare-and-set: written only when the record is still in one of
  the states the caller expected (and its `require`d fields still hold), so a double click, a
  second approver, a retried delivery or another replica finds it moved on and changes nothing.
- Work in progress is held by a lease (`claimed_by` until `claim_until`; `lease_owner` until
  `lease_until` for Slack deliveries), judged on the store's clock, never by a process id.
- Each record carries its index facets (open addresses, requester, approvable, due time,
  settled time), written with it, so every lookup on a request's path is indexed.
"""

from __future__ import annotations

import abc
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.domain.batches import InviteBatch
from bot.domain.listing import Listed
from bot.domain.records import AuditEvent, InviteRequest, Schedule, Status
from bot.runtime import metrics
from bot.store.audit_log import Audited, AuditLog, Change
from bot.store.facets import Facets, Record, changed, decode, facets, model_for
from bot.store.leasing import DeliveryLease, Leases, lease_held_by_another
from bot.store.small_state import SmallState

if TYPE_CHECKING:
    from bot.awork.ratelimit import Ride

FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


class StoreClosed(RuntimeError):
    """The store was closed (the bot is stopping); the operation was not carried out."""


class LimitReached(Exception):
    """`Store.add(counted=...)`: the counter is at its limit; nothing was stored."""


class AddressOpen(Exception):
    """`Store.add(unless_open=...)`: another record holds one of the addresses (open, or
    invited and not lapsed); nothing was stored. `target`: the id a duplicate points to."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


Counted = tuple[str, int]  # a counter's key and its limit (`take_quota`)


class Store(Leases, SmallState, AuditLog, abc.ABC):
    """One store interface, two engines (see the module docstring)."""

    engine: str = "abstract"
    # Decided requests older than this move to the archive (INVITE_RETENTION_DAYS).
    retention: timedelta = timedelta(days=90)

    def __init__(self, schedule: Schedule | None = None) -> None:
        self.schedule = schedule or Schedule()

    # -- engine primitives -------------------------------------------------------------------

    @abc.abstractmethod
    def now(self) -> datetime:
        """The store's clock: the one every lease is judged on."""

    @abc.abstractmethod
    def _insert(
        self,
        record: Record,
        facets: Facets,
        counted: Counted | None = None,
        audit: tuple[AuditEvent, ...] = (),
        unless_open: tuple[str, ...] = (),
    ) -> bool:
        """Store a new record, its index entries and `audit` in one transaction; False when
        one with its id exists (live or archived), AddressOpen when an address of
        `unless_open` is held (`open_addresses`). An audit log that cannot be written at once
        (locked) does not keep the record from being stored: its lines follow (`record`)."""

    @abc.abstractmethod
    def _mutate(
        self,
        record_id: str,
        change: Change,
        audit: AuditEvent | None = None,
        ride: Ride | None = None,
    ) -> tuple[bool, Record | None]:
        """Under the record's lock: read it, call `change(current, now)`, and write what it
        returns (with fresh facets) - and `audit`, when given, in the same write; and `ride`,
        an awork rate-limit slot, in the same statement where the engine counts those in the
        same database (PostgreSQL; elsewhere it is left unanswered). Returns (True, written)
        or (False, current)."""

    @abc.abstractmethod
    def _load(self, record_id: str) -> dict[str, Any] | None:
        """A record's JSON: the live one, else the archived one, else None."""

    # -- indexed lookups -----------------------------------------------------------------------

    @abc.abstractmethod
    def open_addresses(self, emails: Iterable[str]) -> dict[str, str]:
        """For each of `emails` (any case) that an open request or batch holds: lower-case
        address -> the id to point to (the oldest; a batch member's batch). One indexed read
        for a whole list."""

    @abc.abstractmethod
    def listed(self, requester_id: str, limit: int = 100, offset: int = 0) -> list[Record]:
        """A requester's own requests and batches (not batch members), newest first: `limit`
        of them after the newest `offset`."""

    @abc.abstractmethod
    def count_listed(self, requester_id: str) -> int:
        """How many requests and batches `listed` has for the requester (on its index)."""

    @abc.abstractmethod
    def approvable_listing(self) -> list[Listed]:
        """Every record on the approvers' list, oldest first, as the lists show it: a
        summary of each, never the whole record decoded (one indexed read)."""

    @abc.abstractmethod
    def claim_due(
        self, owner: str, hold: float, limit: int = 200, horizon: datetime | None = None
    ) -> list[Record]:
        """Records whose next work is due by `horizon` (default now), claimed for `hold`
        seconds so that no other sweeper (another replica) takes the same ones meanwhile."""

    @abc.abstractmethod
    def count_due(self, cap: int = 10_000) -> int:
        """How many records have work due now (the outbox depth), counted on the due index
        and at most `cap`."""

    @abc.abstractmethod
    def release_due(self, owner: str, ids: Iterable[str]) -> None:
        """`owner` has swept these: the next sweep (anyone's) may claim them again."""

    @abc.abstractmethod
    def archive(self, before: datetime, limit: int = 500) -> int:
        """Move up to `limit` records settled before `before` to the archive; how many moved.
        An archived record is still read by `read` (and so `/invite status`)."""

    @abc.abstractmethod
    def requests(self, *statuses: Status) -> Iterator[InviteRequest]:
        """Every live request (a scan: for export, the CLI and tests, never a request path)."""

    @abc.abstractmethod
    def batches(self) -> list[InviteBatch]:
        """Every live batch (a scan, like `requests`)."""

    # -- moving between engines ------------------------------------------------------------------

    @abc.abstractmethod
    def export(self) -> Iterator[dict[str, Any]]:
        """Everything, as JSON-able items: records (live and archived), audit, meta."""

    @abc.abstractmethod
    def import_items(self, items: Iterable[dict[str, Any]]) -> dict[str, int]:
        """Take in `export` items; what exists already is kept. Counts by kind."""

    @abc.abstractmethod
    def migrate(self) -> int:
        """Create or upgrade the schema (idempotent, safe to run concurrently); the version."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def rate_limiter(self, per_second: int, per_minute: int) -> Any:
        """A rate limiter shared by every process on this store, or None (one process)."""
        return None

    # -- records -----------------------------------------------------------------------------

    def add(
        self,
        record: Record,
        claim: tuple[str, float] | None = None,
        counted: Counted | None = None,
        *,
        audit: Iterable[AuditEvent] = (),
        unless_open: Iterable[str] = (),
    ) -> Record:
        """Store a new request or batch; KeyError if one with its id exists (create-once).
        `claim`: (owner, seconds) - it is stored already held by that lease. `counted`:
        (key, limit) - one more on that counter in the same transaction, or LimitReached and
        nothing stored (the policy's daily limit). `audit`: its audit lines, in the same
        transaction. `unless_open`: addresses checked in the same transaction - AddressOpen
        and nothing stored when another record holds one (of two calls checking one address at
        the same moment, the second waits for the first and is refused; a batch and a workflow
        step's request check before they store, not here). Without `counted`, one round trip
        to PostgreSQL."""
        if claim is not None:
            now = self.now()
            owner, seconds = claim
            record = record.model_copy(
                update={
                    "claimed_by": owner,
                    "claimed_at": now,
                    "claim_until": now + timedelta(seconds=seconds),
                    "claim_id": secrets.token_hex(8),
                }
            )
        lines = tuple(audit)
        wanted = tuple(sorted({email.lower() for email in unless_open}))
        f = facets(record, self.schedule)
        inserted = self._with_lines(
            lambda kept: self._insert(record, f, counted, kept, wanted), lines, bool
        )
        if not inserted:
            raise KeyError(f"{record.id} exists already")
        for entry in lines:
            metrics.audit_event(entry.event, entry.detail)
        return record

    def read(self, record_id: str) -> Record | None:
        raw = self._load(record_id)
        return decode(record_id, raw) if raw is not None else None

    def read_many(self, record_ids: list[str]) -> list[Record | None]:
        """Several records by id, in that order (None where there is none): an engine reads
        them in one go (a batch's 500 members for its summary)."""
        return [self.read(record_id) for record_id in record_ids]

    def get(self, request_id: str) -> InviteRequest | None:
        found = self.read(request_id) if not request_id.startswith("bat-") else None
        return found if isinstance(found, InviteRequest) else None

    def recent(self, record_id: str) -> tuple[Record | None, bool]:
        """A first guess at a record for a decision that its compare-and-set checks: the version
        this process read or wrote last when the engine keeps it (PostgreSQL), else a read.
        (the record, whether it is that guess rather than read now)."""
        return self.read(record_id), False

    def get_batch(self, batch_id: str) -> InviteBatch | None:
        found = self.read(batch_id) if batch_id.startswith("bat-") else None
        return found if isinstance(found, InviteBatch) else None

    def transition(
        self,
        record_id: str,
        expected: Iterable[Any],
        to: Any,
        require: dict[str, Any] | None = None,
        *,
        claim: tuple[str, float] | None = None,
        claim_expired: bool = False,
        audit: Audited | None = None,
        lease: DeliveryLease | None = None,
        **changes: Any,
    ) -> tuple[bool, Any]:
        """Move a record to `to` only if it is in one of `expected` and, when given, its
        fields still hold the `require`d values (e.g. the same claimant).

        `claim=(owner, seconds)` takes the work lease with the change (a new `claim_id`, which
        the holder's renewals and final writes must name); `lease` takes the delivery lease
        with it too, unless another holder's runs (the change is made all the same, without
        it: `lease_owner` says whether it was taken); `audit` is the audit event that
        records the change, written with it when it is made (`_audited`); `claim_expired` makes
        the change only when the current work lease has run out on the store's clock (a
        takeover). The condition names what matters, not a version number: delivery
        bookkeeping may change a record at any time without invalidating a decision - unless
        the decision was made on a version that may be out of date (`recent`): then it
        requires that `version`.
        Returns (True, the new record) when this call made the change, else (False, the
        record as it is, or None when there is none)."""
        expected = frozenset(expected)
        require = require or {}

        def change(current: Record | None, now: datetime) -> Record | None:
            if current is None or current.status not in expected:
                return None
            if any(getattr(current, name) != value for name, value in require.items()):
                return None
            if claim_expired and current.claim_until is not None and current.claim_until > now:
                return None
            extra = dict(changes)
            if lease is not None and not lease_held_by_another(current, lease.owner, now):
                extra.update(lease_owner=lease.owner, lease_until=lease.until(now))
            if claim is not None:
                owner, seconds = claim
                extra.update(
                    claimed_by=owner,
                    claimed_at=now,
                    claim_until=now + timedelta(seconds=seconds),
                    claim_id=secrets.token_hex(8),
                )
            return changed(current, now, {"status": to, **extra})

        if lease is not None and lease.sent is None:  # before the first write that may take it
            lease.sent = time.monotonic()
        made = self._audited(record_id, change, audit)
        if lease is not None and not made[0]:
            lease.sent = None  # no change, no lease taken: one of this holder's from before is old
        return made

    def update(self, record_id: str, **changes: Any) -> Any:
        """Change fields that are not the state (message references, delivery notes)."""

        def change(current: Record | None, now: datetime) -> Record | None:
            return changed(current, now, changes) if current is not None else None

        ok, record = self._mutate(record_id, change)
        return record if ok else None

    def revise(
        self,
        record_id: str,
        changes: Callable[[Any], dict[str, Any]],
        audit: Audited | None = None,
    ) -> Any:
        """`update` with the changes made from the record as stored (`changes(current)`), in
        its compare-and-set: no read before the write; `audit` records it (`_audited`)."""

        def change(current: Record | None, now: datetime) -> Record | None:
            return changed(current, now, changes(current)) if current is not None else None

        ok, record = self._audited(record_id, change, audit)
        return record if ok else None

    def archive_settled(self) -> int:
        """Archive everything settled longer than the retention ago (a periodic job)."""
        moved, cutoff = 0, self.now() - self.retention
        while True:
            count = self.archive(cutoff)
            moved += count
            if count == 0:
                # Daily counters (INVITE_POLICY's daily_limit) of days long gone.
                self.forget_quotas((self.now() - timedelta(days=2)).strftime("%Y-%m-%d"))
                return moved


def utc_key(when: datetime) -> str:
    """A time as a fixed-width UTC string that sorts like the time (index keys)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


__all__ = [
    "FAR_FUTURE",
    "Facets",
    "Record",
    "Store",
    "StoreClosed",
    "changed",
    "decode",
    "facets",
    "model_for",
    "utc_key",
]
