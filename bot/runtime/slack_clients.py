"""The bot's Slack Web API clients: each call counted by method and outcome (GET /metrics),
secrets masked in what they send, every message labelled in sandbox mode, slack_sdk's retry
handlers counted, one TLS context for all of them (bot/runtime/outbound.py) - and the client for
opening modals, which must not wait."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import RetryHandler, RetryIntervalCalculator
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import default_interval_calculator

from bot.runtime import logs, metrics
from bot.runtime.config import Settings
from bot.runtime.outbound import tls_for
from bot.ui import mrkdwn

LABELLED = {"chat.postMessage", "chat.postEphemeral", "chat.update"}
LABELLED_VIEWS = {"views.open", "views.update", "views.push", "views.publish"}


def label_call(api_method: str, json: dict | None) -> dict | None:
    """A Web API call's JSON with the sandbox label on its message or view."""
    if json is not None and api_method in LABELLED:
        return mrkdwn.label_sandbox(json)
    if json is not None and api_method in LABELLED_VIEWS and isinstance(json.get("view"), dict):
        view = mrkdwn.label_sandbox(json["view"], block_limit=100)
        view.pop("text", None)
        return {**json, "view": view}
    return json


# Why slack_sdk's retry handlers sent this thread's current call again (CountingWebClient).
_RETRIED = threading.local()


class CountingWebClient(WebClient):
    """Counts every Web API call by method and outcome (GET /metrics), and masks `secrets` in
    every message and view it sends as the logs mask them: awork's error texts are quoted to
    people, and one may echo the API key. `retried()` says why slack_sdk sent the thread's
    last call again, if it did: after a 5xx or a dropped connection the first try may have been
    carried out too (handlers/delivery/posts.py looks for the copy)."""

    def __init__(self, *, secrets: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.secrets = logs.maskable(secrets)

    def api_call(self, api_method: str, *, json: dict | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        if json is not None:
            json = logs.masked_payload(json, self.secrets)
        _RETRIED.reasons = ()
        try:
            response = super().api_call(api_method, json=json, **kwargs)
        except SlackApiError as exc:
            metrics.SLACK_CALLS.labels(api_method, str(exc.response.get("error"))).inc()
            raise
        except Exception as exc:
            metrics.SLACK_CALLS.labels(api_method, type(exc).__name__).inc()
            raise
        metrics.SLACK_CALLS.labels(api_method, "ok").inc()
        return response

    def retried(self) -> tuple[str, ...]:
        """Why slack_sdk sent this thread's last call again: `connection`, `rate_limited`,
        `server_error` (empty: it did not)."""
        return getattr(_RETRIED, "reasons", ())


def counted_retries(kind: type[RetryHandler], reason: str) -> type[RetryHandler]:
    """One of slack_sdk's retry handlers, counting its retries (GET /metrics)."""

    class Counted(kind):  # type: ignore[valid-type, misc]
        def prepare_for_next_attempt(self, **kwargs: Any) -> None:
            metrics.SLACK_RETRIES.labels(reason).inc()
            _RETRIED.reasons = (*getattr(_RETRIED, "reasons", ()), reason)
            super().prepare_for_next_attempt(**kwargs)

    return Counted


class SandboxLabelledClient(CountingWebClient):
    """In sandbox mode every message and view the bot sends says "sandbox — no real
    invitation", whichever part of the bot sends it."""

    def api_call(self, api_method: str, *, json: dict | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        return super().api_call(api_method, json=label_call(api_method, json), **kwargs)


RETRIES = (
    counted_retries(ConnectionErrorRetryHandler, "connection"),
    counted_retries(RateLimitErrorRetryHandler, "rate_limited"),
    counted_retries(ServerErrorRetryHandler, "server_error"),
)


# slack_sdk's own backoff with jitter between a call and its retry (tests shorten it).
RETRY_INTERVALS: RetryIntervalCalculator = default_interval_calculator
SLACK_RETRY_COUNT = 2  # slack_sdk's retries of a call refused for now (connection, 429, 5xx)


def slack_client(
    settings: Settings,
    timeout: float | None = None,
    retries: int = SLACK_RETRY_COUNT,
    retry_on: tuple[type[RetryHandler], ...] = RETRIES,
) -> WebClient:
    """The bot's Slack client: `SLACK_TIMEOUT` for each call (above Slack's own worst case for
    chat methods: a post whose answer did not come is looked for before it is sent again,
    handlers/delivery/posts.py), slack_sdk's retry handlers counted."""
    kind = SandboxLabelledClient if settings.sandbox else CountingWebClient
    return kind(
        secrets=logs.secret_values(settings),
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        ssl=tls_for(settings.slack_api_url),  # Bolt hands it on: respond, Socket Mode's socket
        timeout=settings.slack_timeout if timeout is None else timeout,
        retry_handlers=[
            handler(max_retry_count=retries, interval_calculator=RETRY_INTERVALS)
            for handler in retry_on
        ],
    )


def modal_client(settings: Settings) -> WebClient:
    """For views.open: a trigger_id is dead 3 s after the click, so a slow or refused call is
    not waited for or retried (only a connection that failed before sending is, once)."""
    return slack_client(settings, timeout=2.5, retries=1, retry_on=RETRIES[:1])
