"""awork's rate limit for every replica together: the calls are counted in PostgreSQL, under an
advisory lock and on the database's clock - one statement a call (the function
`invite_take_slot`, bot/store/postgres_schema.py), which also says when the answers to this
replica's earlier calls came (`done`). A call made under a work lease takes its slot in the
statement that renews the lease (`ride`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import psycopg

from bot.awork.ratelimit import RateLimiter, Ride
from bot.store.postgres_schema import RATE_LOCK

Borrow = Callable[[], AbstractContextManager[psycopg.Connection]]
TAKE_ARGUMENTS = (
    "%(slot_lock)s, %(slot_counts)s, %(slot_windows)s, %(slot_cap)s, %(slot_prune)s,"
    " %(slot_done)s, %(slot_ago)s"
)


class SharedRateLimiter(RateLimiter):
    """awork's per-workspace limit for every replica together (see `RateLimiter` for how a call
    is counted). `connection` lends a pooled connection of the store."""

    def __init__(
        self,
        connection: Borrow,
        per_second: int = 50,
        per_minute: int = 1000,
        cap: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(per_second, per_minute, cap=cap, sleep=sleep)
        self._conn = connection
        self._taken = 0
        # Calls answered since the last slot was taken: (slot id, monotonic time of the answer).
        self._answered: list[tuple[int, float]] = []
        self._answered_lock = threading.Lock()

    def acquire(self) -> Any:
        while True:
            slot, wait = self.take()
            if slot is not None:
                return slot
            self.waited += wait
            self._sleep(min(wait, 1.0))

    def take(self) -> tuple[int | None, float]:
        """Take a slot if every window has room: (slot id, 0); else (None, seconds to wait).
        The calls answered since the last one count from their answers on (at the latest:
        the seconds since each answer are taken before the statement leaves). Calls older than
        the longest window are forgotten every 200 slots."""
        with self._answered_lock:
            answered, self._answered = self._answered, []
        with self._conn() as conn:
            slot, wait = conn.execute(
                f"SELECT slot, wait FROM invite_take_slot({TAKE_ARGUMENTS})",  # noqa: S608 - constant
                self._arguments(answered),
            ).fetchone()
        return (slot, 0.0) if slot is not None else (None, float(wait))

    def ride(self) -> Ride:
        """`take` as a subquery of another write (`Ride`). The answers it says are those known
        now; they are forgotten here only once the write that carries it is made."""
        with self._answered_lock:
            answered = list(self._answered)

        def carried() -> None:
            with self._answered_lock:
                self._answered = [a for a in self._answered if a not in answered]

        sql = f"(SELECT slot FROM invite_take_slot({TAKE_ARGUMENTS}))"  # noqa: S608 - constant
        return Ride(sql, self._arguments(answered), carried)

    def _arguments(self, answered: list[tuple[int, float]]) -> dict[str, Any]:
        longest = max((window for _, window in self.limits), default=60.0)
        self._taken += 1
        now = time.monotonic()
        return {
            "slot_lock": RATE_LOCK,
            "slot_counts": [count for count, _ in self.limits],
            "slot_windows": [float(window) for _, window in self.limits],
            "slot_cap": float(self.cap),
            "slot_prune": longest + 5 if self._taken % 200 == 0 else None,
            "slot_done": [cell for cell, _ in answered],
            "slot_ago": [max(0.0, now - at) for _, at in answered],
        }

    def done(self, cell: Any) -> None:
        """The call's answer came: it counts from now (said with the next slot taken here;
        until then, and if none is, `cap` after it was sent - never earlier than awork saw
        it)."""
        with self._answered_lock:
            self._answered.append((cell, time.monotonic()))

    def pause(self, seconds: float) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO awork_pause (id, until)"
                " VALUES (1, clock_timestamp() + make_interval(secs => %(s)s))"
                " ON CONFLICT (id) DO UPDATE SET until = greatest(awork_pause.until,"
                " EXCLUDED.until)",
                {"s": seconds},
            )
