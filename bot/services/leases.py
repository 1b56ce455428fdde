"""This process as a holder of work leases.

Work in progress on a record (inviting, joining, running a batch) is held by a lease in the
store, on the store's clock, never judged by a process id: `claim` is what a compare-and-set
takes it with, `holding` renews it right before each awork request leaves, and another
instance takes over only after it expired. `tracked` counts what this process is working on
right now, for a graceful stop and for the sweep, which takes over this process's own expired
leases only when nobody works on them here any more (a thread that died). `alarm` brings the
sweep back early when work set a lease to run out soon on purpose (an unsure invitation's next
look): the sweep finds it by the due index then, here or on any other instance.
"""

from __future__ import annotations

import heapq
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bot.awork.client import AworkClient
from bot.awork.ratelimit import Ride, RideFailed
from bot.store import Store


def new_instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class LeaseLost(RuntimeError):
    """This instance's work lease on a record ran out or was taken over: stop, send nothing."""


class Alarm:
    """When the sweep is next wanted, sooner than its usual round: `set(seconds)` asks for
    it that much later; `wait(longest)` returns at the earliest time asked for that has not
    passed yet, after `longest` seconds at most, or when `ring` is called (stopping)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._times: list[float] = []  # a heap
        self._rung = False
        self._changed = threading.Condition()

    def set(self, seconds: float) -> None:
        with self._changed:
            heapq.heappush(self._times, self._clock() + max(0.0, seconds))
            self._changed.notify_all()

    def ring(self) -> None:
        with self._changed:
            self._rung = True
            self._changed.notify_all()

    def wait(self, longest: float) -> None:
        with self._changed:
            end = self._clock() + longest
            while not self._rung:
                due = min(end, self._times[0]) if self._times else end
                left = due - self._clock()
                if left <= 0:
                    break
                self._changed.wait(left)
            while self._times and self._times[0] <= self._clock():
                heapq.heappop(self._times)
            self._rung = False


class Work:
    def __init__(
        self,
        store: Store,
        awork: AworkClient,
        instance_id: str | None = None,
        lease_margin: float = 30.0,
    ) -> None:
        self.store = store
        self.awork = awork
        self.instance_id = instance_id or new_instance_id()
        # A work lease outlives the longest one awork request can take after it is sent.
        self.lease = awork.longest_attempt() + lease_margin
        self._in_flight = 0
        self._with_renewal = threading.local()  # what this thread's next renewal also writes
        self._active: set[str] = set()
        self._idle = threading.Condition()
        self.alarm = Alarm()

    @property
    def claim(self) -> tuple[str, float]:
        """The lease a compare-and-set takes for this process (`Store.transition(claim=...)`)."""
        return self.instance_id, self.lease

    @contextmanager
    def holding(self, record_id: str, claim_id: str | None) -> Iterator[None]:
        """Renew the lease of the claim `claim_id` on `record_id` right before each awork
        request leaves - taking its rate-limit slot in the same write where the store can
        (`Ride`); a lease that cannot be renewed (expired and taken over, a later claim, or the
        store unreachable) stops the request from being sent."""

        def renew(ride: Ride | None) -> None:
            pending = getattr(self._with_renewal, "changes", None)
            self._with_renewal.changes = None
            mine = pending is not None and pending[:2] == (record_id, claim_id)
            changes, also = (pending[2], pending[3]) if mine else ({}, None)
            try:
                held = self.store.renew(
                    record_id, claim_id, self.lease, also=also, ride=ride, **changes
                )
            except Exception as exc:
                if ride is not None:  # the store away: the slot on its own, then again
                    self._with_renewal.changes = pending
                    raise RideFailed(f"{record_id}: could not renew the lease") from exc
                raise LeaseLost(f"{record_id}: could not renew the lease") from exc
            if not held:
                raise LeaseLost(f"{record_id}: the lease is held by another instance")

        with self.awork.before_each_send(renew):
            try:
                yield
            finally:
                self._with_renewal.changes = None

    def with_next_renewal(
        self,
        record_id: str,
        claim_id: str | None,
        also: Callable[[Any], dict[str, Any]] | None = None,
        **changes: object,
    ) -> None:
        """Write `changes` - and `also(the record as stored)` - (with any noted before them)
        with this thread's next renewal of `record_id`'s claim `claim_id` (`holding`), right
        before its next awork request leaves: in the same compare-and-set, or not at all when
        the lease is lost - and then that request is not sent. Not written by a renewal of
        another record or claim, nor once this thread's work under a claim has ended."""
        pending = getattr(self._with_renewal, "changes", None)
        mine = pending is not None and pending[:2] == (record_id, claim_id)
        noted, before = (pending[2], pending[3]) if mine else ({}, None)
        both = also if before is None else (lambda r: {**before(r), **(also(r) if also else {})})
        self._with_renewal.changes = (record_id, claim_id, {**noted, **changes}, both)

    @contextmanager
    def tracked(self, record_id: str) -> Iterator[None]:
        """Work on `record_id` in this process: counted for a graceful stop, and known to the
        sweep (`is_active`)."""
        with self._idle:
            self._in_flight += 1
            self._active.add(record_id)
        try:
            yield
        finally:
            with self._idle:
                self._in_flight -= 1
                self._active.discard(record_id)
                self._idle.notify_all()

    def is_active(self, record_id: str) -> bool:
        """Whether this process is working on `record_id` right now."""
        with self._idle:
            return record_id in self._active

    def wait_idle(self, timeout: float) -> bool:
        """Wait (bounded) for in-flight work to finish; True if none is left."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout)
