"""Signed Slack requests, shaped like the captured payloads in tests/fixtures/slack/.

Each call builds the wire body Slack would send, signs it with the app's signing secret
(slack_sdk's SignatureVerifier), and dispatches it through the real Bolt app.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from slack_bolt import App, BoltResponse
from slack_bolt.request import BoltRequest
from slack_sdk.signature import SignatureVerifier

from bot.ui import forms, mrkdwn

FIXTURES = Path(__file__).parent / "fixtures" / "slack"
ADMIN_CHANNEL = "CADMIN"
GENERAL = "CGENERAL"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def state_for(view: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """`view.state.values` as Slack sends it for these field values (block id = action id)."""
    elements = {b["block_id"]: b["element"] for b in view["blocks"] if b.get("type") == "input"}
    values: dict[str, Any] = {}
    for block_id, value in fields.items():
        kind = elements[block_id]["type"]
        if kind in ("plain_text_input", "number_input"):
            state = {"type": kind, "value": None if value is None else str(value)}
        elif kind in ("static_select", "external_select", "radio_buttons"):
            state = {
                "type": kind,
                "selected_option": {"text": mrkdwn.plain(str(value)), "value": value}
                if value
                else None,
            }
        elif kind in ("multi_external_select", "multi_static_select"):
            state = {
                "type": kind,
                "selected_options": [{"text": mrkdwn.plain(v), "value": v} for v in value],
            }
        elif kind == "checkboxes":
            opts = elements[block_id]["options"]
            state = {"type": kind, "selected_options": opts if value else []}
        elif kind == "file_input":
            state = {"type": kind, "files": value}
        else:
            raise ValueError(kind)
        values[block_id] = {block_id: state}
    return values


class SlackDriver:
    def __init__(self, app: App, signing_secret: str, response_url: str | None = None) -> None:
        self.app = app
        self.verifier = SignatureVerifier(signing_secret)
        self.response_url = response_url  # clicks carry it instead of the captured one

    def send(
        self,
        body: str,
        content_type: str = "application/x-www-form-urlencoded",
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> BoltResponse:
        timestamp = int(time.time()) if timestamp is None else timestamp
        headers = {
            "content-type": [content_type],
            "x-slack-request-timestamp": [str(timestamp)],
            "x-slack-signature": [
                signature or self.verifier.generate_signature(timestamp=str(timestamp), body=body)
            ],
        }
        return self.app.dispatch(BoltRequest(body=body, headers=headers))

    def command_body(
        self, text: str = "", user: str = "UREQ", channel: str = GENERAL, command: str = "/invite"
    ) -> str:
        payload = fixture("slash_command_bolt_tests.json")["payload"]
        payload.update(
            command=command,
            text=text,
            user_id=user,
            user_name=user.lower(),
            channel_id=channel,
            trigger_id=f"trig.{time.monotonic_ns()}",
        )
        return urlencode(payload)

    def command(self, text: str = "", user: str = "UREQ", channel: str = GENERAL) -> BoltResponse:
        return self.send(self.command_body(text, user, channel))

    def interactive(self, payload: dict[str, Any]) -> BoltResponse:
        return self.send(urlencode({"payload": json.dumps(payload)}))

    def view_submission(
        self, view: dict[str, Any], fields: dict[str, Any], user: str
    ) -> BoltResponse:
        payload = copy.deepcopy(
            fixture("view_submission_real_capture_slack_machine.json")["payload"]
        )
        payload["user"].update(id=user, username=user.lower(), name=user.lower())
        sent_view = copy.deepcopy(view)
        sent_view.update(id="V1", state={"values": state_for(view, fields)}, team_id="TQSD32X16")
        payload["view"] = {**payload["view"], **sent_view}
        return self.interactive(payload)

    def submit_form(
        self,
        fields: dict[str, Any],
        user: str = "UREQ",
        channel: str = GENERAL,
        advanced: bool = False,
    ) -> BoltResponse:
        return self.view_submission(forms.invite_form(channel, advanced=advanced), fields, user)

    def click(
        self,
        action_id: str,
        request_id: str,
        user: str,
        channel: str = ADMIN_CHANNEL,
        ts: str = "1715342584.374249",
    ) -> BoltResponse:
        payload = copy.deepcopy(
            fixture("block_actions_message_button_real_capture_slack_machine.json")["payload"]
        )
        payload["user"].update(id=user, username=user.lower(), name=user.lower())
        payload["container"].update(channel_id=channel, message_ts=ts)
        payload["channel"] = {"id": channel, "name": "invite-approvals"}
        payload["trigger_id"] = f"trig.{time.monotonic_ns()}"
        payload["state"] = {"values": {}}
        if self.response_url:
            payload["response_url"] = self.response_url
        payload["actions"] = [
            {
                "action_id": action_id,
                "block_id": f"decide-{request_id}",
                "type": "button",
                "value": request_id,
                "text": mrkdwn.plain(action_id),
                "action_ts": str(time.time()),
            }
        ]
        return self.interactive(payload)

    def options(self, action_id: str, value: str, user: str = "UREQ") -> BoltResponse:
        name = (
            "block_suggestion_multi_external_select_bolt.json"
            if action_id == "teamIds"
            else "block_suggestion_external_select_bolt.json"
        )
        payload = copy.deepcopy(fixture(name)["payload"])
        payload["user"]["id"] = user
        payload.update(action_id=action_id, block_id=action_id, value=value)
        payload["view"]["callback_id"] = forms.INVITE_FORM
        return self.interactive(payload)

    def submit_deny(self, request_id: str, reason: str, user: str) -> BoltResponse:
        from bot.domain.details import InviteDetails
        from bot.domain.records import InviteRequest

        view = forms.deny_reason_modal(
            InviteRequest(
                id=request_id, requester_id="x", details=InviteDetails(email="x@example.com")
            )
        )
        return self.view_submission(view, {"reason": reason}, user)
