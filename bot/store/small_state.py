"""Small state, periodic jobs and counters (a mixin of `Store`, which the engines keep):
key-value state (`get_meta`, `set_meta`, sets of ids), the periodic jobs' next runs, the
policy's daily counters - and `recent_meta`, small state read on every delivery (who looks at
the App Home, the command's name) as this process read it at most a few seconds ago (the
command's name, which the sweep reads again: minutes, bot/runtime/command.py), so that an
approval does not read it from the database three times over."""

from __future__ import annotations

import abc
import functools
from time import monotonic
from typing import Any

RECENT_SECONDS = 10.0  # how late another replica's write to small state may show in `recent_meta`


class SmallState(abc.ABC):
    @abc.abstractmethod
    def get_meta(self, key: str, default: Any = None) -> Any: ...

    @abc.abstractmethod
    def set_meta(self, key: str, value: Any) -> None: ...

    @abc.abstractmethod
    def delete_meta(self, key: str) -> None:
        """Remove `key` (nothing happens when it is not there)."""

    @abc.abstractmethod
    def add_to_meta_set(self, key: str, value: str) -> bool:
        """Add `value` to the list at `key`, atomically; True when it was not there."""

    @abc.abstractmethod
    def remove_from_meta_set(self, key: str, value: str) -> bool:
        """Take `value` out of the list at `key`, atomically; True when it was there."""

    @abc.abstractmethod
    def claim_period(self, name: str, seconds: float, owner: str) -> bool:
        """True for exactly one caller per `seconds` across every process sharing the store:
        that caller runs the periodic job `name` (catalog refresh, archiving)."""

    @abc.abstractmethod
    def take_quota(self, key: str, wanted: int, limit: int) -> int:
        """Count up to `wanted` more on the counter `key` without passing `limit`, atomically
        across every process sharing the store; how many were counted (0: limit reached).
        Keys start with a day (`2026-12-04|U123`) so that `forget_quotas` can drop old ones."""

    @abc.abstractmethod
    def forget_quotas(self, before: str) -> int:
        """Drop the counters whose key sorts before `before` (a day); how many."""

    @functools.cached_property
    def _recent(self) -> dict[str, tuple[float, Any]]:
        return {}  # key -> (when read, on the monotonic clock; the value)

    @functools.cached_property
    def _forgotten(self) -> dict[str, int]:
        return {}  # key -> how often this process changed it

    def recent_meta(self, key: str, default: Any = None, max_age: float = RECENT_SECONDS) -> Any:
        """`get_meta`, as this process read it at most `max_age` seconds ago: for state read on
        every delivery whose change may show that much later (0: read it now, and keep it). A
        writer in this process calls `forget_recent` after its write, so its own change shows
        at once."""
        now = monotonic()
        hit = self._recent.get(key)
        if hit is not None and now - hit[0] < max_age:
            return hit[1]
        forgotten = self._forgotten.get(key, 0)
        value = self.get_meta(key, default)
        if self._forgotten.get(key, 0) == forgotten:  # not a read from before a write of ours
            self._recent[key] = (now, value)
        return value

    def forget_recent(self, key: str) -> None:
        """The next `recent_meta(key)` reads the store (after this process changed `key`)."""
        self._forgotten[key] = self._forgotten.get(key, 0) + 1
        self._recent.pop(key, None)
