"""The store contract, run against both engines (sqlitedict and PostgreSQL)."""

from __future__ import annotations

import gc
import json
import sqlite3
import threading
import time
from datetime import timedelta

import pytest

from bot.domain.awork_models import InvitationResult
from bot.domain.batches import BatchStatus, InviteBatch
from bot.domain.clock import utcnow
from bot.domain.details import InviteDetails
from bot.domain.records import Failure, InviteRequest, MessageRef, Status
from bot.store import SqliteStore, Store
from bot.store.files import json_table

ENGINES = ["sqlite", "postgresql"]


def open_engine(engine: str, tmp_path, request) -> Store:
    if engine == "sqlite":
        return SqliteStore(str(tmp_path / "s.sqlite"))
    from bot.store.postgres import PostgresStore

    return PostgresStore(request.getfixturevalue("pg_url"))


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    return request.param


@pytest.fixture
def opener(engine, tmp_path, request):
    """Opens the engine under test on one place (a file or a schema): several opens = several
    processes or replicas sharing it."""
    opened: list[Store] = []

    def open_() -> Store:
        store = open_engine(engine, tmp_path, request)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(opener) -> Store:
    return opener()


def pending(email: str = "a@example.com", requester: str = "U1") -> InviteRequest:
    return InviteRequest(requester_id=requester, details=InviteDetails(email=email))


def batch_of(*emails: str, requester: str = "U1") -> InviteBatch:
    return InviteBatch(
        requester_id=requester, entries=[InviteDetails(email=email) for email in emails]
    )


def posted(store: Store, record_id: str) -> None:
    """Slack has been told everything about a pending record (nothing left to deliver)."""
    store.update(record_id, approval_message=MessageRef(channel="C", ts="1"), waiting_told=True)
    store.update(record_id, shown_status=store.read(record_id).status)


# --- records and compare-and-set ------------------------------------------------------------


def test_records_survive_reopening(opener):
    """A request written before close is there, unchanged, after reopening."""
    first = opener()
    request = first.add(pending())
    first.close()
    assert opener().get(request.id) == request


def test_transition_only_from_expected_states(store):
    """compare-and-set: the first transition wins, the second sees the new state and fails."""
    request = store.add(pending())
    ok, first = store.transition(request.id, {Status.PENDING}, Status.INVITING, decided_by="UA")
    assert ok and first.status is Status.INVITING and first.version == 1
    ok, second = store.transition(request.id, {Status.PENDING}, Status.DENIED, decided_by="UB")
    assert not ok and second.status is Status.INVITING and second.decided_by == "UA"
    assert store.transition("inv-missing", {Status.PENDING}, Status.DENIED) == (False, None)


def test_concurrent_transitions_on_two_connections_have_one_winner(opener):
    """Forty threads over two store instances (two processes or replicas) race one transition:
    exactly one succeeds."""
    stores = [opener(), opener()]
    request = stores[0].add(pending())
    wins = []
    barrier = threading.Barrier(40)

    def race(i: int) -> None:
        barrier.wait()
        ok, _ = stores[i % 2].transition(
            request.id, {Status.PENDING}, Status.INVITING, decided_by=f"U{i}"
        )
        if ok:
            wins.append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert stores[1].get(request.id).decided_by == f"U{wins[0]}"


def test_codes_are_kept_for_the_dm_but_hidden_in_repr(store):
    """The invitation code round-trips through the store but repr never shows it."""
    request = store.add(pending())
    store.transition(request.id, {Status.PENDING}, Status.INVITING)
    result = InvitationResult.model_validate(
        {"invitationCode": "CODE123=", "passwordResetCode": "RESET9="}
    )
    store.transition(request.id, {Status.INVITING}, Status.INVITED, result=result)
    stored = store.get(request.id)
    assert stored.result.invitation_code.get_secret_value() == "CODE123="
    assert "CODE123" not in repr(stored) and "RESET9" not in str(stored)


