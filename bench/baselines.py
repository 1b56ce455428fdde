"""Baselines for bench/ack_latency.py, served exactly as the bot is (bot.runtime.web's waitress server,
Bolt's WSGI adapter, the same threads and request deadline):

Same waitress settings and the same process tuning (heap frozen, 1 ms switch interval).

- `bare`: a bare Bolt app that only acks `/invite` and opens a one-field modal, written the
  way Bolt's documentation writes it (`ack()`, then `client.views_open`). The bot's ack must
  stay within 1.2x of this.
- `naive`: a Bolt handler that asks awork *before* acking - what not to do.

Run: python bench/baselines.py bare|naive PORT
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import httpx
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.runtime.web import create_server

ONE_FIELD = {
    "type": "modal",
    "callback_id": "invite_form",
    "title": {"type": "plain_text", "text": "Invite to awork"},
    "submit": {"type": "plain_text", "text": "Send"},
    "blocks": [
        {
            "type": "input",
            "block_id": "email",
            "label": {"type": "plain_text", "text": "Email"},
            "element": {"type": "plain_text_input", "action_id": "email"},
        }
    ],
}


def bare_app() -> App:
    app = App(
        client=WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"]),
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
    )

    @app.command("/invite")
    def invite(ack, body, client):
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=ONE_FIELD)

    return app


def naive_app() -> App:
    awork = httpx.Client(
        base_url=os.environ["AWORK_API_URL"] + "/",
        headers={"Authorization": f"Bearer {os.environ['AWORK_API_KEY']}"},
    )
    app = App(
        client=WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"]),
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        process_before_response=True,
    )

    @app.command("/invite")
    def invite(ack, body, client):
        roles = awork.get("roles").json()  # slow work before the ack: what not to do
        ack()
        client.views_open(
            trigger_id=body["trigger_id"],
            view={**ONE_FIELD, "title": {"type": "plain_text", "text": f"{len(roles)} roles"}},
        )

    return app


def serve(app: App, port: int) -> None:
    handler = SlackRequestHandler(app)

    def application(environ, start_response):
        if environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        return handler(environ, start_response)

    threads = int(os.environ.get("INVITE_THREADS", "64"))
    server = create_server(application, "127.0.0.1", port, threads=threads, body_timeout=5)
    # The process tuning bot.web.Server does too, so that only the app code differs.
    gc.freeze()
    sys.setswitchinterval(0.001)
    server.run()


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    serve(bare_app() if kind == "bare" else naive_app(), port)
