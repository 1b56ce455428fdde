"""Completing the Workflow Builder step run that asked for a request (bot/domain/steps.py), as
part of the request's delivery: once its outcome is known, `functions.completeSuccess` with
the outputs or `functions.completeError` with the reason; then `step.done` is stored. A run
that made no request (its inputs could not, or the ask was turned away) is completed from a
small outbox in the store (`STEP_OUTBOX`), written before its event is acked and emptied as
each completion goes through - by the sweep too, so a restart does not lose it.

Slack down or slow delays it (the sweep retries, backing off); Slack's refusal of a completion
is final (the run is over, or its outputs are wrong) and is logged by its error code. The
short-lived token Slack sends with the run is used while this process knows it, the bot token
otherwise (both complete a run); neither is ever logged. The reason a run failed is in
INVITE_LANGUAGE: Workflow Builder shows it to whoever looks at the workflow's runs.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.domain.records import InviteRequest
from bot.i18n import speaking
from bot.ui import steps
from handlers.delivery.slack_errors import PASSING, SEND_ERRORS, SETUP, slack_error

log = logging.getLogger(__name__)

TOKEN_HOURS = 24  # a run's token is forgotten after this long (a run waits for a decision)
STEP_OUTBOX = "step_completions"  # meta key: runs to complete that made no request


class StepCompletion:
    client: WebClient
    store: Any
    # Runs' own tokens by execution id, with when they came (set by the Courier).
    step_tokens: dict[str, tuple[str, float]]
    step_tokens_lock: threading.Lock
    languages: Any  # handlers/delivery/languages.py: `channel` is INVITE_LANGUAGE

    def remember_step_token(self, execution_id: str, token: str | None) -> None:
        """Keep a run's own token (in memory only) for completing it."""
        if not token:
            return
        tokens = self.step_tokens
        with self.step_tokens_lock:
            now = time.monotonic()
            for key in [k for k, (_, at) in tokens.items() if now - at > TOKEN_HOURS * 3600]:
                del tokens[key]
            tokens[execution_id] = (token, now)

    def complete_step(
        self, execution_id: str, outputs: dict[str, Any] | None = None, error: str | None = None
    ) -> bool:
        """Complete a run: with `outputs`, or failed with `error`. True once it is over (done,
        or refused by Slack for good); False when it is to be tried again later."""
        token = self.step_tokens.get(execution_id, (None, 0.0))[0]
        clients = [self._with_token(token), self.client] if token else [self.client]
        for client in clients:
            try:
                if error is None:
                    client.functions_completeSuccess(
                        function_execution_id=execution_id, outputs=outputs or {}
                    )
                else:
                    client.functions_completeError(function_execution_id=execution_id, error=error)
            except SEND_ERRORS as exc:
                code = slack_error(exc)
                if isinstance(exc, SlackApiError) and code in SETUP and client is not self.client:
                    continue  # the run's own token has run out: the bot token completes it
                if not isinstance(exc, SlackApiError) or code in PASSING | SETUP:
                    log.warning("step run %s: not completed yet (%s)", execution_id, code)
                    return False
                log.error("step run %s: Slack refused to complete it (%s)", execution_id, code)
                return True
            with self.step_tokens_lock:
                self.step_tokens.pop(execution_id, None)
            return True
        return False

    def complete_later(
        self, execution_id: str, outputs: dict[str, Any] | None, error: str | None
    ) -> None:
        """Keep a run's completion in the store's outbox (before its event is acked)."""
        entry = {"execution_id": execution_id, "outputs": outputs, "error": error}
        self.store.add_to_meta_set(STEP_OUTBOX, json.dumps(entry, sort_keys=True))

    def finish_steps(self) -> int:
        """Complete the runs in the outbox; each leaves it once Slack took its completion.
        Returns how many are left for a later round."""
        left = 0
        for item in self.store.get_meta(STEP_OUTBOX, []):
            entry = json.loads(item)
            if self.complete_step(entry["execution_id"], entry["outputs"], entry["error"]):
                self.store.remove_from_meta_set(STEP_OUTBOX, item)
            else:
                left += 1
        return left

    def _complete_request_step(self, request: InviteRequest) -> InviteRequest:
        """The run that asked for `request`, completed once its outcome is known."""
        outcome, step = request.step_outcome(), request.step
        if outcome is None or step is None:
            return request
        if outcome == "invited":
            done = self.complete_step(step.execution_id, steps.invited_outputs(request))
        elif steps.already_member(request):  # awork has them: what the workflow wanted
            done = self.complete_step(step.execution_id, steps.member_outputs(request))
        else:
            with speaking(self.languages.channel):
                error = steps.step_error(request)
            done = self.complete_step(step.execution_id, error=error)
        if not done:
            return request
        self.store.record("step_completed", request.id, outcome=outcome)
        updated = self.store.update(request.id, step=step.model_copy(update={"done": True}))
        return updated or request

    def _with_token(self, token: str) -> WebClient:
        return WebClient(
            token=token,
            base_url=self.client.base_url,
            ssl=self.client.ssl,  # one TLS context (bot/runtime/outbound.py)
            timeout=self.client.timeout,
            retry_handlers=self.client.retry_handlers,
        )