def test_adding_an_existing_id_is_refused(store):
    """An id is never silently overwritten."""
    request = store.add(pending())
    with pytest.raises(KeyError):
        store.add(request)


def test_a_bad_change_is_refused_and_nothing_is_written(store):
    """Changed fields are validated: a bad value raises and the record stays as it was."""
    request = store.add(pending())
    with pytest.raises(ValueError):
        store.update(request.id, attempts="many")
    with pytest.raises(ValueError):
        store.update(request.id, no_such_field=1)
    assert store.get(request.id) == request


def test_required_fields_guard_a_transition_not_the_version(store):
    """A transition guarded by field values survives unrelated writes, and fails when they differ."""
    request = store.add(pending())
    store.transition(request.id, {Status.PENDING}, Status.INVITING, claimed_by="A")
    store.update(request.id, waiting_told=True)  # delivery bookkeeping bumps the version
    ok, taken = store.transition(
        request.id, {Status.INVITING}, Status.INVITING, require={"claimed_by": "A"}, claimed_by="B"
    )
    assert ok and taken.claimed_by == "B"
    ok, _ = store.transition(
        request.id, {Status.INVITING}, Status.INVITING, require={"claimed_by": "A"}, claimed_by="C"
    )
    assert not ok and store.get(request.id).claimed_by == "B"


# --- leases -----------------------------------------------------------------------------------


def test_work_lease_is_taken_over_only_after_it_expired(store):
    """A claim holds until claim_until on the store's clock; renewal names the claim (not
    the owner: a later claim by the same process is another claim); a takeover
    (claim_expired) fails while the lease runs and succeeds once it ran out."""
    request = store.add(pending())
    ok, held = store.transition(request.id, {Status.PENDING}, Status.INVITING, claim=("A", 60))
    assert ok and held.claimed_by == "A" and held.claim_id
    assert 59 < (held.claim_until - store.now()).total_seconds() <= 60
    take = {"claim": ("B", 60), "claim_expired": True}
    assert store.transition(request.id, {Status.INVITING}, Status.INVITING, **take)[0] is False
    assert store.renew(request.id, "not-the-claim", 60) is False
    assert store.renew(request.id, held.claim_id, 0.01) is True
    store.update(request.id, claim_until=store.now() - timedelta(seconds=1))
    ok, taken = store.transition(request.id, {Status.INVITING}, Status.INVITING, **take)
    assert ok and taken.claimed_by == "B" and taken.claim_until > store.now()
    assert store.renew(request.id, held.claim_id, 60) is False  # the old holder lost it
    ok, again = store.transition(request.id, {Status.INVITING}, Status.INVITING, claim=("B", 60))
    assert again.claim_id != taken.claim_id
    assert store.renew(request.id, taken.claim_id, 60) is False  # same owner, older claim
    store.transition(request.id, {Status.INVITING}, Status.FAILED)
    assert store.renew(request.id, again.claim_id, 60) is False  # nothing to work on


def test_a_new_claim_is_stored_already_held(store):
    """add(claim=...) stores a record leased from the start, on the store's clock."""
    request = store.add(pending(), claim=("A", 30))
    stored = store.get(request.id)
    assert stored.claimed_by == "A" and stored.claim_until > store.now()


def test_delivery_lease_is_exclusive_until_it_expires(opener):
    """The Slack-delivery lease: one holder at a time across instances, free once released
    or expired; the holder may renew it."""
    one, two = opener(), opener()
    request = one.add(pending())
    assert one.lease(request.id, "A", 30) is True
    assert two.lease(request.id, "B", 30) is False
    assert one.lease(request.id, "A", 30) is True  # renewal
    one.release(request.id, "B")  # not B's: nothing happens
    assert two.lease(request.id, "B", 30) is False
    one.update(request.id, lease_until=one.now() - timedelta(seconds=1))
    assert two.lease(request.id, "B", 30) is True
    two.release(request.id, "B")
    assert one.get(request.id).lease_owner is None


