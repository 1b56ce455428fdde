"""A click, once acked, is carried out or its clicker is told it was not.

The decision a click asks for (approve, deny, accept, invite again, retry failed) is stored
after the ack, by compare-and-set, within `DECISION_SECONDS` (bot/store/budget.py) and with a
failed connection retried on a fresh one by the store. That state change is the recorded
intent: whatever comes after it (Slack posts, the awork call) is redone by the sweep if it
fails - an `inviting` request whose lease expired is taken over and settled by looking first.
If the state change itself could not be stored, the clicker hears privately, within seconds,
that it did not go through and to click again: through the action's `response_url` (it answers
what they just did), else an ephemeral from the bot. Counted in `invitebot_clicks_not_stored`.
A response_url is a credential: it is never logged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from slack_sdk.webhook import WebhookClient

from bot.i18n import _
from bot.runtime import metrics
from bot.runtime.deps import Deps
from bot.runtime.outbound import tls_for
from bot.store import StoreClosed
from bot.store.budget import (
    CALL_SECONDS,
    DECISION_RERUNS,
    DECISION_SECONDS,
    StoreUnavailable,
    budget,
)
from bot.ui import answers, mrkdwn

log = logging.getLogger(__name__)

T = TypeVar("T")
ANSWER_TIMEOUT = 3.0  # seconds the response_url has to take the answer


@dataclass(frozen=True)
class Clicker:
    """Who clicked, and where their answer goes."""

    user: str
    channel: str | None = None
    response_url: str | None = None

    @classmethod
    def of(cls, body: dict) -> Clicker:
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
            "channel_id"
        )
        url = body.get("response_url")
        return cls(str(body["user"]["id"]), channel, url if isinstance(url, str) else None)


def decided(
    deps: Deps,
    clicker: Clicker,
    action: str,
    decide: Callable[[], T],
    seconds: float | None = None,
) -> T | None:
    """`decide()` - storing what a click asks for - with its store calls within `seconds`
    (`DECISION_SECONDS` unless said; 0: no budget, for a decision that waits for awork on
    the way); None, and the clicker told to click again, when it failed."""
    seconds = DECISION_SECONDS if seconds is None else seconds
    try:
        # Each store call within CALL_SECONDS, as an ack's: on PostgreSQL, the limits of the
        # acks' own connections, which a click's decision shares (bot/store/postgres_conn.py).
        # A connection cut again and again (a failover) is tried afresh a few times within it.
        limits = (
            budget(seconds, CALL_SECONDS, reruns=DECISION_RERUNS)
            if seconds
            else contextlib.nullcontext()
        )
        with limits:
            return decide()
    except (StoreUnavailable, StoreClosed) as exc:
        log.warning("%s by %s not stored: %s", action, clicker.user, type(exc).__name__)
    except Exception as exc:  # whatever it was, the click did nothing: say so
        log.error("%s by %s failed: %s", action, clicker.user, type(exc).__name__, exc_info=exc)
    metrics.CLICKS_NOT_STORED.labels(action).inc()
    answer(deps, clicker, _(answers.CLICK_AGAIN))
    return None


def answer(deps: Deps, clicker: Clicker, text: str) -> None:
    """A private answer to what the clicker just did: through the action's response_url,
    else (none, or Slack did not take it) an ephemeral from the bot where they clicked."""
    if clicker.response_url:
        payload = {"text": text}
        if deps.settings.sandbox:
            payload = mrkdwn.label_sandbox(payload)
        try:
            webhook = WebhookClient(
                clicker.response_url, timeout=ANSWER_TIMEOUT, ssl=tls_for(clicker.response_url)
            )
            sent = webhook.send(
                text=payload["text"], response_type="ephemeral", replace_original=False
            )
            if sent.status_code == 200:
                return
            log.info("the click's response URL refused the answer (HTTP %d)", sent.status_code)
        except Exception as exc:  # never the URL itself in the log: it is a credential
            log.info("the click's response URL did not take the answer: %s", type(exc).__name__)
    deps.courier.tell(clicker.user, clicker.channel, text)
