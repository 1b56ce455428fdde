"""Modal submissions: the invite form and the deny reason."""

from __future__ import annotations

import json
import logging

from slack_bolt import Ack, App

from bot import blocks
from bot.deps import Deps
from bot.models import parse_details
from handlers.actions import run_approval

log = logging.getLogger(__name__)


def register(app: App, deps: Deps) -> None:
    service = deps.service

    def submit_invite(ack: Ack, body: dict, view: dict) -> None:
        requester = body["user"]["id"]
        details, errors = parse_details(blocks.form_fields(view.get("state", {}).get("values", {})))
        if details is not None and details.uses_advanced() and not service.is_approver(requester):
            errors = {"email": "Only approvers may use the advanced options."}
        if not errors:
            duplicate = service.duplicate_of(details)
            if duplicate is not None:
                kind, existing = duplicate
                link = blocks.permalink(
                    (body.get("team") or {}).get("domain"), existing and existing.approval_message
                )
                errors = {"email": blocks.duplicate_error(kind, existing, link)}
        if errors:
            ack(response_action="errors", errors=_on_blocks(errors, view))
            return
        origin = _origin_channel(view)
        # Stored before anything else: a crash after this line loses nothing.
        request = service.submit(details, requester, origin)
        ack()
        deps.courier.sync(request.id)
        if deps.settings.invite_self_approve and service.is_approver(requester):
            # An approver's own request needs no one else (but an admin role still needs two).
            run_approval(deps, request.id, requester, origin, own_allowed=True)

    def submit_deny_reason(ack: Ack, body: dict, view: dict) -> None:
        request_id = view.get("private_metadata", "")
        values = blocks.form_fields(view.get("state", {}).get("values", {}))
        reason = (values.get("reason") or "").strip()
        if not reason:
            ack(response_action="errors", errors={"reason": "Please give a reason."})
            return
        if len(reason) > blocks.REASON_MAX:
            ack(
                response_action="errors",
                errors={"reason": f"At most {blocks.REASON_MAX} characters."},
            )
            return
        decision = service.deny(request_id, body["user"]["id"], reason)
        if not decision.ok:
            ack(
                response_action="errors",
                errors={"reason": blocks.refusal(decision.request, decision.refusal)},
            )
            return
        ack()
        deps.courier.sync(request_id)

    app.view(blocks.INVITE_FORM)(submit_invite)
    app.view(blocks.DENY_REASON)(submit_deny_reason)


def _on_blocks(errors: dict[str, str], view: dict) -> dict[str, str]:
    """Field errors keyed by block ids that exist in the view (Slack rejects others)."""
    present = {block.get("block_id") for block in view.get("blocks", [])}
    shown: dict[str, str] = {}
    for field, message in errors.items():
        key = field if field in present else "email"
        shown[key] = shown[key] + " " + message if key in shown else message
    return shown


def _origin_channel(view: dict) -> str | None:
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return None
    channel = metadata.get("channel") if isinstance(metadata, dict) else None
    return channel if isinstance(channel, str) and channel else None