def test_a_transition_takes_the_delivery_lease_only_when_no_other_holder_has_it(opener):
    """A change made with `lease` takes the delivery lease in the same write when it is free
    (noting when that write left), and is made all the same without it while another's runs."""
    from bot.store.leasing import DeliveryLease

    one, two = opener(), opener()
    first, second = one.add(pending("a@example.com")), one.add(pending("b@example.com"))
    assert two.lease(second.id, "B", 30) is True
    lease = DeliveryLease("A", 30)
    ok, moved = one.transition(first.id, {Status.PENDING}, Status.DENIED, lease=lease)
    assert ok and moved.lease_owner == "A" and lease.sent is not None
    assert moved.lease_until > one.now() + timedelta(seconds=25)
    assert two.lease(first.id, "B", 30) is False  # A's now
    other = DeliveryLease("A", 30)
    ok, moved = one.transition(second.id, {Status.PENDING}, Status.DENIED, lease=other)
    assert ok and moved.status is Status.DENIED and moved.lease_owner == "B"
    again = DeliveryLease("A", 30)  # refused: no change made, no lease taken
    ok, current = one.transition(first.id, {Status.PENDING}, Status.DENIED, lease=again)
    assert not ok and current.lease_owner == "A" and again.sent is None


# --- indexed lookups ----------------------------------------------------------------------------


def test_open_addresses_by_address_in_any_case(store):
    """Open requests and batches are found by address (the oldest), closed ones not; a batch
    member points to its batch."""
    old = store.add(pending("Ada@Example.com"))
    again = store.add(pending("ada@example.com"))
    denied = store.add(pending("bob@example.com"))
    store.transition(denied.id, {Status.PENDING}, Status.DENIED)
    batch = store.add(batch_of("c1@example.com", "c2@example.com"))
    member = InviteRequest(
        id=batch.member_id(0),
        status=Status.INVITING,
        batch_id=batch.id,
        requester_id="U1",
        details=InviteDetails(email="d@example.com"),
    )
    store.add(member)
    found = store.open_addresses(
        ["ADA@example.com", "bob@example.com", "c2@example.com", "d@example.com", "x@example.com"]
    )
    assert found == {
        "ada@example.com": old.id,
        "c2@example.com": batch.id,
        "d@example.com": batch.id,
    }
    store.transition(batch.id, {BatchStatus.PENDING}, BatchStatus.DENIED)
    store.transition(old.id, {Status.PENDING}, Status.EXPIRED)
    found = store.open_addresses(["c1@example.com", "ada@example.com"])
    assert found == {"ada@example.com": again.id}


def test_lists_of_a_requester_and_of_the_approvers(store):
    """listed: a requester's requests and batches, newest first, without batch members;
    approvable_listing: pending ones and retryable failures, oldest first, as summaries."""
    first = store.add(pending("a@example.com", "U1"))
    second = store.add(pending("b@example.com", "U1"))
    third = store.add(pending("c@example.com", "U2"))
    batch = store.add(batch_of("d@example.com", requester="U1"))
    member = InviteRequest(
        id=batch.member_id(0), batch_id=batch.id, status=Status.INVITING, requester_id="U1",
        details=InviteDetails(email="d@example.com"),
    )  # fmt: skip
    store.add(member)
    assert [r.id for r in store.listed("U1")] == [batch.id, second.id, first.id]
    assert [r.id for r in store.listed("U1", limit=1)] == [batch.id]
    assert [r.id for r in store.listed("U1", limit=2, offset=1)] == [second.id, first.id]
    assert (store.count_listed("U1"), store.count_listed("U2"), store.count_listed("U9")) == (
        3,
        1,
        0,
    )
    store.transition(second.id, {Status.PENDING}, Status.INVITING)
    failure = Failure(code="timeout", message="later", retryable=True)
    store.transition(second.id, {Status.INVITING}, Status.FAILED, failure=failure)
    store.transition(first.id, {Status.PENDING}, Status.DENIED)
    listing = store.approvable_listing()
    assert [item.id for item in listing] == [second.id, third.id, batch.id]  # oldest first
    assert (listing[0].retryable, listing[0].email, listing[0].kind) == (
        True,
        "b@example.com",
        "request",
    )
    assert (listing[2].people, listing[2].email, listing[2].kind) == (1, "d@example.com", "batch")


