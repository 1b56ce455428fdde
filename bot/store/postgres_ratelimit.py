"""awork's rate limit for every replica together: the calls are counted in PostgreSQL, under an
advisory lock and on the database's clock - one statement a call (the function
`invite_take_slot`, bot/store/postgres_schema.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import psycopg

from bot.awork.ratelimit import RateLimiter
from bot.store.postgres_schema import RATE_LOCK

Borrow = Callable[[], AbstractContextManager[psycopg.Connection]]


class SharedRateLimiter(RateLimiter):
    """awork's per-workspace limit for every replica together (see `RateLimiter` for how a call
    is counted). `connection` lends a pooled connection of the store."""

    def __init__(
        self,
        connection: Borrow,
        per_second: int = 50,
        per_minute: int = 1000,
        cap: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(per_second, per_minute, cap=cap, sleep=sleep)
        self._conn = connection
        self._taken = 0

    def acquire(self) -> Any:
        while True:
            slot, wait = self.take()
            if slot is not None:
                return slot
            self.waited += wait
            self._sleep(min(wait, 1.0))

    def take(self) -> tuple[int | None, float]:
        """Take a slot if every window has room: (slot id, 0); else (None, seconds to wait).
        Calls older than the longest window are forgotten every 200 slots."""
        longest = max((window for _, window in self.limits), default=60.0)
        self._taken += 1
        with self._conn() as conn:
            slot, wait = conn.execute(
                "SELECT slot, wait FROM invite_take_slot(%s, %s, %s, %s, %s)",
                (
                    RATE_LOCK,
                    [count for count, _ in self.limits],
                    [float(window) for _, window in self.limits],
                    float(self.cap),
                    longest + 5 if self._taken % 200 == 0 else None,
                ),
            ).fetchone()
        return (slot, 0.0) if slot is not None else (None, float(wait))

    def done(self, cell: Any) -> None:
        with self._conn() as conn:
            conn.execute(
                "UPDATE awork_calls SET counted_at = least(counted_at, clock_timestamp())"
                " WHERE id = %s",
                (cell,),
            )

    def pause(self, seconds: float) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO awork_pause (id, until)"
                " VALUES (1, clock_timestamp() + make_interval(secs => %(s)s))"
                " ON CONFLICT (id) DO UPDATE SET until = greatest(awork_pause.until,"
                " EXCLUDED.until)",
                {"s": seconds},
            )
