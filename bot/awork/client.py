"""The awork API client: one long-lived `httpx.Client`, retries in a transport, typed errors.

Errors (everything this module raises on a failed call):

- `AworkError` - awork answered with an error (`code` is awork's `ErrorResponse.code`, e.g.
  `already-exist-error`, `insufficient-seats`, `validation-failed`, `invalid-model`,
  `unauthorized`, `not-found`, `invalid-operation`; `http-<status>` when the body is not JSON).
  - `AworkUnavailable` - no usable answer: connection failures, timeouts, and 429/5xx that were
    still there after the retries. `retryable` is true; the call may be tried again later.

The API key is only ever put in the Authorization header; no message here contains it.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from bot.domain.awork_models import AworkUser, Invitation, InvitationResult, Role, Team
from bot.runtime import metrics

log = logging.getLogger(__name__)

# Called right before a request leaves for awork (after its rate-limit slot is taken): the
# invite service renews its lease there, and a lost lease stops the call from being sent.
_before_send: ContextVar[Callable[[], None] | None] = ContextVar("before_send", default=None)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


class AworkError(Exception):
    """awork refused a call. `str()` is safe to show to people: it never holds secrets."""

    retryable = False

    def __init__(
        self,
        code: str,
        description: str = "",
        status: int | None = None,
        validation_errors: list[dict[str, str]] | None = None,
        details: list[str] | None = None,
        retry_after: float | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.code = code
        self.endpoint = endpoint  # the call awork answered, e.g. "POST /invitations"
        self.retry_after = retry_after
        self.description = description
        self.status = status
        self.validation_errors = validation_errors or []
        self.details = details or []
        super().__init__(f"{code}: {description}" if description else code)


class AworkUnavailable(AworkError):
    """awork could not be reached or kept answering 429/5xx; try again later.

    `ambiguous` is true when the request may have been carried out all the same (a timed-out
    or 5xx-answered POST)."""

    retryable = True

    @property
    def ambiguous(self) -> bool:
        if self.code in ("timeout", "connection-lost"):
            return True
        return self.status is not None and self.status >= 500


class RetryTransport(httpx.BaseTransport):
    """Retries what is safe to retry, with capped exponential backoff.

    - 429 (awork did not carry the request out) and connection failures (it never got there):
      any method.
    - 5xx and read timeouts: only idempotent methods. A POST answered with 5xx or timed out may
      have been carried out, so it is handed back to the caller (the invite service checks
      awork for the invitation before sending it again).

    A wait announced by awork (`ratelimit-reset`, `x-ratelimit-reset` or `Retry-After`, in
    seconds or as an HTTP date) is honoured when it is longer than the backoff.
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


