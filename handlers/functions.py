"""The Workflow Builder step "Invite to awork" (`function_executed` for `invite_to_awork`).

A run's inputs become a request exactly as the form's would - the same validation, role and
team names resolved like `/invite`'s, the same policy, duplicates and daily limit - stored
before the event is acked, with the run kept on it; a retried or repeated delivery of the run
finds the request it made. The run is completed by the Courier once the outcome is known
(handlers/delivery/steps.py). Inputs that cannot make a request, and an ask the bot turns
away, complete the run at once after the ack - failed with one plain sentence, or, already in
awork, successfully with `status: already_member` - from the Courier's outbox in the store,
written before the ack, so neither Slack's trouble nor a restart leaves the run waiting.
The `requester` input is whose request it is (the policy is theirs), but the run is never
their approval: a run's request is decided by an approver's click or the policy.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App

from bot.domain.records import WorkflowStep
from bot.domain.steps import STEP_CALLBACK_ID, read_inputs, step_request_id
from bot.runtime.deps import Deps
from bot.ui import steps
from handlers.actions import after_asked

log = logging.getLogger(__name__)


def register(app: App, deps: Deps) -> None:
    service, courier = deps.service, deps.courier

    def invite_to_awork(body: dict) -> None:
        event = body.get("event") or {}
        execution_id = str(event.get("function_execution_id") or "")
        if not execution_id:
            return
        courier.remember_step_token(execution_id, event.get("bot_access_token"))
        request_id = step_request_id(execution_id)
        inputs = event.get("inputs") if isinstance(event.get("inputs"), dict) else {}
        details, requester, errors = read_inputs(
            inputs, deps.catalog.find_roles(), deps.catalog.find_teams()
        )
        if details is None or requester is None:
            finish(execution_id, None, steps.invalid_inputs(errors))
            return
        run = WorkflowStep(
            execution_id=execution_id, workflow_execution_id=event.get("workflow_execution_id")
        )
        try:  # stored before the ack; the same run delivered twice at once stores one
            # With the run's own id, the ask looks for its earlier request first (a retry).
            asked = service.ask(details, requester, None, id=request_id, step=run)
        except KeyError:
            return
        turned = asked.turned
        if turned is not None and getattr(turned.existing, "id", None) == request_id:
            log.info("step run %s: delivered again; request %s has it", execution_id, request_id)
        elif turned is not None and turned.why == "member":
            finish(execution_id, steps.member_outputs(turned.existing), None)
        elif turned is not None:
            finish(execution_id, None, steps.refused(turned))
        else:
            deps.later(after_asked, deps, asked.request, requester, None)

    def finish(execution_id: str, outputs: dict[str, Any] | None, error: str | None) -> None:
        """Kept in the store before the ack; completed right after it (or by the sweep)."""
        courier.complete_later(execution_id, outputs, error)
        deps.later(courier.finish_steps)

    # Acked by Bolt (auto_acknowledge) once the listener has returned: process_before_response
    # answers the event after it, so the request is stored when Slack hears 200.
    app.function(STEP_CALLBACK_ID)(invite_to_awork)