def test_due_work_is_claimed_by_one_sweeper_and_released(opener):
    """claim_due gives what is due by now (or the horizon); a second instance does not get
    the same records while they are held; released, they are due again."""
    one, two = opener(), opener()
    waiting = one.add(pending("a@example.com"))  # approval message not posted: due now
    quiet = one.add(pending("b@example.com"))
    posted(one, quiet.id)  # due only at its reminder, a day from now
    got = one.claim_due("A", hold=60)
    assert [r.id for r in got] == [waiting.id]
    assert two.claim_due("B", hold=60) == []
    one.release_due("A", [waiting.id])
    assert [r.id for r in two.claim_due("B", hold=60)] == [waiting.id]
    later = two.claim_due("B", hold=60, horizon=two.now() + timedelta(days=2))
    assert [r.id for r in later] == [quiet.id]


def test_an_expired_work_lease_comes_due(store):
    """INVITING is due when its lease runs out (then a sweep takes it over), not before."""
    request = store.add(pending())
    posted(store, request.id)
    store.transition(request.id, {Status.PENDING}, Status.INVITING, claim=("A", 60))
    assert store.claim_due("S", hold=5) == []
    store.update(request.id, claim_until=store.now() - timedelta(seconds=1))
    assert [r.id for r in store.claim_due("S", hold=5)] == [request.id]


def test_settled_requests_move_to_the_archive_and_stay_readable(store):
    """archive() moves what was settled before the cutoff; read() still finds it, lists and
    due work do not; its id cannot be reused; the audit log is untouched."""
    old = store.add(pending("a@example.com"))
    store.transition(old.id, {Status.PENDING}, Status.DENIED, deny_reason="no")
    posted(store, old.id)
    store.update(old.id, outcome_told=True)
    fresh = store.add(pending("b@example.com"))
    store.record("denied", old.id, "UA", reason="no")
    assert store.archive(store.now() - timedelta(days=1)) == 0
    assert store.archive(store.now() + timedelta(seconds=1)) == 1
    assert store.get(old.id).status is Status.DENIED and store.get(old.id).deny_reason == "no"
    assert [r.id for r in store.listed("U1")] == [fresh.id]
    assert old.id not in {r.id for r in store.claim_due("S", 5, horizon=store.now())}
    with pytest.raises(KeyError):
        store.add(old)
    assert [e.event for e in store.audit()] == ["denied"]


# --- audit, state, periodic jobs ---------------------------------------------------------------


def test_audit_log_from_a_time_on(store):
    """Events come back oldest first, from `since` on."""
    store.record("a", "inv-1")
    cut = store.now()
    store.record("b", "inv-1", "U1", why="x")
    assert [e.event for e in store.audit()] == ["a", "b"]
    [b] = store.audit(since=cut)
    assert b.event == "b" and b.actor == "U1" and b.detail == {"why": "x"}


