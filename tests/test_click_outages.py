"""Approve clicks through the real Bolt app while the store fails under them: no decision is
lost. Every request clicked is invited exactly once, or its approver was told privately,
within seconds, that the click did not go through - and counted. What fails after the
approval was stored is finished by the sweep, which takes the request over once its lease
has expired."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest

import handlers.clicks
from bot.domain.details import InviteDetails
from bot.domain.records import Status
from bot.runtime import metrics
from bot.store.budget import StoreUnavailable
from bot.ui import answers
from tests.conftest import APPROVERS, SIGNING_SECRET, build_bot, make_settings
from tests.fakes.response_urls import ResponseUrls
from tests.fakes.tcp_proxy import TcpProxy
from tests.slack_requests import GENERAL, SlackDriver

APPROVER = APPROVERS[0]


@pytest.fixture
def hooks() -> Iterator[ResponseUrls]:
    fake = ResponseUrls()
    yield fake
    fake.close()


@pytest.fixture
def proxied(pg_url) -> Iterator[tuple[TcpProxy, str]]:
    """PostgreSQL behind a proxy that can cut its connections or stop passing new ones."""
    proxy, url = TcpProxy.route(pg_url)
    yield proxy, url
    proxy.close()


@pytest.fixture
def pg_bot(tmp_path, slack, awork, proxied):
    built = build_bot(
        make_settings(tmp_path, slack.url, INVITE_DATABASE_URL=proxied[1]), awork.handler
    )
    assert built.deps.catalog.refresh()
    yield built
    built.shutdown(timeout=5)


def ask(bot, count: int, prefix: str) -> list[str]:
    """`count` pending requests, stored as a submitted form stores them."""
    service = bot.deps.service
    return [
        service.submit(InviteDetails(email=f"{prefix}{n}@example.com"), "UREQ", GENERAL).id
        for n in range(count)
    ]


def posts_by_email(awork) -> Counter:
    return Counter(
        json.loads(call.content)["email"] for call in awork.calls("POST", "/invitations")
    )


def not_stored() -> float:
    return metrics.CLICKS_NOT_STORED.labels("approve")._value.get()


def finish_by_sweep(bot) -> None:
    """What the sweep does once the leases have run out: take over every request left
    inviting (its follow-up failed after the approval was stored) and settle it."""
    for request in bot.store.requests(Status.INVITING):
        ended = bot.store.now() - timedelta(seconds=1)
        bot.store.update(request.id, claim_until=ended, lease_until=ended)
    bot.deps.courier.sweep()


def click_all(driver: SlackDriver, ids: list[str], between=None) -> None:
    """Approve each request, from four threads at once; `between(n)` after the n-th ack."""
    acked = iter(range(1, len(ids) + 1))
    lock = threading.Lock()

    def click(request_id: str) -> None:
        response = driver.click("approve_invite", request_id, APPROVER)
        assert response.status == 200
        with lock:
            n = next(acked)
        if between is not None:
            between(n)

    threads = [
        threading.Thread(target=lambda part=ids[i::4]: [click(r) for r in part]) for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)


def test_clicks_while_connections_are_cut_lose_no_decision(pg_bot, proxied, awork, hooks):
    """Twelve Approve clicks while every database connection is cut three times: the work on
    a cut connection is done again on a fresh one, and each request is invited exactly once,
    without a second click."""
    proxy, _ = proxied
    ids = ask(pg_bot, 12, "cut")
    before, retries = not_stored(), metrics.STORE_RETRIES._value.get()
    driver = SlackDriver(pg_bot.app, SIGNING_SECRET, response_url=hooks.url)
    cuts: list[int] = []
    click_all(driver, ids, between=lambda n: cuts.append(proxy.cut()) if n in (1, 5, 9) else None)
    assert pg_bot.deps.wait_idle(20)
    finish_by_sweep(pg_bot)  # nothing is left inviting, as it happens; if it were, the sweep
    assert sum(cuts) >= 1 and metrics.STORE_RETRIES._value.get() > retries
    posts = posts_by_email(awork)
    for request_id in ids:
        request = pg_bot.store.get(request_id)
        assert request.status is Status.INVITED and posts[request.details.email] == 1, request
    assert sum(posts.values()) == len(ids)
    assert not hooks.answers and not_stored() == before


def test_clicks_while_the_database_is_down_are_answered_and_work_when_clicked_again(
    pg_bot, proxied, awork, hooks, monkeypatch
):
    """The database stops for a moment: each click in that moment is answered privately
    "that didn't go through - click again" within the decision's budget (counted); once the
    database is back, clicking again invites each person exactly once."""
    monkeypatch.setattr(handlers.clicks, "DECISION_SECONDS", 0.4)
    proxy, _ = proxied
    ids = ask(pg_bot, 3, "down")
    before = not_stored()
    driver = SlackDriver(pg_bot.app, SIGNING_SECRET, response_url=hooks.url)
    proxy.down()
    started = time.monotonic()
    click_all(driver, ids)
    told = hooks.wait_for(3)
    assert time.monotonic() - started < 3.0
    assert [answer["text"] for answer in told] == [answers.CLICK_AGAIN] * 3
    assert all(answer["response_type"] == "ephemeral" for answer in told)
    assert not_stored() - before == 3
    assert pg_bot.deps.wait_idle(5)
    proxy.up()
    deadline = time.monotonic() + 10
    while True:  # the pool reconnects on its own schedule
        try:
            pg_bot.store.now()
            break
        except StoreUnavailable:
            assert time.monotonic() < deadline, "the store never came back"
    assert all(pg_bot.store.get(r).status is Status.PENDING for r in ids)
    click_all(driver, ids)
    assert pg_bot.deps.wait_idle(10)
    assert all(pg_bot.store.get(r).status is Status.INVITED for r in ids)
    assert sorted(posts_by_email(awork).values()) == [1, 1, 1] and len(hooks.answers) == 3


# --- sqlitedict ---------------------------------------------------------------------------------


def test_a_click_the_store_could_not_take_is_answered_click_again(bot, hooks, monkeypatch):
    """A store held by other work for longer than a decision may wait: the approver hears at
    once, through the click's response_url, to click again; nothing was decided."""
    monkeypatch.setattr(handlers.clicks, "DECISION_SECONDS", 0.2)
    (request_id,) = ask(bot, 1, "held")
    before = not_stored()
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with bot.store._lock():
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    try:
        driver = SlackDriver(bot.app, SIGNING_SECRET, response_url=hooks.url)
        assert driver.click("approve_invite", request_id, APPROVER).status == 200
        (told,) = hooks.wait_for(1)
    finally:
        release.set()
        holder.join()
    assert told["text"] == answers.CLICK_AGAIN and told["replace_original"] is False
    assert not_stored() - before == 1
    assert bot.store.get(request_id).status is Status.PENDING


