"""awork's rate limit for every replica together: the calls are counted in PostgreSQL, under an
advisory lock and on the database's clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

import psycopg

from bot.awork.ratelimit import RateLimiter
from bot.store.postgres_schema import RATE_LOCK

Borrow = Callable[[], AbstractContextManager[psycopg.Connection]]


class SharedRateLimiter(RateLimiter):
    """awork's per-workspace limit for every replica together (see `RateLimiter` for how a call
    is counted). `transaction` and `connection` lend a pooled connection of the store."""

    def __init__(
        self,
        transaction: Borrow,
        connection: Borrow,
        per_second: int = 50,
        per_minute: int = 1000,
        cap: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(per_second, per_minute, cap=cap, sleep=sleep)
        self._tx = transaction
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
        """Take a slot if every window has room: (slot id, 0); else (None, seconds to wait)."""
        with self._tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (RATE_LOCK,))
            now, paused = conn.execute(
                "SELECT clock_timestamp(), (SELECT until FROM awork_pause WHERE id = 1)"
            ).fetchone()
            wait = (paused - now).total_seconds() if paused is not None else 0.0
            for count, window in self.limits:
                row = conn.execute(
                    "SELECT counted_at FROM awork_calls WHERE counted_at > %s"
                    " ORDER BY counted_at DESC OFFSET %s LIMIT 1",
                    (now - timedelta(seconds=window), count - 1),
                ).fetchone()
                if row is not None:
                    wait = max(wait, (row[0] + timedelta(seconds=window) - now).total_seconds())
            if wait > 0:
                return None, wait
            (slot,) = conn.execute(
                "INSERT INTO awork_calls (counted_at) VALUES (%s) RETURNING id",
                (now + timedelta(seconds=self.cap),),
            ).fetchone()
            self._taken += 1
            if self._taken % 200 == 0:  # forget calls older than the longest window
                longest = max((window for _, window in self.limits), default=60.0)
                conn.execute(
                    "DELETE FROM awork_calls WHERE counted_at < %s",
                    (now - timedelta(seconds=longest + 5),),
                )
            return slot, 0.0

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
