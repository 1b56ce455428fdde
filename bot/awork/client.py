"""The awork API client: one long-lived `httpx.Client` with typed calls. Under it, the retry
transport (`bot.awork.retry`) and the rate limit (`bot.awork.ratelimit`); what it raises is in
`bot.awork.errors`. The API key is only ever put in the Authorization header.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from bot.awork.errors import AworkError, AworkUnavailable, error_from_response
from bot.awork.ratelimit import RateLimiter, RateLimitTransport, Ride, before_send
from bot.awork.retry import RetryTransport
from bot.domain.awork_models import AworkUser, Invitation, InvitationResult, Role, Team

DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


class FirstUse(httpx.BaseTransport):
    """A transport made at the first request rather than at start-up: httpx's own imports its
    connection pool and loads the TLS certificates (45 ms) when it is made."""

    def __init__(self, make: Callable[[], httpx.BaseTransport]) -> None:
        self._make = make
        self._inner: httpx.BaseTransport | None = None
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        inner = self._inner
        if inner is None:
            with self._lock:
                if self._inner is None:
                    self._inner = self._make()
                inner = self._inner
        return inner.handle_request(request)

    def close(self) -> None:
        with self._lock:
            if self._inner is not None:
                self._inner.close()


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
        verify: Callable[[], ssl.SSLContext | None] | None = None,
        proxy: str | None = None,
    ) -> None:
        """`verify`: makes the TLS context to check awork's certificate with, asked with the
        transport at the first request (None, or its None: httpx's own); `proxy`: the proxy to
        reach awork through - httpx takes none from the environment once it is handed a
        transport, as the retries and the rate limit need it to be."""

        def make() -> httpx.BaseTransport:
            context = verify() if verify is not None else None
            return httpx.HTTPTransport(
                limits=httpx.Limits(max_connections=50),
                verify=context if context is not None else True,
                proxy=proxy,
            )

        inner = transport or FirstUse(make)
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
    def before_each_send(self, hook: Callable[[Ride | None], None]) -> Iterator[None]:
        """Within the block, `hook` runs right before each request of this thread leaves
        (retries included), given a `Ride` its write may take the request's rate-limit slot
        with (else None: the slot is taken); an exception from it stops that request from
        being sent."""
        token = before_send.set(hook)
        try:
            yield
        finally:
            before_send.reset(token)

    # -- calls ------------------------------------------------------------------------------

    def create_invitation(self, invitation: Invitation) -> InvitationResult:
        """`POST /invitations`. A success whose body is not an invitation (not JSON, or
        neither a code nor a user in it) came after awork may have created it: that answer
        is lost, like a timed-out one (`AworkUnavailable.ambiguous`), never a refusal."""
        response = self._send("POST", "invitations", json=invitation.to_body())
        try:
            result = InvitationResult.model_validate(_json(response))
        except (AworkError, ValidationError):
            result = None
        if result is None or (result.invitation_code is None and result.user_id is None):
            raise AworkUnavailable(
                "unreadable-answer",
                f"awork answered POST /invitations with {response.status_code} "
                "and a body that is no invitation",
                status=response.status_code,
                endpoint="POST /invitations",
            )
        return result

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
