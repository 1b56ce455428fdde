"""Whether the store answers, for GET /readyz: within a second, however long the store hangs.

A store that is down may take its driver's whole connect timeout (10 s for PostgreSQL's pool)
to say so. The store is asked in a thread of its own; /readyz waits for it at most `timeout`
and otherwise answers 503 at once. One question at a time: a /readyz arriving while one is out
shares its answer, or - once it is overdue - is told at once that the store does not answer.
A failure is kept for `retry_after`, so an outage is not asked about more often than that.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

TIMEOUT = 1.0
RETRY_AFTER = 1.0


@dataclass
class _Question:
    asked: float
    answered: threading.Event = field(default_factory=threading.Event)
    problem: str | None = None


class StoreReadiness:
    def __init__(
        self,
        probe: Callable[[], object],
        timeout: float = TIMEOUT,
        retry_after: float = RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.probe = probe
        self.timeout = timeout
        self.retry_after = retry_after
        self.clock = clock
        self._lock = threading.Lock()
        self._out: _Question | None = None
        self._failed: tuple[float, str] | None = None  # when, and why

    def problem(self) -> str | None:
        """Why the store is not ready, or None when it answered."""
        with self._lock:
            question = self._out
            if question is None:
                if self._failed and self.clock() - self._failed[0] < self.retry_after:
                    return self._failed[1]
                question = self._out = _Question(self.clock())
                threading.Thread(
                    target=self._ask, args=(question,), name="readiness", daemon=True
                ).start()
        left = question.asked + self.timeout - self.clock()
        if question.answered.wait(max(0.0, left)):
            return question.problem
        return f"store unreachable (no answer within {self.timeout:g} s)"

    def _ask(self, question: _Question) -> None:
        try:
            self.probe()
        except Exception as exc:
            question.problem = f"store unreachable ({type(exc).__name__})"
        with self._lock:
            self._out = None
            self._failed = None if question.problem is None else (self.clock(), question.problem)
        question.answered.set()
