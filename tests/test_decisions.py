"""One decision path for single requests and batches (bot/services/decisions.py): only
approvers decide, a refusal changes nothing, a record is decided once however many clicks,
and reminders and expiry are decided once; each for both kinds. And end to end: "Approve all"
clicked by someone who is no approver."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from bot.domain.batches import BatchStatus
from bot.domain.details import InviteDetails
from bot.domain.people import Person
from bot.domain.records import Status
from bot.services.batches import BatchService
from bot.services.decisions import Refusal
from bot.services.invites import InviteService
from bot.store import SqliteStore
from tests.conftest import APPROVERS
from tests.fakes.services import in_process_service
from tests.test_bulk_scenarios import ask_inline, wait_batch

A, B = "UAPP1", "UAPP2"


class Kind:
    """A request or a batch, asked for and decided through its own service."""

    def __init__(self, name: str, service: InviteService, batches: BatchService) -> None:
        self.name = name
        self.store = service.store
        self.deciding = service if name == "request" else batches
        self.batches = batches
        self.service = service
        self.pending = Status.PENDING if name == "request" else BatchStatus.PENDING
        self.denied = Status.DENIED if name == "request" else BatchStatus.DENIED
        self.claimed = Status.INVITING if name == "request" else BatchStatus.RUNNING

    def ask(self) -> str:
        if self.name == "request":
            return self.service.submit(InviteDetails(email="ada@example.com"), "UREQ", None).id
        prepared = self.batches.prepare([Person("a@x.com"), Person("b@x.com")])
        return self.batches.submit(prepared, "UREQ", None).id

    def read(self, record_id: str):
        return self.store.read(record_id)


@pytest.fixture(params=["request", "batch"])
def kind(request, tmp_path):
    store = SqliteStore(str(tmp_path / "db.sqlite"))
    service = in_process_service(store, {A, B})
    yield Kind(request.param, service, BatchService(service))
    store.close()


def test_someone_who_is_no_approver_is_refused_and_nothing_changes(kind):
    """Approve (also with own_allowed, as INVITE_SELF_APPROVE calls it), can-deny and deny by
    the requester or a stranger: NOT_APPROVER, the record as it was, nothing in the audit."""
    record_id = kind.ask()
    before, events = kind.read(record_id), len(kind.store.audit())
    for user in ("UREQ", "USTRANGER"):
        decisions = [
            kind.deciding.approve(record_id, user),
            kind.deciding.approve(record_id, user, own_allowed=True),
            kind.deciding.can_deny(record_id, user),
            kind.deciding.deny(record_id, user, "no"),
        ]
        assert [d.refusal for d in decisions] == [Refusal.NOT_APPROVER] * 4
    assert kind.read(record_id) == before and len(kind.store.audit()) == events


def test_an_unknown_id_is_not_found(kind):
    """A crafted click with an id that does not exist is NOT_FOUND, whoever clicks."""
    missing = "inv-000000000000" if kind.name == "request" else "bat-000000000000"
    for decide in (kind.deciding.approve, kind.deciding.can_deny):
        decision = decide(missing, A)
        assert decision.refusal is Refusal.NOT_FOUND and decision.request is None
    assert kind.deciding.deny(missing, A, "no").refusal is Refusal.NOT_FOUND


def test_a_denied_record_stays_denied_with_its_reason_cleaned(kind):
    """A deny records who, when and the reason (control characters taken out, as for the
    audit); afterwards neither an approval nor a second deny changes anything."""
    record_id = kind.ask()
    assert kind.deciding.can_deny(record_id, A).ok
    denied = kind.deciding.deny(record_id, A, "not\x00 now\x1b[2J")
    assert denied.ok and denied.request.status is kind.denied
    assert denied.request.decided_by == A and denied.request.decided_at is not None
    assert denied.request.deny_reason == "not now[2J"
    for decision in (
        kind.deciding.approve(record_id, B),
        kind.deciding.can_deny(record_id, B),
        kind.deciding.deny(record_id, B, "again"),
    ):
        assert decision.refusal is Refusal.ALREADY_DECIDED
    after = kind.read(record_id)
    assert (
        after.status is kind.denied and after.decided_by == A and after.deny_reason == "not now[2J"
    )
    audited = [e for e in kind.store.audit() if e.event.endswith("denied")]
    assert [(e.actor, e.detail["reason"]) for e in audited] == [(A, "not now[2J")]


def test_concurrent_approvals_and_denials_decide_once(kind):
    """Five approvals and five denials at once: exactly one of them decides, the others are
    told it was decided already, and the record shows that one decision."""
    record_id = kind.ask()
    barrier = threading.Barrier(10)
    results = []

    def click(i: int) -> None:
        barrier.wait()
        if i % 2:
            results.append(("approve", kind.deciding.approve(record_id, (A, B)[i % 4 // 2])))
        else:
            results.append(("deny", kind.deciding.deny(record_id, (A, B)[i % 4 // 2], "no")))

    threads = [threading.Thread(target=click, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [(how, winner)] = [(how, d) for how, d in results if d.ok]
    assert all(d.refusal is Refusal.ALREADY_DECIDED for _, d in results if not d.ok)
    stored = kind.read(record_id)
    assert stored.status is (kind.claimed if how == "approve" else kind.denied)
    assert (
        stored.decided_by == winner.request.decided_by and stored.version == winner.request.version
    )


def test_a_deny_checked_before_an_approval_landed_changes_nothing(kind, monkeypatch):
    """The deny's check passed, then an approval claimed the record before the deny was
    written: the deny is refused by compare-and-set, and the approval stands."""
    record_id = kind.ask()
    decisions = kind.deciding.decisions
    check = decisions.can_deny

    def check_then_approve(record_id: str, approver_id: str):
        checked = check(record_id, approver_id)
        assert kind.deciding.approve(record_id, B).ok
        return checked

    monkeypatch.setattr(decisions, "can_deny", check_then_approve)
    refused = kind.deciding.deny(record_id, A, "no")
    assert refused.refusal is Refusal.ALREADY_DECIDED
    stored = kind.read(record_id)
    assert refused.request == stored  # the record as stored (the approval), for the message
    assert stored.status is kind.claimed and stored.decided_by == B and stored.deny_reason is None


def test_an_approval_that_completes_takes_the_work_lease(kind):
    """The completing approval claims the work for this process in the same write: a claim
    id, this instance as holder, a lease that runs on the store's clock."""
    record_id = kind.ask()
    decision = kind.deciding.approve(record_id, A)
    claimed = decision.request
    assert decision.ok and claimed.status is kind.claimed and claimed.claim_id
    assert claimed.claimed_by == kind.service.instance_id
    assert claimed.claim_until > kind.store.now() + timedelta(seconds=10)
    assert claimed.approvals == [A] and claimed.decided_by == A


