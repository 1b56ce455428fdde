"""What a failed awork call raises, and what awork's answers say about waiting.

- `AworkError` - awork answered with an error (`code` is awork's `ErrorResponse.code`, e.g.
  `already-exist-error`, `insufficient-seats`, `validation-failed`, `invalid-model`,
  `unauthorized`, `not-found`, `invalid-operation`; `http-<status>` when the body is not JSON).
  - `AworkUnavailable` - no usable answer: connection failures, timeouts, and 429/5xx that were
    still there after the retries. `retryable` is true; the call may be tried again later.

No message here contains the API key.
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime

import httpx

# Answers that say "not now": awork did not (429) or may not (5xx) have done the call.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


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
    or 5xx-answered POST, or a success the bot could not read)."""

    retryable = True

    @property
    def ambiguous(self) -> bool:
        if self.code in ("timeout", "connection-lost", "unreadable-answer"):
            return True
        return self.status is not None and self.status >= 500


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
