"""The retry rules for awork calls, as an httpx transport: what is safe to send again, and
how long to wait before doing so."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

import httpx

from bot.awork.errors import RETRY_STATUSES, announced_wait

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class RetryTransport(httpx.BaseTransport):
    """Retries what is safe to retry, with capped exponential backoff.

    - 429 (awork did not carry the request out) and connection failures (it never got there):
      any method.
    - 5xx and read timeouts: only idempotent methods. A POST answered with 5xx or timed out may
      have been carried out, so it is handed back to the caller (the invite service checks
      awork for the invitation before sending it again).

    A wait announced by awork (`ratelimit-reset`, `x-ratelimit-reset` or `Retry-After`, in
    seconds or as an HTTP date) is honoured when it is longer than the backoff, up to
    `max_wait`. `sleep` does the waiting (tests pass a fake clock's).
    """

    def __init__(
        self,
        inner: httpx.BaseTransport,
        attempts: int = 4,
        backoff: float = 0.5,
        max_wait: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner = inner
        self.attempts = attempts
        self.backoff = backoff
        self.max_wait = max_wait
        self.sleep = sleep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # A call may ask for fewer attempts (extension "attempts"), e.g. one that is only nice to have.
        attempts = int(request.extensions.get("attempts", self.attempts))
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                response = self.inner.handle_request(request)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
                if last:
                    raise
                response = None
            except httpx.TimeoutException:
                if last or request.method not in IDEMPOTENT_METHODS:
                    raise
                response = None
            if response is not None and (last or not self._retry_status(request, response)):
                return response
            wait = self._wait(attempt, response)
            if response is not None:
                response.read()
                response.close()
            log.warning(
                "awork %s %s: %s, retrying in %.1fs (attempt %d of %d)",
                request.method,
                request.url.path,
                response.status_code if response is not None else "connection failed",
                wait,
                attempt,
                attempts,
            )
            self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _retry_status(request: httpx.Request, response: httpx.Response) -> bool:
        if response.status_code == 429:
            return True
        return response.status_code in RETRY_STATUSES and request.method in IDEMPOTENT_METHODS

    def _wait(self, attempt: int, response: httpx.Response | None) -> float:
        backoff = self.backoff * 2 ** (attempt - 1) * (0.5 + random.random() / 2)
        announced = announced_wait(response.headers) if response is not None else None
        return min(self.max_wait, max(backoff, announced or 0.0))

    def close(self) -> None:
        self.inner.close()
