"""The awork transport's rate-limit slot riding on the lease renewal before a request
(bot/awork/ratelimit.py): taken by that write when it can be, waited for and taken on its own
when the limit has no room, never taken when the lease is lost."""

from __future__ import annotations

import httpx
import pytest

from bot.awork.ratelimit import RateLimiter, RateLimitTransport, Ride, RideFailed, before_send


class RidingLimiter(RateLimiter):
    """A limiter whose slots ride on the hook's write: the hook answers the ride."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[object] = []

    def ride(self) -> Ride:
        return Ride("(SELECT 1)", {}, lambda: self.events.append("carried"))

    def acquire(self) -> list[float]:
        self.events.append("acquire")
        return [0.0]

    def done(self, cell: object) -> None:
        self.events.append(("done", cell))


def send(limiter: RateLimiter, hook) -> list[str]:
    sent: list[str] = []

    def awork(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(200, json={})

    token = before_send.set(hook)
    try:
        with httpx.Client(transport=RateLimitTransport(httpx.MockTransport(awork), limiter)) as c:
            c.post("https://api.awork.com/api/v1/invitations", json={})
    finally:
        before_send.reset(token)
    return sent


def test_a_slot_taken_by_the_renewal_is_used_and_not_taken_again():
    """The renewal's write answers the ride with a slot: the request leaves on it, with no
    slot of its own and no second renewal, and the slot is told the answer came."""
    limiter = RidingLimiter()
    calls: list[object] = []

    def hook(ride: Ride | None) -> None:
        calls.append(ride)
        ride.answered(7)

    assert send(limiter, hook) == ["/api/v1/invitations"]
    assert len(calls) == 1 and limiter.events == ["carried", ("done", 7)]


def test_no_room_with_the_renewal_waits_for_a_slot_and_renews_again_before_sending():
    """The limit had no room when the renewal was written: the slot is waited for as without
    a ride, and the lease renewed once more right before the request leaves."""
    limiter = RidingLimiter()
    calls: list[object] = []

    def hook(ride: Ride | None) -> None:
        calls.append(ride)
        if ride is not None:
            ride.answered(None)

    assert send(limiter, hook) == ["/api/v1/invitations"]
    assert isinstance(calls[0], Ride) and calls[1:] == [None]
    assert limiter.events == ["carried", "acquire", ("done", [0.0])]


def test_a_lost_lease_sends_nothing_and_takes_no_slot():
    """The renewal finds the lease lost: the request is not sent and no slot is taken."""
    limiter = RidingLimiter()

    def hook(ride: Ride | None) -> None:
        raise RuntimeError("lease lost")

    with pytest.raises(RuntimeError):
        send(limiter, hook)
    assert limiter.events == []


def test_a_limiter_in_memory_takes_its_slot_first_and_the_renewal_follows():
    """A limiter of this process's own offers no ride: its slot first, then the renewal."""
    events: list[object] = []
    limiter = RateLimiter()
    assert limiter.ride() is None
    assert send(limiter, lambda ride: events.append(ride)) == ["/api/v1/invitations"]
    assert events == [None] and len(limiter._calls) == 1


def test_a_renewal_that_failed_with_its_ride_takes_the_slot_on_its_own_and_renews_again():
    """The write carrying the ride failed (the store away, not the lease refused): the slot
    is taken as without a ride - a limiter that cannot take it is a request not sent - and the
    lease renewed again before the request leaves."""
    limiter = RidingLimiter()
    calls: list[object] = []

    def hook(ride: Ride | None) -> None:
        calls.append(ride)
        if ride is not None:
            raise RideFailed("the store is away")

    assert send(limiter, hook) == ["/api/v1/invitations"]
    assert isinstance(calls[0], Ride) and calls[1:] == [None]
    assert limiter.events == ["acquire", ("done", [0.0])]
