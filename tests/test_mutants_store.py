"""The store contract's promises that mutation testing found unchecked (docs/mutation.md):
facets, version and time of a change, leases at the instant they end, unknown records,
archiving after the retention, index keys. On sqlitedict; tests/test_store.py runs the
contract on both engines."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from prometheus_client import REGISTRY

from bot.domain.batches import BatchStatus, InviteBatch
from bot.domain.details import InviteDetails
from bot.domain.records import MessageRef, Schedule, Status
from bot.store import SqliteStore
from bot.store.base import facets, utc_key
from tests.test_store import pending, posted

T = datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    opened = SqliteStore(str(tmp_path / "s.sqlite"))
    yield opened
    opened.close()


def told(status: BatchStatus = BatchStatus.DENIED) -> InviteBatch:
    """A batch decided and told (settled, when the status is a final one)."""
    return InviteBatch(
        requester_id="U1",
        entries=[InviteDetails(email="a@example.com")],
        status=status,
        shown_status=status,
        approval_message=MessageRef(channel="C", ts="1"),
        outcome_told=True,
        updated_at=T,
    )


def test_facets_name_the_kind_and_status_and_when_a_batch_settled():
    """Facets name kind and status; a batch settles at its last change once decided and told."""
    request = facets(pending(), Schedule())
    assert (request.kind, request.status) == ("request", "pending")
    settled = facets(told(), Schedule())
    assert (settled.kind, settled.status, settled.settled_at) == ("batch", "denied", T)
    assert facets(told(BatchStatus.RUNNING), Schedule()).settled_at is None


def test_a_change_bumps_the_version_and_the_time(store, monkeypatch):
    """Every write moves the version on by one and sets updated_at to the store's clock."""
    request = store.add(pending())
    monkeypatch.setattr(store, "now", lambda: T)
    changed = store.update(request.id, waiting_told=True)
    assert changed.version == request.version + 1 and changed.updated_at == T


def test_a_change_to_a_field_that_does_not_exist_names_it(store):
    """A typo in a change is an error naming the field, and nothing is written."""
    request = store.add(pending())
    with pytest.raises(ValueError, match="InviteRequest has no field 'waiting_tld'"):
        store.update(request.id, waiting_tld=True)
    assert store.get(request.id) == request


def test_a_record_stored_already_claimed_holds_a_full_lease(store, monkeypatch):
    """add(claim=...) stores holder, claim time, end and id; the same id again is a named error."""
    monkeypatch.setattr(store, "now", lambda: T)
    request = store.add(pending(), claim=("A", 60))
    stored = store.get(request.id)
    assert (stored.claimed_by, stored.claimed_at, stored.claim_until) == (
        "A",
        T,
        T + timedelta(seconds=60),
    )
    assert stored.claim_id
    with pytest.raises(KeyError, match=request.id):
        store.add(request)


def test_a_lease_that_ends_now_has_run_out(store, monkeypatch):
    """At the instant a work lease or a delivery lease ends, another holder may take it."""
    request = store.add(pending())
    store.transition(request.id, {Status.PENDING}, Status.INVITING, claim=("A", 60))
    store.lease(request.id, "A", 60)
    ends = store.get(request.id).claim_until
    monkeypatch.setattr(store, "now", lambda: ends)
    store.update(request.id, lease_until=ends)
    assert store.lease(request.id, "B", 60)
    ok, taken = store.transition(
        request.id, {Status.INVITING}, Status.INVITING, claim=("B", 60), claim_expired=True
    )
    assert ok and taken.claimed_by == "B"


def test_an_unknown_record_cannot_be_renewed_or_updated(store):
    """Renewing or updating a record that does not exist is refused, not an error."""
    assert store.renew("inv-000000000000", "claim", 60) is False
    assert store.update("inv-000000000000", waiting_told=True) is None


def test_each_audit_event_is_counted_by_its_name(store):
    """store.record counts the event in invitebot_request_events under its name."""

    def count() -> float:
        sample = REGISTRY.get_sample_value("invitebot_request_events_total", {"event": "denied"})
        return sample or 0.0

    before = count()
    store.record("denied", "inv-1", "UA", reason="no")
    assert count() == before + 1


def settled_at(store, when: datetime, email: str) -> str:
    """A request denied and told, last changed at `when` on the store's clock."""
    request = store.add(pending(email))
    store.transition(request.id, {Status.PENDING}, Status.DENIED, deny_reason="no")
    posted(store, request.id)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "now", lambda: when)
        store.update(request.id, outcome_told=True)
    return request.id


@pytest.mark.parametrize("failure", ["busy", "connection lost"])
def test_an_audit_entry_the_store_could_not_take_is_written_after_the_answer(
    store, monkeypatch, failure
):
    """The audit log busy past the ack's budget, or its connection lost: the change it records
    stands (no error), and the entry is written once, whole, after the answer."""
    from bot.store.budget import StoreBusy, StoreUnavailable

    written, real = [], store._append_audit

    def busy_once(entry) -> None:
        if not written:
            written.append("busy")
            raise StoreBusy("audit locked") if failure == "busy" else StoreUnavailable("cut")
        real(entry)
        written.append(entry)  # once it is written: the test reads it back next

    monkeypatch.setattr(store, "_append_audit", busy_once)
    store.record("approved", "inv-1", actor="U1", note="kept")
    deadline = time.monotonic() + 5
    while len(written) < 2:
        assert time.monotonic() < deadline, "never written"
        time.sleep(0.01)
    [entry] = [e for e in store.audit() if e.request_id == "inv-1"]
    assert (entry.event, entry.actor, entry.detail) == ("approved", "U1", {"note": "kept"})


def test_archiving_takes_what_settled_before_the_retention_however_many(store, monkeypatch):
    """archive_settled moves all settled before the retention, batch after batch, and no younger."""
    now = store.now()
    old = [settled_at(store, now - timedelta(days=91), f"old{i}@example.com") for i in range(3)]
    young = settled_at(store, now - timedelta(days=89), "young@example.com")
    monkeypatch.setattr(store, "archive", functools.partial(store.archive, limit=1))
    assert store.archive_settled() == 3
    assert [r.id for r in store.requests()] == [young]
    assert all(store.get(record_id) is not None for record_id in old)
    assert store.archive_settled() == 0


def test_index_keys_keep_their_stored_form_whatever_the_machines_time_zone(monkeypatch):
    """A time's key is its UTC time, fixed width, as stores already written hold it."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        berlin = T.astimezone(timezone(timedelta(hours=1)))
        assert utc_key(berlin) == utc_key(T) == "2026-03-04T05:06:07.000890Z"
    finally:
        monkeypatch.undo()
        time.tzset()
