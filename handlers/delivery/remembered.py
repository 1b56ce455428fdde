"""What the courier remembers of each person for a while - their language (languages.py), their
DM channel (notes.py): a value per person, kept a given time, the least recently used forgotten
first past a bound."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

DAY = 24 * 3600.0
KEPT = 20_000  # people remembered (least recently used are forgotten first)

V = TypeVar("V")


class Remembered(Generic[V]):
    """A value per person, each kept `keep_seconds` (or its own time), at most `kept` people."""

    def __init__(
        self,
        keep_seconds: float = DAY,
        kept: int = KEPT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keep_seconds = keep_seconds
        self.kept = kept
        self.clock = clock
        self._values: OrderedDict[str, tuple[V, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        """The value, if it was remembered less than its time ago."""
        with self._lock:
            entry = self._values.get(key)
            if entry is None or entry[1] <= self.clock():
                return None
            self._values.move_to_end(key)
            return entry[0]

    def last(self, key: str) -> V | None:
        """The value last remembered, however long ago (until forgotten)."""
        with self._lock:
            entry = self._values.get(key)
            return None if entry is None else entry[0]

    def put(self, key: str, value: V, seconds: float | None = None) -> None:
        """Remember `value` for `seconds` (default: `keep_seconds`)."""
        until = self.clock() + (self.keep_seconds if seconds is None else seconds)
        with self._lock:
            self._values[key] = (value, until)
            self._values.move_to_end(key)
            while len(self._values) > self.kept:
                self._values.popitem(last=False)

    def forget(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)