def test_meta_values_and_atomic_set_additions(opener):
    """Meta round-trips; adding to a set from two instances at once loses nobody."""
    one, two = opener(), opener()
    one.set_meta("workspace_id", "W1")
    assert two.get_meta("workspace_id") == "W1" and two.get_meta("nope", 5) == 5
    users = [f"U{i}" for i in range(20)]
    threads = [
        threading.Thread(target=(one, two)[i % 2].add_to_meta_set, args=("home_users", user))
        for i, user in enumerate(users)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(one.get_meta("home_users")) == sorted(users)
    assert one.add_to_meta_set("home_users", "U1") is False


def test_a_meta_key_can_be_deleted(opener):
    """delete_meta removes a key for every instance (the doctor's write probe leaves nothing);
    deleting a missing key is no error."""
    one, two = opener(), opener()
    one.set_meta("doctor_probe", "x")
    two.delete_meta("doctor_probe")
    assert one.get_meta("doctor_probe") is None
    one.delete_meta("never_there")


def test_a_periodic_job_is_claimed_once_per_period(opener):
    """Of many instances asking at once, one gets the period; after it, one again."""
    stores = [opener(), opener()]
    wins = []
    barrier = threading.Barrier(10)

    def ask(i: int) -> None:
        barrier.wait()
        if stores[i % 2].claim_period("catalog", 0.5, f"R{i}"):
            wins.append(i)

    for period in range(2):
        if period:
            time.sleep(0.6)  # the 0.5 s period claimed in the first round has passed
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(wins) == 1
        wins.clear()


# --- schema and moving between engines -----------------------------------------------------------


def test_migrate_is_idempotent(opener):
    """Opening again and migrating again changes nothing and reports the same version."""
    one = opener()
    request = one.add(pending())
    version = one.migrate()
    assert opener().migrate() == version and one.get(request.id) == request


def test_export_and_import_move_everything_between_engines(store, tmp_path):
    """Export from one engine, import into the other and back: every request, batch, archived
    request, lease, audit entry and meta value arrives; importing twice adds nothing."""
    request = store.add(pending("a@example.com"))
    store.transition(request.id, {Status.PENDING}, Status.INVITING, claim=("A", 120))
    gone = store.add(pending("b@example.com"))
    store.transition(gone.id, {Status.PENDING}, Status.DENIED)
    posted(store, gone.id)
    store.update(gone.id, outcome_told=True)
    store.archive(store.now() + timedelta(seconds=1))
    batch = store.add(batch_of("c@example.com"))
    store.record("submitted", request.id, "U1")
    store.set_meta("home_users", ["U1"])
    items = list(store.export())

    other = (
        SqliteStore(str(tmp_path / "other.sqlite"))
        if store.engine != "sqlite"
        else SqliteStore(str(tmp_path / "again.sqlite"))
    )
    try:
        counts = other.import_items(items)
        assert counts == {"record": 2, "archived": 1, "meta": 1, "audit": 1, "kept": 0}
        assert other.import_items(items)["kept"] == 5
        moved = other.get(request.id)
        assert moved.claimed_by == "A" and moved.claim_until == store.get(request.id).claim_until
        assert other.get(gone.id).status is Status.DENIED and other.get_batch(batch.id) == batch
        assert other.open_addresses(["a@example.com"]) == {"a@example.com": request.id}
        assert other.get_meta("home_users") == ["U1"] and len(other.audit()) == 1
        assert sorted(json.dumps(i, sort_keys=True) for i in other.export()) == sorted(
            json.dumps(i, sort_keys=True) for i in items
        )
    finally:
        other.close()


# --- engine specifics ----------------------------------------------------------------------------


def test_sqlite_stores_json_not_pickle(tmp_path):
    """The file holds plain JSON text that any tool can read; no pickle."""
    store = SqliteStore(str(tmp_path / "s.sqlite"))
    request = store.add(pending())
    store.close()
    row = (
        sqlite3.connect(tmp_path / "s.sqlite")
        .execute("SELECT value FROM store WHERE key = ?", (f"r|{request.id}",))
        .fetchone()
    )
    raw = row[0].decode() if isinstance(row[0], bytes) else row[0]
    assert json.loads(raw)["details"]["email"] == "a@example.com"


def _open_connections() -> set[int]:
    def usable(connection: sqlite3.Connection) -> bool:
        try:
            connection.total_changes  # noqa: B018 - raises once closed
        except sqlite3.ProgrammingError:
            return False
        return True

    return {id(o) for o in gc.get_objects() if isinstance(o, sqlite3.Connection) and usable(o)}


def test_opening_a_new_sqlite_store_leaves_no_connection_to_the_collector(tmp_path):
    """A new store file is created and migrated on connections the store closes itself: none
    is left for the garbage collector (off while `serve` starts) to close at some later time."""
    gc.collect()
    before = _open_connections()
    gc.disable()
    try:
        SqliteStore(str(tmp_path / "new.sqlite")).close()
        assert _open_connections() - before == set()
    finally:
        gc.enable()


def test_a_sqlite_stores_connection_keeps_a_small_page_cache(tmp_path):
    """The store's connection keeps a page cache of CACHE_KIB, not SQLite's 2 MiB: the server
    holds less after many requests."""
    from bot.store.sqlite import CACHE_KIB

    store = SqliteStore(str(tmp_path / "s.sqlite"))
    try:
        assert store._db.conn.select_one("PRAGMA cache_size") == (-CACHE_KIB,)
        assert CACHE_KIB < 2000
    finally:
        store.close()


def test_a_sqlite_stores_statements_run_in_the_calling_thread(tmp_path):
    """Every statement of an ask's insert and of a decision, its commit included, runs in the
    thread that asked - no hand-over to sqlitedict's thread - and a failing statement raises
    in the call that made it."""
    store = SqliteStore(str(tmp_path / "s.sqlite"))
    ran: list[tuple[int, str]] = []
    store._db.conn._conn.set_trace_callback(
        lambda sql: ran.append((threading.get_ident(), sql.split()[0].upper()))
    )
    caller: list[int] = []

    def ask_and_decide() -> None:
        caller.append(threading.get_ident())
        request = store.add(pending("t@example.com"))
        store.update(request.id, approval_message=MessageRef(channel="C", ts="1"))

    try:
        worker = threading.Thread(target=ask_and_decide)
        worker.start()
        worker.join(10)
        assert caller and {"SELECT", "REPLACE", "COMMIT"} <= {verb for _, verb in ran}
        assert {thread for thread, _ in ran} == set(caller)
        with pytest.raises(sqlite3.OperationalError):
            store._db.conn.execute("SELECT * FROM no_such_table")
    finally:
        store.close()


def test_a_sqlite_stores_commits_are_synced_to_disk(tmp_path):
    """Each commit of the sqlitedict store is synced (synchronous FULL, not the OFF sqlitedict
    sets on its own connections): a request answered as stored survives a power cut, and the
    file is not corrupted."""
    store = SqliteStore(str(tmp_path / "s.sqlite"))
    try:
        assert store._db.conn.select_one("PRAGMA synchronous") == (2,)  # FULL
    finally:
        store.close()


def test_sqlite_store_of_version_1_is_upgraded_in_place(tmp_path):
    """A store written before indexes (four tables) opens with every request, batch, audit
    entry and meta value, indexed, and the old tables gone."""
    path = str(tmp_path / "old.sqlite")
    request, batch = pending("a@example.com"), batch_of("b@example.com")
    working = pending("w@example.com").model_copy(
        update={"status": Status.INVITING, "claimed_by": "old:1:x", "claimed_at": utcnow()}
    )
    for name, rows in {
        "requests": {
            request.id: request.model_dump(mode="json"),
            working.id: working.model_dump(mode="json"),
        },
        "batches": {batch.id: batch.model_dump(mode="json")},
        "meta": {"workspace_id": "W1"},
        "audit": {"20260101T000000.000000-1-abc": {"at": "2026-01-01T00:00:00Z", "event": "x"}},
    }.items():
        table = json_table(path, name)
        table.update(rows)
        table.close()
    store = SqliteStore(path)
    try:
        assert store.get(request.id) == request and store.get_batch(batch.id) == batch
        assert store.get_meta("workspace_id") == "W1" and [e.event for e in store.audit()] == ["x"]
        assert store.open_addresses(["a@example.com", "b@example.com"]) == {
            "a@example.com": request.id,
            "b@example.com": batch.id,
        }
        # A version-1 claim becomes a lease of the old 10 minutes: not taken over at once.
        lease = store.get(working.id).claim_until - working.claimed_at
        assert lease == timedelta(minutes=10)
        tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
        assert not {"requests", "batches", "meta", "audit"} & tables
    finally:
        store.close()


def test_postgres_replicas_starting_at_once_migrate_once(pg_url):
    """Five instances opening an empty database at once: one schema, version recorded once."""
    import psycopg

    from bot.store.postgres import PostgresStore
    from bot.store.postgres_schema import SCHEMA_VERSION

    stores, errors = [], []

    def start() -> None:
        try:
            stores.append(PostgresStore(pg_url))
        except Exception as exc:  # pragma: no cover - the failure is what the test reports
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for store in stores:
        store.close()
    assert errors == [] and len(stores) == 5
    with psycopg.connect(pg_url) as conn:
        versions = conn.execute("SELECT version FROM invite_schema ORDER BY version").fetchall()
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]  # each migration once