@pytest.mark.parametrize("delivery_lease_left", [False, True])
def test_a_failure_after_the_approval_was_stored_is_finished_by_the_sweep(
    bot, awork, hooks, monkeypatch, delivery_lease_left
):
    """The store fails right after the approval moved the request to inviting: nobody is told
    to click again (the decision stands), and once its lease has run out the sweep takes it
    over and invites once - without waiting for the delivery lease the approval took, when
    that still runs: the approval message is brought up to date once it has run out too."""
    (request_id,) = ask(bot, 1, "later")

    def store_gone(*args, **kwargs) -> None:
        raise StoreUnavailable("PostgreSQL: AdminShutdown")

    # Every write after the approval's (the delivery round's, the lease's renewal before the
    # POST) cannot be stored.
    transition = bot.store.transition

    def then_gone(*args, **kwargs):
        stored = transition(*args, **kwargs)
        for write in ("transition", "leased", "renew_or_release", "renew", "update", "release"):
            monkeypatch.setattr(bot.store, write, store_gone)
        return stored

    monkeypatch.setattr(bot.store, "transition", then_gone)
    driver = SlackDriver(bot.app, SIGNING_SECRET, response_url=hooks.url)
    assert driver.click("approve_invite", request_id, APPROVER).status == 200
    assert bot.deps.wait_idle(5)
    request = bot.store.get(request_id)
    assert request.status is Status.INVITING and request.decided_by == APPROVER
    assert not awork.calls("POST", "/invitations") and not hooks.answers
    monkeypatch.undo()
    if delivery_lease_left:
        bot.store.update(request_id, claim_until=bot.store.now() - timedelta(seconds=1))
        started = time.monotonic()
        bot.deps.courier.sweep()
        assert time.monotonic() - started < 5  # the takeover's delivery did not wait for it
        request = bot.store.get(request_id)
        assert request.status is Status.INVITED and request.needs_delivery()
        bot.store.update(request_id, lease_until=bot.store.now() - timedelta(seconds=1))
        bot.deps.courier.sweep(force=True)
    else:
        finish_by_sweep(bot)
    assert bot.store.get(request_id).status is Status.INVITED
    assert not bot.store.get(request_id).needs_delivery()
    assert len(awork.calls("POST", "/invitations")) == 1


def test_a_decisions_store_calls_are_each_held_to_an_acks_limit(bot, monkeypatch):
    """A click's decision has DECISION_SECONDS in all, each store call CALL_SECONDS at most (on
    PostgreSQL the limits of the acks' own connections, which decisions share)."""
    from bot.store import budget

    seen = []
    monkeypatch.setattr(
        bot.deps.service, "approve", lambda *a, **k: seen.append(budget._deadline.get())
    )
    (request_id,) = ask(bot, 1, "limits")
    SlackDriver(bot.app, SIGNING_SECRET).click("approve_invite", request_id, APPROVER)
    assert bot.deps.wait_idle(5)
    ((end, per_call, reruns),) = seen
    assert per_call == budget.CALL_SECONDS and end - time.monotonic() < budget.DECISION_SECONDS
    assert reruns == budget.DECISION_RERUNS
