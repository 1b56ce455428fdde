"""The sweep takes over work whose lease ran out - but never this process's own work while it
is still running here: an invitation, an acceptance or a batch's run, each held up in awork
while its lease runs out, is left to the thread doing it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from bot.domain.batches import BatchStatus
from bot.domain.details import InviteDetails
from bot.domain.people import Person
from bot.domain.records import InviteRequest, Status
from bot.runtime.app import Bot
from tests.conftest import APPROVERS, build_bot
from tests.fakes.awork import FakeAwork

APPROVER = APPROVERS[0]


class Gate:
    """The fake awork, but the first POST to a path ending in `path` waits until released
    (`arrived` says it is held)."""

    def __init__(self, awork: FakeAwork, path: str) -> None:
        self.awork = awork
        self.path = path
        self.arrived = threading.Event()
        self.release = threading.Event()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        held = request.method == "POST" and request.url.path.endswith(self.path)
        if held and not self.arrived.is_set():
            self.arrived.set()
            self.release.wait(10)
        return self.awork.handler(request)


@pytest.fixture
def gate(awork) -> Gate:
    return Gate(awork, "/invitations")


@pytest.fixture
def gated(settings, gate) -> Iterator[Bot]:
    built = build_bot(settings, gate)
    assert built.deps.catalog.refresh()
    yield built
    gate.release.set()
    built.shutdown(timeout=5)


def run_out(bot: Bot, record_id: str) -> None:
    """The lease on `record_id` runs out (its holder is slow): from now on only the check for
    this process's own running work keeps the sweep off it."""
    bot.store.update(record_id, claim_until=bot.store.now() - timedelta(seconds=1))
    assert bot.store.read(record_id).claim_until < bot.store.now()


def in_thread(work, *args) -> threading.Thread:
    thread = threading.Thread(target=work, args=args, daemon=True)
    thread.start()
    return thread


def approved(bot: Bot, email: str = "ada@example.com") -> str:
    service = bot.deps.service
    request = service.submit(InviteDetails(email=email), "UREQ", None)
    assert service.approve(request.id, APPROVER).ok
    return request.id


def recovering(bot: Bot) -> list[str]:
    return [e.event for e in bot.store.audit() if e.event.endswith("recovering")]


def test_the_sweep_leaves_an_invitation_this_process_is_sending(gated, gate, awork):
    """The POST is on its way and the lease runs out meanwhile: the sweep does not take the
    request over (which would look in awork, find nobody yet, and POST a second time)."""
    service = gated.deps.service
    request_id = approved(gated)
    claim = gated.store.get(request_id).claim_id
    worker = in_thread(service.invite, request_id, claim)
    assert gate.arrived.wait(5)
    run_out(gated, request_id)
    gated.deps.courier.sweep()
    assert recovering(gated) == [] and gated.store.get(request_id).claim_id == claim
    gate.release.set()
    worker.join(5)
    request = gated.store.get(request_id)
    assert request.status is Status.INVITED and request.claim_id == claim
    assert len(awork.calls("POST", "/invitations")) == 1 and len(awork.invitations) == 1


def test_the_sweep_leaves_an_acceptance_this_process_is_making(settings, awork):
    """awork is accepting the code and the lease runs out meanwhile: the sweep does not settle
    the acceptance as failed (clickable again) under the invitee, who joins."""
    gate = Gate(awork, "/invitations/accept")
    bot = build_bot(settings, gate)
    try:
        assert bot.deps.catalog.refresh()
        service = bot.deps.service
        request_id = approved(bot)
        bot.store.update(request_id, invitee_slack_id="UADA")
        invited = service.invite(request_id, bot.store.get(request_id).claim_id)
        assert invited.status is Status.INVITED
        accepting = in_thread(service.accept, request_id, "UADA")
        assert gate.arrived.wait(5)
        run_out(bot, request_id)
        bot.deps.courier.sweep()
        assert bot.store.get(request_id).status is Status.JOINING
        gate.release.set()
        accepting.join(5)
        assert bot.store.get(request_id).status is Status.JOINED
        assert len(awork.calls("POST", "/invitations/accept")) == 1
    finally:
        gate.release.set()
        bot.shutdown(timeout=5)


def test_the_sweep_leaves_a_batch_this_process_is_running(gated, gate, awork):
    """A run whose member's POST is held and whose lease runs out: the sweep does not claim the
    run for a second runner; the run finishes under its own claim, one POST each."""
    batches = gated.deps.batches
    people = [Person(f"p{i}@example.com") for i in range(3)]
    batch = batches.submit(batches.prepare(people), "UREQ", None)
    decision = batches.approve(batch.id, APPROVER)
    assert decision.ok
    claim = decision.request.claim_id
    runner = in_thread(batches.run, batch.id, claim)
    assert gate.arrived.wait(5)
    run_out(gated, batch.id)
    gated.deps.courier.sweep()
    assert recovering(gated) == [] and gated.store.get_batch(batch.id).claim_id == claim
    gate.release.set()
    runner.join(5)
    done = gated.store.get_batch(batch.id)
    assert done.status is BatchStatus.DONE and done.claim_id == claim
    assert len(awork.calls("POST", "/invitations")) == 3


def test_a_takeover_before_the_renewal_finds_the_invitees_account(bot, slack, awork):
    """The holder crashed after the approval and before its POST's renewal, which would have
    stored the invitee's Slack account: the takeover looks it up, so awork skips its email and
    the link goes to the invitee's DM."""
    slack.members["ada@example.com"] = "UADA"
    request_id = approved(bot)  # approved, never sent: the holder is gone
    assert bot.store.get(request_id).invitee_slack_id is None
    run_out(bot, request_id)
    bot.deps.courier.sweep(force=True)
    assert bot.deps.wait_idle(10)
    request = bot.store.get(request_id)
    assert request.status is Status.INVITED and request.invitee_slack_id == "UADA"
    [post] = awork.calls("POST", "/invitations")
    assert json.loads(post.content)["skipSendingEmail"] is True
    assert slack.wait_for("chat.postMessage", where=lambda c: c.args["channel"] == "DUADA")


def test_a_takeover_asks_slack_for_the_account_only_when_it_has_taken_a_request_over(bot):
    """The lookup comes after the takeover's compare-and-set (on the store's clock): none
    while the lease runs, none for a batch's member (its batch looked it up), one otherwise."""
    inviting, asked = bot.deps.service.inviting, []

    def find(email: str) -> None:
        asked.append(email)

    running = bot.store.get(approved(bot, "run@example.com"))  # its lease runs
    assert inviting.recover(running, find) is None and asked == []
    member = bot.store.add(
        InviteRequest(
            requester_id="UREQ",
            details=InviteDetails(email="member@example.com"),
            status=Status.INVITING,
            batch_id="bat-1",
            claim_id="gone",
            claimed_by="gone:1",
            claim_until=bot.store.now() - timedelta(seconds=1),
        )
    )
    assert inviting.recover(member, find) is not None and asked == []
    lapsed = approved(bot, "lapsed@example.com")
    run_out(bot, lapsed)
    assert inviting.recover(bot.store.get(lapsed), find) is not None
    assert asked == ["lapsed@example.com"]
