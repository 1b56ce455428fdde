"""The JSON sqlitedict store and its compare-and-set."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from bot.models import InvitationResult, InviteDetails, InviteRequest, Status
from bot.store import SqliteStore as Store


@pytest.fixture
def store(tmp_path):
    opened = Store(str(tmp_path / "s.sqlite"))
    yield opened
    opened.close()


def pending(email: str = "a@example.com") -> InviteRequest:
    return InviteRequest(requester_id="U1", details=InviteDetails(email=email))


def test_requests_are_stored_as_json_not_pickle(tmp_path, store):
    """The file holds plain JSON text that any tool can read; no pickle."""
    request = store.add(pending())
    store.close()
    row = (
        sqlite3.connect(tmp_path / "s.sqlite")
        .execute("SELECT value FROM store WHERE key = ?", (f"r|{request.id}",))
        .fetchone()
    )
    raw = row[0].decode() if isinstance(row[0], bytes) else row[0]
    assert json.loads(raw)["details"]["email"] == "a@example.com"


def test_requests_survive_reopening(tmp_path, store):
    """A request written before close is there, unchanged, after reopening."""
    request = store.add(pending())
    store.close()
    again = Store(str(tmp_path / "s.sqlite"))
    assert again.get(request.id) == request
    again.close()


def test_transition_only_from_expected_states(store):
    """compare-and-set: the first transition wins, the second sees the new state and fails."""
    request = store.add(pending())
    ok, first = store.transition(request.id, {Status.PENDING}, Status.INVITING, decided_by="UA")
    assert ok and first.status is Status.INVITING and first.version == 1
    ok, second = store.transition(request.id, {Status.PENDING}, Status.DENIED, decided_by="UB")
    assert not ok and second.status is Status.INVITING and second.decided_by == "UA"
    assert store.transition("missing", {Status.PENDING}, Status.DENIED) == (False, None)


def test_concurrent_transitions_have_one_winner(store):
    """Fifty threads racing the same transition: exactly one succeeds."""
    request = store.add(pending())
    wins = []
    barrier = threading.Barrier(50)

    def race(i):
        barrier.wait()
        ok, _ = store.transition(request.id, {Status.PENDING}, Status.INVITING, decided_by=f"U{i}")
        if ok:
            wins.append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1


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


def test_filtering_by_status_and_meta(store):
    """requests(status) filters; meta values round-trip."""
    a, b = store.add(pending("a@example.com")), store.add(pending("b@example.com"))
    store.transition(b.id, {Status.PENDING}, Status.DENIED)
    assert [r.id for r in store.requests(Status.PENDING)] == [a.id]
    store.set_meta("workspace_id", "W1")
    assert store.get_meta("workspace_id") == "W1" and store.get_meta("nope", 5) == 5


def test_adding_an_existing_id_is_refused(store):
    """An id is never silently overwritten."""
    request = store.add(pending())
    with pytest.raises(KeyError):
        store.add(request)


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