def test_postgres_rate_limit_holds_for_all_replicas_together(pg_url):
    """Two replicas' limiters (5 a second) taking 10 slots at once: never more than 5 calls
    counted in any one second, on the database's clock."""
    import psycopg

    from bot.store.postgres import PostgresStore

    stores = [PostgresStore(pg_url), PostgresStore(pg_url)]
    limiters = [s.rate_limiter(5, 1000) for s in stores]
    try:

        def call(i: int) -> None:
            limiter = limiters[i % 2]
            slot = limiter.acquire()
            limiter.done(slot)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with psycopg.connect(pg_url) as conn:
            times = [r[0] for r in conn.execute("SELECT counted_at FROM awork_calls ORDER BY 1")]
        assert len(times) == 10
        for i, start in enumerate(times):
            in_window = [t for t in times[i:] if t < start + timedelta(seconds=1)]
            assert len(in_window) <= 5
    finally:
        for store in stores:
            store.close()


def test_an_invitation_is_followed_once_a_period_not_at_every_sweep(store):
    """INVITED comes due after the follow-up period (or when its code runs out), and again a
    period after it was last looked at - so invitations cost a sweep once a period each."""
    request = store.add(pending())
    posted(store, request.id)
    store.transition(request.id, {Status.PENDING}, Status.INVITING)
    result = InvitationResult.model_validate({"invitationCode": "C="})
    store.transition(
        request.id, {Status.INVITING}, Status.INVITED, result=result, link_attempted=True,
        outcome_told=True, shown_status="invited",
    )  # fmt: skip
    assert store.claim_due("S", hold=1) == []
    soon = store.now() + store.schedule.follow_every + timedelta(seconds=1)
    assert [r.id for r in store.claim_due("S", hold=1, horizon=soon)] == [request.id]
    store.release_due("S", [request.id])
    store.update(request.id, followed_at=store.now())
    assert store.claim_due("S", hold=1, horizon=soon - timedelta(seconds=2)) == []


def test_a_big_backlog_is_claimed_a_page_at_a_time_without_repeats(opener):
    """450 due records, claimed 200 at a time by two sweepers: 200, 200, 50 - each once."""
    one, two = opener(), opener()
    ids = {one.add(pending(f"p{i}@example.com")).id for i in range(450)}
    got = [one.claim_due("A", 60), two.claim_due("B", 60), one.claim_due("A", 60)]
    assert [len(g) for g in got] == [200, 200, 50]
    assert {r.id for g in got for r in g} == ids


def test_many_records_are_read_in_one_go_in_order(store):
    """read_many returns live and archived records in the order asked, None for unknown ids."""
    first, second = store.add(pending("a@example.com")), store.add(pending("b@example.com"))
    store.transition(first.id, {Status.PENDING}, Status.DENIED)
    posted(store, first.id)
    store.update(first.id, outcome_told=True)
    store.archive(store.now() + timedelta(seconds=1))
    found = store.read_many([second.id, "inv-none", first.id])
    assert [r.id if r else None for r in found] == [second.id, None, first.id]
