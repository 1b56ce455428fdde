"""Time budgets for store calls, so that whoever waits for an answer gets one in time, whatever
the database does; and what a store call that could not be carried out raises.

- Every Slack request is answered under the ack's budget (`ack_budget()`, opened around the
  dispatch of each request, bot/runtime/deps.py, and in HTTP mode from the request's arrival
  around the whole answer, bot/runtime/web.py): a store call made meanwhile waits for a
  connection or a lock, and runs its statements, for at most `CALL_SECONDS` and never past
  `ACK_SECONDS` after the request arrived (the time it waited for a thread counts); then it
  raises `StoreBusy` and the person is told the bot is busy - within Slack's 3 s, whatever
  else the answer took.
- A click's decision, stored after the ack, has a budget of its own (`DECISION_SECONDS`, each
  store call within `CALL_SECONDS`, a call whose connection failed done again up to
  `DECISION_RERUNS` times where an ack's is done again once), so that a clicker whose
  decision could not be stored hears so within seconds.
- Work after the ack runs without a budget (`lifted`): it may wait for the database.

A budget is a deadline in a context variable, so it follows the call into any engine without
being passed along; an enclosing budget's earlier deadline counts.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

log = logging.getLogger(__name__)

ACK_SECONDS = 2.5  # from a Slack request's arrival, the store calls answering it must end by
CALL_SECONDS = 1.5  # one store call on the ack path: its wait for the pool, its statements
LOCK_SECONDS = 0.5  # a lock another session holds, waited for on the ack path (at most half)
DECISION_SECONDS = 5.0  # storing a click's decision, after its ack
DECISION_RERUNS = 3  # a decision's connection cut again (a failover) is retried this often
SPENT = 0.01  # seconds left below which a store call is not started at all
POLL = 0.005  # seconds between attempts at a file lock that cannot be waited for

# (when the budget ends, on the monotonic clock; the most one call may take, or None; how often
# a call whose connection failed is done again on a fresh one)
_deadline: ContextVar[tuple[float, float | None, int] | None] = ContextVar(
    "store_budget", default=None
)


class StoreUnavailable(ConnectionError):
    """The store could not carry out the call: the database did not answer, or its connection
    failed again on a fresh one. Nothing the caller may count on was stored."""


class StoreBusy(StoreUnavailable):
    """The call's time budget ran out (waiting for a connection, a lock or a statement): it was
    given up, and what it was to write was not written."""


class StoreLocked(StoreBusy):
    """Busy: a lock held by another session was not had within the call's lock wait
    (LOCK_SECONDS); nothing was written, and the same write without what needs that lock (an
    audit line) may still be made."""


@contextlib.contextmanager
def budget(seconds: float, per_call: float | None = None, reruns: int = 1) -> Iterator[None]:
    """Store calls in this block finish within `seconds` in all, each within `per_call`, or
    raise `StoreBusy`; one whose connection failed is done again on a fresh one up to `reruns`
    times, as far as the time left allows (an enclosing budget's fewer count)."""
    end = time.monotonic() + seconds
    outer = _deadline.get()
    if outer is not None:
        end = min(end, outer[0])
        per_call = outer[1] if per_call is None else min(per_call, outer[1] or per_call)
        reruns = min(reruns, outer[2])
    token = _deadline.set((end, per_call, reruns))
    try:
        yield
    finally:
        _deadline.reset(token)


def ack_budget(since: float | None = None) -> contextlib.AbstractContextManager[None]:
    """The budget of the store calls made while one Slack request is answered, counted from
    `since` (the monotonic time the request arrived whole; default: now). The HTTP server
    opens one from the arrival around the whole answer, so the time a request waited for a
    thread is spent: a burst larger than the server's threads, on a store that does not
    answer, is answered "busy" in time instead of wave after wave."""
    waited = 0.0 if since is None else max(0.0, time.monotonic() - since)
    return budget(ACK_SECONDS - waited, per_call=CALL_SECONDS)


@contextlib.contextmanager
def lifted() -> Iterator[None]:
    """No budget in this block (work after the ack, which a copied context would otherwise
    bring along with the ack's deadline)."""
    token = _deadline.set(None)
    try:
        yield
    finally:
        _deadline.reset(token)


def call_lifted(work: Callable[..., Any], *args: Any) -> Any:
    """`work(*args)` without a budget (for `Context.run`)."""
    with lifted():
        return work(*args)


def active() -> bool:
    """Whether a budget applies here."""
    return _deadline.get() is not None


def reruns(unbudgeted: int) -> int:
    """How often a store call whose connection failed is done again here: the budget's, or
    `unbudgeted` without one."""
    current = _deadline.get()
    return unbudgeted if current is None else current[2]


def left() -> float | None:
    """Seconds the store call about to start may take; None without a budget. `StoreBusy` when
    the budget is spent."""
    current = _deadline.get()
    if current is None:
        return None
    deadline, per_call, _ = current
    seconds = deadline - time.monotonic()
    if seconds < SPENT:
        raise StoreBusy("the store's time budget is spent")
    return seconds if per_call is None else min(seconds, per_call)


def acquire(lock: threading.Lock | threading.RLock) -> None:
    """Take `lock`, waiting at most the time left; `StoreBusy` if it is not had by then."""
    seconds = left()
    if not lock.acquire(timeout=-1 if seconds is None else seconds):
        raise StoreBusy("the store is locked by other work")


def flock(fd: int) -> None:
    """An exclusive `flock` on `fd` (another process's store), waiting at most the time left."""
    if left() is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if left() is not None:  # raises StoreBusy once spent
                time.sleep(POLL)


def later(write: Callable[[Any], None], item: Any) -> None:
    """Write `item` after the answer, without the budget: for what records a change that is
    stored already (its audit entry), so that a spent budget neither loses it nor makes the
    person hear "not stored" about what was."""

    def run() -> None:
        try:
            write(item)
        except Exception as exc:
            log.error("a write left until after the answer failed: %s", type(exc).__name__)

    threading.Thread(target=run, name="store-later", daemon=True).start()
