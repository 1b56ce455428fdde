"""A monotonic clock that moves only when slept on, for code that takes `clock` and `sleep`."""

from __future__ import annotations


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
