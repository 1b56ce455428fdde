"""awork's per-workspace rate limit, kept on our side: the `RateLimiter` and the transport
that takes a slot before each attempt."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import httpx

from bot.awork.errors import announced_wait
from bot.runtime import metrics

log = logging.getLogger(__name__)


class Ride:
    """A rate-limit slot taken by another write to the same database, in that write's statement
    (`RateLimiter.ride`): the work lease's renewal right before a request leaves carries it, so
    slot and renewal are one round trip. `sql` is a scalar subquery answering the slot's id, or
    NULL when the limit has no room now; `params` are its values. `slot` is its answer once the
    write that carried it was made; None when that write was not made (the lease was lost) or
    there was no room - then the slot is waited for and taken on its own, as without a ride."""

    def __init__(self, sql: str, params: dict[str, Any], carried: Callable[[], None]) -> None:
        self.sql = sql
        self.params = params
        self._carried = carried
        self.slot: Any = None

    def answered(self, slot: Any) -> None:
        """The write that carried the ride was made; `slot` is the subquery's answer."""
        self.slot = slot
        self._carried()


class RideFailed(Exception):
    """The write that was to take a ride's slot failed - the store away, not the lease
    refused: the slot is taken as without a ride (a limiter whose database is away is a
    request not sent, retried as any), and the lease renewed after it."""


# Called right before a request leaves for awork, with its rate-limit slot: the invite service
# renews its lease there, and a lost lease stops the call from being sent. Given a `Ride`, the
# renewal takes the slot in the same write; given None, the slot is taken already.
before_send: ContextVar[Callable[[Ride | None], None] | None] = ContextVar(
    "before_send", default=None
)

# The longest pause awork's headers can impose on every caller.
MAX_PAUSE = 30.0


class RateLimiter:
    """Keeps the bot's calls inside awork's per-workspace limits (50/s and 1000/min by default),
    shared by every thread of the process, so a bulk run does not earn itself 429s.

    A sliding window over the last calls, each counted at the moment its answer came back
    (awork has certainly seen it by then, so jitter on the way cannot squeeze a 51st call into
    awork's second), or `cap` seconds after it was sent when awork is slow to answer. A call in
    flight counts at its latest possible time. `cap` is a second: on a busy machine a call took
    more than the earlier 0.25 s from its slot to awork, and three replicas on two cores let 51-59
    calls into one second (bench/replicas.py). awork's own word wins: a 429, or
    `ratelimit-remaining: 0`, pauses all calls until its `ratelimit-reset`.

    `clock` (monotonic seconds) and `sleep` are time's own unless a test passes a fake clock's."""

    def __init__(
        self,
        per_second: int = 50,
        per_minute: int = 1000,
        cap: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limits = [
            (count, window)
            for count, window in ((per_second, 1.0), (per_minute, 60.0))
            if count > 0
        ]
        self.cap = cap
        self._clock = clock
        self._sleep = sleep
        # [counted-at time] cells, oldest first; a cell is mutable while its call is in flight.
        self._calls: deque[list[float]] = deque(maxlen=max((c for c, _ in self.limits), default=1))
        self._paused_until = 0.0
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds spent waiting, all threads together (for benchmarks)

    def acquire(self) -> list[float]:
        """Wait for a slot and take it; hand the result to `done` when the answer is in."""
        while True:
            with self._lock:
                now = self._clock()
                wait = self._paused_until - now
                for count, window in self.limits:
                    recent = sorted(cell[0] for cell in self._calls if cell[0] > now - window)
                    if len(recent) >= count:
                        # Wait until enough of them have left the window.
                        wait = max(wait, recent[len(recent) - count] + window - now)
                if wait <= 0:
                    cell = [now + self.cap]  # in flight: the latest it may count
                    self._calls.append(cell)
                    return cell
                self.waited += wait
            self._sleep(wait)

    def ride(self) -> Ride | None:
        """A slot for another write to take (`Ride`); None here: this limiter's slots are in
        this process's memory, taken without a round trip."""
        return None

    def done(self, cell: list[float]) -> None:
        """The call's answer arrived (or it failed): it counts from now, or from `cap` after
        it was sent if that is earlier."""
        with self._lock:
            cell[0] = min(cell[0], self._clock())

    def pause(self, seconds: float) -> None:
        """awork said to wait: nobody calls before then."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def observe(self, response: httpx.Response) -> None:
        """Follow awork's rate-limit headers on any answer."""
        if response.status_code == 429:
            self.pause(min(MAX_PAUSE, announced_wait(response.headers) or 1.0))
            return
        for prefix in ("ratelimit", "x-ratelimit"):
            remaining = response.headers.get(f"{prefix}-remaining")
            if remaining is not None and remaining.strip() in ("0", "0.0"):
                reset = announced_wait(response.headers)
                if reset:
                    self.pause(min(MAX_PAUSE, reset))
                return


class RateLimitTransport(httpx.BaseTransport):
    """Takes a `RateLimiter` slot before each attempt and tells it what awork answered. Where a
    `before_send` hook renews a lease, a shared limiter's slot rides on that renewal (`Ride`)."""

    def __init__(self, inner: httpx.BaseTransport, limiter: RateLimiter) -> None:
        self.inner = inner
        self.limiter = limiter

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        hook = before_send.get()
        slot = self._ridden(hook) if hook is not None else None
        renew = hook if slot is None else None  # renewed with the slot, or after it is taken
        if slot is None:
            try:
                slot = self.limiter.acquire()
            except Exception as exc:  # a shared limiter whose database is away: nothing sent
                log.warning("awork rate limiter unavailable: %s", type(exc).__name__)
                raise httpx.ConnectError("rate limiter unavailable", request=request) from exc
        try:
            if renew is not None:
                renew(None)
            response = self._counted(request)
        finally:
            try:
                self.limiter.done(slot)
            except Exception as exc:  # never lose awork's answer over the bookkeeping
                log.warning("awork rate limiter not updated: %s", type(exc).__name__)
        try:
            self.limiter.observe(response)
        except Exception as exc:
            log.warning("awork rate limiter not updated: %s", type(exc).__name__)
        return response

    def _ridden(self, hook: Callable[[Ride | None], None]) -> Any:
        """The slot the hook's renewal took (`Ride`); None when the limiter offers no ride,
        the limit had no room or the write failed (`RideFailed`). A lost lease raises: nothing
        is sent, and the ride took no slot."""
        ride = self.limiter.ride()
        if ride is None:
            return None
        try:
            hook(ride)
        except RideFailed:
            return None
        return ride.slot

    def _counted(self, request: httpx.Request) -> httpx.Response:
        """Send, counting the call by status and timing it (GET /metrics)."""
        endpoint = metrics.awork_endpoint(request.url.path)
        started = time.monotonic()
        try:
            response = self.inner.handle_request(request)
        except Exception:
            metrics.AWORK_CALLS.labels(request.method, endpoint, "error").inc()
            raise
        metrics.AWORK_CALLS.labels(request.method, endpoint, str(response.status_code)).inc()
        metrics.AWORK_SECONDS.labels(endpoint).observe(time.monotonic() - started)
        if response.status_code == 429:
            metrics.AWORK_RATE_LIMITED.inc()
        return response

    def close(self) -> None:
        self.inner.close()