class RateLimiter:
    """Keeps the bot's calls inside awork's per-workspace limits (50/s and 1000/min by default),
    shared by every thread of the process, so a bulk run does not earn itself 429s.

    A sliding window over the last calls, each counted at the moment its answer came back
    (awork has certainly seen it by then, so jitter on the way cannot squeeze a 51st call into
    awork's second), or `cap` seconds after it was sent when awork is slow to answer. A call in
    flight counts at its latest possible time. awork's own word wins: a 429, or
    `ratelimit-remaining: 0`, pauses all calls until its `ratelimit-reset`."""

    def __init__(
        self,
        per_second: int = 50,
        per_minute: int = 1000,
        cap: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limits = [
            (count, window)
            for count, window in ((per_second, 1.0), (per_minute, 60.0))
            if count > 0
        ]
        self.cap = cap
        self._clock = clock
        self._sleep = sleep
        # [counted-at time] cells, oldest first; a cell is mutable while its call is in flight.
        self._calls: deque[list[float]] = deque(maxlen=max((c for c, _ in self.limits), default=1))
        self._paused_until = 0.0
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds spent waiting, all threads together (for benchmarks)

    def acquire(self) -> list[float]:
        """Wait for a slot and take it; hand the result to `done` when the answer is in."""
        while True:
            with self._lock:
                now = self._clock()
                wait = self._paused_until - now
                for count, window in self.limits:
                    recent = sorted(cell[0] for cell in self._calls if cell[0] > now - window)
                    if len(recent) >= count:
                        # Wait until enough of them have left the window.
                        wait = max(wait, recent[len(recent) - count] + window - now)
                if wait <= 0:
                    cell = [now + self.cap]  # in flight: the latest it may count
                    self._calls.append(cell)
                    return cell
                self.waited += wait
            self._sleep(wait)

    def done(self, cell: list[float]) -> None:
        """The call's answer arrived (or it failed): it counts from now, or from `cap` after
        it was sent if that is earlier."""
        with self._lock:
            cell[0] = min(cell[0], self._clock())

    def pause(self, seconds: float) -> None:
        """awork said to wait: nobody calls before then."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def observe(self, response: httpx.Response) -> None:
        """Follow awork's rate-limit headers on any answer."""
        if response.status_code == 429:
            self.pause(min(30.0, announced_wait(response.headers) or 1.0))
            return
        for prefix in ("ratelimit", "x-ratelimit"):
            remaining = response.headers.get(f"{prefix}-remaining")
            if remaining is not None and remaining.strip() in ("0", "0.0"):
                reset = announced_wait(response.headers)
                if reset:
                    self.pause(min(30.0, reset))
                return


class RateLimitTransport(httpx.BaseTransport):
    """Takes a `RateLimiter` slot before each attempt and tells it what awork answered."""

    def __init__(self, inner: httpx.BaseTransport, limiter: RateLimiter) -> None:
        self.inner = inner
        self.limiter = limiter

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            slot = self.limiter.acquire()
        except Exception as exc:  # a shared limiter whose database is away: nothing was sent
            log.warning("awork rate limiter unavailable: %s", type(exc).__name__)
            raise httpx.ConnectError("rate limiter unavailable", request=request) from exc
        try:
            hook = _before_send.get()
            if hook is not None:
                hook()
            response = self._counted(request)
        finally:
            try:
                self.limiter.done(slot)
            except Exception as exc:  # never lose awork's answer over the bookkeeping
                log.warning("awork rate limiter not updated: %s", type(exc).__name__)
        try:
            self.limiter.observe(response)
        except Exception as exc:
            log.warning("awork rate limiter not updated: %s", type(exc).__name__)
        return response

    def _counted(self, request: httpx.Request) -> httpx.Response:
        """Send, counting the call by status and timing it (GET /metrics)."""
        endpoint = metrics.awork_endpoint(request.url.path)
        started = time.monotonic()
        try:
            response = self.inner.handle_request(request)
        except Exception:
            metrics.AWORK_CALLS.labels(request.method, endpoint, "error").inc()
            raise
        metrics.AWORK_CALLS.labels(request.method, endpoint, str(response.status_code)).inc()
        metrics.AWORK_SECONDS.labels(endpoint).observe(time.monotonic() - started)
        if response.status_code == 429:
            metrics.AWORK_RATE_LIMITED.inc()
        return response

    def close(self) -> None:
        self.inner.close()


def announced_wait(headers: httpx.Headers) -> float | None:
    """Seconds awork asks us to wait, from its rate-limit headers or Retry-After."""
    for name in ("ratelimit-reset", "x-ratelimit-reset", "retry-after"):
        raw = headers.get(name)
        if not raw:
            continue
        raw = raw.strip()
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    return None


class AworkClient:
    """Typed calls to the parts of awork's API the bot uses."""

    PAGE_SIZE = 1000

    def __init__(
        self,
        base_url: str,
        api_key: str,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry_sleep: Callable[[float], None] = time.sleep,
        attempts: int = 4,
        limiter: RateLimiter | None = None,
    ) -> None:
        inner = transport or httpx.HTTPTransport(limits=httpx.Limits(max_connections=50))
        self.limiter = limiter or RateLimiter()
        inner = RateLimitTransport(inner, self.limiter)
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "User-Agent": "awork-invite-bot/0.1",
            },
            timeout=timeout,
            transport=RetryTransport(inner, attempts=attempts, sleep=retry_sleep),
        )

    def close(self) -> None:
        self._http.close()

    def longest_attempt(self) -> float:
        """The longest one attempt can take once it leaves (connect, send, await the answer):
        after that long, a request we sent is either carried out by awork or never will be."""
        timeout = self._http.timeout
        return float(sum(part or 0.0 for part in (timeout.connect, timeout.write, timeout.read)))

    @contextmanager
    def before_each_send(self, hook: Callable[[], None]) -> Iterator[None]:
        """Within the block, `hook` runs right before each request of this thread leaves
        (retries included); an exception from it stops that request from being sent."""
        token = _before_send.set(hook)
        try:
            yield
        finally:
            _before_send.reset(token)

    # -- calls ------------------------------------------------------------------------------

    def create_invitation(self, invitation: Invitation) -> InvitationResult:
        data = self._call("POST", "invitations", json=invitation.to_body())
        return InvitationResult.model_validate(data)

    def accept_invitation(self, invitation_code: str) -> dict[str, Any]:
        return self._call("POST", "invitations/accept", json={"invitationCode": invitation_code})

    def roles(self) -> list[Role]:
        return [
            role
            for role in (Role.model_validate(item) for item in self._call("GET", "roles"))
            if not role.is_archived
        ]

    def teams(self) -> list[Team]:
        return [Team.model_validate(item) for item in self._pages("teams")]

    def users(self) -> Iterator[AworkUser]:
        for item in self._pages("users"):
            yield AworkUser.model_validate(item)

    def find_user_by_email(self, address: str) -> AworkUser | None:
        wanted = address.lower()
        return next((user for user in self.users() if wanted in user.emails), None)

    def autofill(self, address: str) -> dict[str, str | None] | None:
        """awork's guess of a person's first and last name (and gender) from an address;
        None when it has none (204). A quick call: the bot does not wait long for a guess."""
        response = self._send(
            "GET",
            f"users/autofill/{quote(address, safe='@')}",
            timeout=3.0,
            extensions={"attempts": 1},
        )
        data = _json(response) if response.status_code != 204 else None
        if not isinstance(data, dict):
            return None
        return {key: data.get(key) for key in ("firstName", "lastName", "gender")}

    def me(self) -> dict[str, Any]:
        """`GET /users/me`: the API key's user, with its `workspace`."""
        return self._call("GET", "users/me") or {}

    def try_empty_invitation(self) -> AworkError | None:
        """`POST /invitations` with an empty body, which awork answers 400 validation-failed
        and creates nothing: whether it still takes invitations. The error it answered (None
        for a success, which it should never be)."""
        try:
            self._send("POST", "invitations", json={}, extensions={"attempts": 2})
        except AworkError as exc:
            return exc
        return None

    def workspace_id(self) -> str:
        """The API key's workspace, from `GET /users/me`."""
        me = self.me()
        workspace = me.get("workspace") or {}
        if not workspace.get("id"):
            raise AworkError("invalid-response", "GET /users/me returned no workspace id")
        return str(workspace["id"])

    # -- plumbing ---------------------------------------------------------------------------

    def _pages(self, path: str) -> Iterator[dict[str, Any]]:
        page = 1
        seen = 0
        while True:
            response = self._send("GET", path, params={"page": page, "pageSize": self.PAGE_SIZE})
            items = _json(response) or []
            yield from items
            seen += len(items)
            total = response.headers.get("aw-totalitems")
            if len(items) < self.PAGE_SIZE or (total and total.isdigit() and seen >= int(total)):
                return
            page += 1

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return _json(self._send(method, path, **kwargs))

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # No connection was made: nothing left this machine, safe to send again.
            raise AworkUnavailable(
                "connection-failed", f"could not reach awork ({type(exc).__name__})"
            ) from exc
        except httpx.TimeoutException as exc:
            raise AworkUnavailable(
                "timeout", f"awork did not answer {method} /{path} in time"
            ) from exc
        except httpx.TransportError as exc:
            # The connection broke after the request may have left: awork may have done it.
            raise AworkUnavailable(
                "connection-lost", f"the connection to awork broke ({type(exc).__name__})"
            ) from exc
        if response.is_success:
            return response
        raise error_from_response(response)


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise AworkError(
            "invalid-response", "awork answered with something that is not JSON"
        ) from exc


def error_from_response(response: httpx.Response) -> AworkError:
    """Map an awork error answer (ErrorResponse JSON, or bare status) to an exception."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("code") or _code_for_status(status))
    kind = AworkUnavailable if status in RETRY_STATUSES else AworkError
    return kind(
        code=code,
        description=str(body.get("description") or ""),
        status=status,
        validation_errors=[
            {"property": str(item.get("property") or ""), "message": str(item.get("message") or "")}
            for item in body.get("validationErrors") or []
            if isinstance(item, dict)
        ],
        details=[str(item) for item in body.get("details") or []],
        retry_after=announced_wait(response.headers),
        endpoint=_endpoint(response),
    )


def _endpoint(response: httpx.Response) -> str | None:
    """The call, as `POST /invitations`: the method and the path under the API's base."""
    try:
        request = response.request
    except RuntimeError:  # a response built without a request
        return None
    path = request.url.path
    return f"{request.method} /{path.split('/api/v1/', 1)[-1].lstrip('/')}"


def _code_for_status(status: int) -> str:
    return {
        400: "bad-request",
        401: "unauthorized",
        403: "forbidden",
        404: "not-found",
        429: "rate-limited",
    }.get(status, f"http-{status}")
