"""Unexpected errors in a listener: logged for the operator, never a stack trace in Slack."""

from __future__ import annotations

import logging

from slack_bolt import App, BoltResponse

from bot.runtime.deps import Deps

log = logging.getLogger(__name__)

SORRY = "Sorry, something went wrong on my side. Please try again in a moment."


def register(app: App, deps: Deps) -> None:
    def on_error(
        error: Exception, body: dict, response: BoltResponse | None
    ) -> BoltResponse | None:
        kind = body.get("type") or ("slash_command" if body.get("command") else "unknown")
        log.error("listener failed on a %s request: %s", kind, type(error).__name__, exc_info=error)
        if response is None:
            return None  # no answer to replace (listeners ack inline, so Bolt passes one)
        if body.get("command"):
            # A slash command's answer is shown to the user alone.
            return BoltResponse(status=200, body=SORRY)
        return BoltResponse(status=400, body="")

    app.error(on_error)
