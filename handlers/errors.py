"""Unexpected errors in a listener: logged for the operator, never a stack trace in Slack.

A store that missed the ack's time budget (bot/store/budget.py) - or failed - while a request
was being answered is no bug: the person hears at once that the bot is busy and that nothing
was stored, in the shape their request takes an answer in (counted in `invitebot_store_busy`).
"""

from __future__ import annotations

import json
import logging

from slack_bolt import App, BoltResponse

from bot.i18n import N_, _, current, speaking
from bot.runtime import metrics
from bot.runtime.deps import Deps
from bot.store import StoreClosed
from bot.store.budget import StoreUnavailable
from bot.ui import answers

log = logging.getLogger(__name__)

SORRY = N_("Sorry, something went wrong on my side. Please try again in a moment.")


def register(app: App, deps: Deps) -> None:
    def on_error(
        error: Exception, body: dict, response: BoltResponse | None
    ) -> BoltResponse | None:
        # Said in the language of the person who acted, also when the error came before the
        # middleware that sets it (their language as remembered; Slack is not asked here).
        with speaking(_known_language(deps, body) or current()):
            return answered(error, body, response)

    def answered(
        error: Exception, body: dict, response: BoltResponse | None
    ) -> BoltResponse | None:
        kind = body.get("type") or ("slash_command" if body.get("command") else "unknown")
        if isinstance(error, (StoreUnavailable, StoreClosed)):
            log.warning("store busy on a %s request: %s", kind, type(error).__name__)
            metrics.STORE_BUSY.labels(kind).inc()
            return busy(kind, body) if response is not None else None
        log.error("listener failed on a %s request: %s", kind, type(error).__name__, exc_info=error)
        if response is None:
            return None  # no answer to replace (listeners ack inline, so Bolt passes one)
        if body.get("command"):
            # A slash command's answer is shown to the user alone.
            return BoltResponse(status=200, body=_(SORRY))
        return BoltResponse(status=400, body="")

    app.error(on_error)


def _known_language(deps: Deps, body: dict) -> str | None:
    """The language of whoever sent `body`, if it is remembered (never a call to Slack)."""
    user = body.get("user_id") or body.get("user")
    user = user.get("id") if isinstance(user, dict) else user
    languages = getattr(deps, "languages", None)
    return languages.known(str(user)) if languages is not None and user else None


def busy(kind: str, body: dict) -> BoltResponse:
    """'The bot is busy - not stored' as the ack of a request of this kind: a private answer
    to a command, an error on a form's first field (the form stays open, filled in), no options
    for a picker, 503 for an event (Slack delivers it again), a plain ack for anything else."""
    if kind == "slash_command":
        answer = {"response_type": "ephemeral", "text": _(answers.BUSY)}
    elif kind == "view_submission":
        blocks = (body.get("view") or {}).get("blocks") or []
        inputs = [b["block_id"] for b in blocks if b.get("type") == "input" and b.get("block_id")]
        if not inputs:
            return BoltResponse(status=200, body="")
        answer = {"response_action": "errors", "errors": {inputs[0]: _(answers.BUSY)}}
    elif kind == "block_suggestion":
        answer = {"options": []}
    elif kind == "event_callback":
        # An event (a workflow step's run) is delivered again by Slack after an error status:
        # answered 503, the run is asked for again rather than left without a request.
        return BoltResponse(status=503, body="")
    else:
        return BoltResponse(status=200, body="")
    return BoltResponse(
        status=200, body=json.dumps(answer), headers={"content-type": "application/json"}
    )
