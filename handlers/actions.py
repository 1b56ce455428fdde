"""Buttons on the approval message: approve, deny (asks for a reason), try again."""

from __future__ import annotations

import logging

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.deps import Deps

log = logging.getLogger(__name__)


def register(app: App, deps: Deps) -> None:
    service = deps.service
    courier = deps.courier

    def approve(ack: Ack, body: dict) -> None:
        ack()
        user = body["user"]["id"]
        decision = service.approve(_request_id(body), user)
        if not decision.ok:
            courier.tell(user, _channel(body), blocks.refusal(decision.request, decision.refusal))
            return
        courier.sync(decision.request.id)  # "Approved by @x, inviting…"
        service.invite(decision.request.id)
        courier.sync(decision.request.id)

    def deny(ack: Ack, body: dict, client: WebClient) -> None:
        ack()
        user = body["user"]["id"]
        decision = service.can_deny(_request_id(body), user)
        if not decision.ok:
            courier.tell(user, _channel(body), blocks.refusal(decision.request, decision.refusal))
            return
        try:
            client.views_open(
                trigger_id=body["trigger_id"], view=blocks.deny_reason_modal(decision.request)
            )
        except SlackApiError as exc:
            log.warning("could not open the deny modal: %s", exc.response.get("error"))

    app.action(blocks.APPROVE)(approve)
    app.action(blocks.RETRY)(approve)
    app.action(blocks.DENY)(deny)


def _request_id(body: dict) -> str:
    actions = body.get("actions") or [{}]
    return str(actions[0].get("value") or "")


def _channel(body: dict) -> str | None:
    return (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
