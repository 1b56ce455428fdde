"""The decision path's promises that mutation testing found unchecked (docs/mutation.md):
what an approval, a retry, a deny and an expiry store, audit and log, and that each is
decided by compare-and-set. Each runs for a single request and a batch where both apply."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from bot.domain.clock import utcnow
from bot.domain.details import InviteDetails
from bot.domain.people import Person
from bot.domain.records import Failure, Status
from bot.services import decisions as decisions_module
from bot.services.decisions import Refusal
from bot.store import SqliteStore
from tests import test_decisions
from tests.fakes.services import in_process_service
from tests.test_decisions import A, B

DAY = timedelta(days=1)
kind = test_decisions.kind  # each test for a request and for a batch, as tests/test_decisions.py


def two_needed(of) -> str:
    """A new record that needs two approvals (awork's admin role, with both approvers free)."""
    record_id = of.ask()
    of.store.update(record_id, approvals_needed=2)
    return record_id


def test_two_approvals_given_at_once_both_count(kind, monkeypatch):
    """Two approvals written at once: the later one reads again, and both count."""
    record_id = two_needed(kind)
    decisions = kind.deciding.decisions
    check = decisions._check  # where an approval has its record in hand, before it writes

    def first_lands_meanwhile(current, user_id: str, status=None):
        checked = check(current, user_id, status)
        if user_id == B and not kind.read(record_id).approvals:
            assert kind.deciding.approve(record_id, A).ok
        return checked

    monkeypatch.setattr(decisions, "_check", first_lands_meanwhile)
    assert kind.deciding.approve(record_id, B).ok
    stored = kind.read(record_id)
    assert stored.status is kind.claimed and stored.approvals == [A, B]


def test_an_approval_that_keeps_losing_the_race_is_refused(kind, monkeypatch):
    """An approval that loses every compare-and-set is refused with the stored record."""
    record_id = kind.ask()
    monkeypatch.setattr(
        kind.store, "transition", lambda record_id, *a, **k: (False, kind.read(record_id))
    )
    decision = kind.deciding.approve(record_id, A)
    assert decision.refusal is Refusal.ALREADY_DECIDED and decision.request == kind.read(record_id)


def test_the_completing_approval_records_when_it_was_decided(kind):
    """decided_at is the moment of the approval that completed the record."""
    record_id = kind.ask()
    before = utcnow()
    decided = kind.deciding.approve(record_id, A).request
    assert before <= decided.decided_at <= utcnow()


def test_each_approval_is_audited_with_the_record_the_approver_and_the_rule(kind):
    """Approvals are audited by whom: a first of two as "of" 2, the completing one with its rule."""
    record_id = two_needed(kind)
    assert kind.deciding.approve(record_id, A).ok and kind.deciding.approve(record_id, B).ok
    approved = [e for e in kind.store.audit() if e.event.endswith("approved")]
    assert [(e.request_id, e.actor, e.detail) for e in approved] == [
        (record_id, A, {"of": 2}),
        (record_id, B, {"rule": "two"}),
    ]


def test_decisions_are_logged_with_the_record_and_the_approver(kind, caplog):
    """The log says which request or batch was denied or approved, and by whom."""
    caplog.set_level(logging.INFO, logger=decisions_module.__name__)
    denied = kind.ask()
    assert kind.deciding.deny(denied, A, "no").ok
    approved = kind.ask()
    assert kind.deciding.approve(approved, B).ok
    assert f"{kind.name} {denied} denied by {A}" in caplog.messages
    assert f"{kind.name} {approved} approved by {B}" in caplog.messages


def test_a_deny_reason_keeps_its_line_breaks(kind):
    """A reason of several lines is stored and audited with its line breaks."""
    record_id = kind.ask()
    denied = kind.deciding.deny(record_id, A, "Not now.\r\nAsk again in May.")
    assert denied.request.deny_reason == "Not now.\nAsk again in May."
    [event] = [e for e in kind.store.audit() if e.event.endswith("denied")]
    assert event.detail["reason"] == "Not now.\nAsk again in May."


# --- a request's invitation attempts -------------------------------------------------------------


@pytest.fixture
def service(tmp_path):
    """The invite service in-process, A and B its approvers."""
    store = SqliteStore(str(tmp_path / "db.sqlite"))
    yield in_process_service(store, (A, B))
    store.close()


def failed(service, retryable: bool = True):
    """A request approved, invited and failed (told to the requester), as the inviting would."""
    store = service.store
    request = service.submit(InviteDetails(email="ada@example.com"), "UREQ", None)
    first = service.approve(request.id, A).request
    failure = Failure(code="insufficient-seats", message="No seats", retryable=retryable)
    ok, stored = store.transition(
        request.id, {Status.INVITING}, Status.FAILED, failure=failure, outcome_told=True
    )
    assert ok
    return first, stored


def test_the_first_approval_starts_attempt_one_now(service):
    """The completing approval starts the first invitation attempt at the decision's time."""
    first, _ = failed(service)
    assert first.attempts == 1 and first.invite_started_at == first.decided_at


def test_a_click_on_a_retryable_failure_starts_the_next_attempt(service, caplog):
    """A click on a retryable failure claims the next attempt, keeps its start, audits, logs."""
    store = service.store
    caplog.set_level(logging.INFO, logger=decisions_module.__name__)
    first, _ = failed(service)
    retried = service.approve(first.id, B)
    assert retried.ok
    request = retried.request
    assert request.status is Status.INVITING and request.attempts == 2 and request.failure is None
    assert request.invite_started_at == first.invite_started_at and not request.outcome_told
    assert request.claim_id and request.claim_id != first.claim_id
    assert request.claimed_by == service.instance_id
    assert [(e.request_id, e.actor) for e in store.audit() if e.event == "retried"] == [
        (first.id, B)
    ]
    assert f"request {first.id} retried by {B}" in caplog.messages


def test_a_failure_not_worth_retrying_is_not_retried_by_a_click(service):
    """A failure that is not retryable stays failed, whoever clicks."""
    store = service.store
    _, stored = failed(service, retryable=False)
    assert service.approve(stored.id, B).refusal is Refusal.ALREADY_DECIDED
    assert store.get(stored.id) == stored


def test_someone_who_is_no_approver_cannot_retry_a_failure(service):
    """A crafted click on a failed request by someone who is no approver changes nothing."""
    store = service.store
    _, stored = failed(service)
    assert service.approve(stored.id, "USTRANGER").refusal is Refusal.NOT_APPROVER
    assert store.get(stored.id) == stored


def test_two_retry_clicks_at_once_start_one_attempt(service, monkeypatch):
    """A retry click that loses to another approver's is refused with the stored record."""
    store = service.store
    _, stored = failed(service)
    transition = store.transition

    def other_click_first(record_id, expected, to, *args, **kwargs):
        if set(expected) == {Status.FAILED}:
            monkeypatch.setattr(store, "transition", transition)
            assert service.approve(record_id, A).ok
        return transition(record_id, expected, to, *args, **kwargs)

    monkeypatch.setattr(store, "transition", other_click_first)
    decision = service.approve(stored.id, B)
    assert decision.refusal is Refusal.ALREADY_DECIDED and decision.request == store.get(stored.id)
    assert decision.request.attempts == 2
    assert [e.actor for e in store.audit() if e.event == "retried"] == [A]


# --- reminders and expiry ---------------------------------------------------------------------

NOW = utcnow()


@pytest.fixture
def still(monkeypatch):
    """The decision path's clock stands at NOW."""
    monkeypatch.setattr(decisions_module, "utcnow", lambda: NOW)


def ask(of, email: str) -> str:
    """A new request or batch (of one) for `email`."""
    if of.name == "request":
        return of.service.submit(InviteDetails(email=email), "UREQ", None).id
    return of.batches.submit(of.batches.prepare([Person(email)]), "UREQ", None).id


def aged(of, record_id: str, age: timedelta):
    """The record as if asked for `age` before NOW."""
    of.store.update(record_id, created_at=NOW - age)
    return of.read(record_id)


def test_a_record_is_reminded_and_expired_exactly_at_its_age(kind, still):
    """Reminded at exactly remind_after, expired at exactly expire_after (audited in days)."""
    record_id = kind.ask()
    assert kind.deciding.remind_and_expire([aged(kind, record_id, DAY)], DAY, 7 * DAY) == [
        record_id
    ]
    assert kind.read(record_id).reminded_at == NOW
    assert kind.deciding.remind_and_expire([aged(kind, record_id, 7 * DAY)], DAY, 7 * DAY) == [
        record_id
    ]
    expired = kind.read(record_id)
    assert expired.status.value == "expired" and expired.decided_at == NOW
    other = ask(kind, "other@example.com")
    later = aged(kind, other, 8 * DAY + timedelta(hours=3))
    assert kind.deciding.remind_and_expire([later], DAY, 7 * DAY) == [other]
    events = {e.request_id: e.detail for e in kind.store.audit() if e.event.endswith("expired")}
    assert events == {record_id: {"after_days": 7.0}, other: {"after_days": 8.1}}


def test_one_sweep_goes_through_every_record_it_is_given(kind, still):
    """A decided or young record early in the list does not stop the sweep expiring the rest."""
    decided = ask(kind, "decided@example.com")
    assert kind.deciding.deny(decided, A, "no").ok
    young = aged(kind, ask(kind, "young@example.com"), timedelta(hours=1))
    old = aged(kind, ask(kind, "old@example.com"), 8 * DAY)
    assert kind.deciding.remind_and_expire([kind.read(decided), young, old], DAY, 7 * DAY) == [
        old.id
    ]
    assert kind.read(old.id).status.value == "expired"
    assert kind.read(young.id).status is kind.pending


def test_two_sweeps_of_the_same_snapshot_remind_once(kind, still):
    """Two replicas' sweeps read the same record before either reminded: one reminder."""
    record_id = kind.ask()
    snapshot = aged(kind, record_id, 2 * DAY)
    assert kind.deciding.remind_and_expire([snapshot], DAY, 7 * DAY) == [record_id]
    assert kind.deciding.remind_and_expire([snapshot], DAY, 7 * DAY) == []
    assert [e.event for e in kind.store.audit() if e.request_id == record_id].count("reminded") == 1
