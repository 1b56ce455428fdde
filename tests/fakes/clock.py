"""Clocks that move only when told: a monotonic one, moved by sleeping on it, for code that
takes `clock` and `sleep`; and a store's clock, moved by hand."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.domain.clock import utcnow


class FakeClock:
    """`clock()` reads the time, `clock.sleep(s)` moves it on at once; `waits` lists every
    sleep, in order."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.start = start
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    @property
    def elapsed(self) -> float:
        return self.now - self.start


class StoreClock:
    """Stands in for a store's clock (`Store.now`, which every lease, due time and settle
    window is judged on) and moves only by `advance`: minutes of leases pass at once."""

    def __init__(self, store: Any, start: datetime | None = None) -> None:
        self.at = start or utcnow()
        store.now = self

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> datetime:
        self.at += timedelta(seconds=seconds)
        return self.at