def test_reminded_once_then_expired_once(kind):
    """Past remind_after: one reminder (stored); past expire_after: expired, once; then no
    approval decides it."""
    record_id = kind.ask()
    day = timedelta(days=1)
    created = kind.read(record_id).created_at
    kind.store.update(record_id, created_at=created - 2 * day)
    assert kind.deciding.remind_and_expire([kind.read(record_id)], day, 7 * day) == [record_id]
    assert kind.deciding.remind_and_expire([kind.read(record_id)], day, 7 * day) == []
    assert kind.read(record_id).reminded_at is not None
    kind.store.update(record_id, created_at=created - 8 * day)
    assert kind.deciding.remind_and_expire([kind.read(record_id)], day, 7 * day) == [record_id]
    assert kind.deciding.remind_and_expire([kind.read(record_id)], day, 7 * day) == []
    assert kind.read(record_id).status.value == "expired"
    assert kind.deciding.approve(record_id, A).refusal is Refusal.ALREADY_DECIDED
    events = [e.event for e in kind.store.audit() if e.request_id == record_id]
    assert events.count("reminded") == 1 and sum(e.endswith("expired") for e in events) == 1


# --- end to end ---------------------------------------------------------------------------------


def test_approve_all_by_someone_who_is_no_approver_is_refused_privately(driver, slack, bot, awork):
    """ "Approve all" clicked by a user who is no approver: they are told privately that only
    approvers decide; the batch stays pending without an approval, and nobody is invited.
    An approver's click afterwards still runs it."""
    batch_id = ask_inline(driver, slack, "a@x.com b@x.com")
    driver.click("approve_invite", batch_id, "USTRANGER")
    [told] = slack.wait_for("chat.postEphemeral", where=lambda c: c.args["user"] == "USTRANGER")
    assert "Only approvers" in told.args["text"]
    batch = bot.store.get_batch(batch_id)
    assert batch.status is BatchStatus.PENDING and batch.approvals == [] and batch.run == 0
    assert batch.decided_by is None and batch.claim_id is None
    assert not [e for e in bot.store.audit() if e.event == "batch_approved"]
    assert awork.calls("POST", "/invitations") == []
    driver.click("approve_invite", batch_id, APPROVERS[0])
    wait_batch(bot, batch_id, BatchStatus.DONE)
    emails = sorted(json.loads(r.content)["email"] for r in awork.calls("POST", "/invitations"))
    assert emails == ["a@x.com", "b@x.com"]
