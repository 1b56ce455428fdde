"""Baseline for bench/ack_latency.py: the naive Bolt handler that asks awork *before* acking.

Served the same way as the bot (gunicorn gthread, Bolt's WSGI adapter), so the difference in
the figures is the ack-first design alone.
"""

from __future__ import annotations

import os
import sys

import httpx
from gunicorn.app.base import BaseApplication
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient


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
            view={
                "type": "modal",
                "title": {"type": "plain_text", "text": f"{len(roles)} roles"},
                "blocks": [],
            },
        )

    return app


class Server(BaseApplication):
    def __init__(self, port: int) -> None:
        self.port = port
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", f"127.0.0.1:{self.port}")
        self.cfg.set("worker_class", "gthread")
        self.cfg.set("threads", 64)
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)

    def load(self):
        handler = SlackRequestHandler(naive_app())

        def application(environ, start_response):
            if environ.get("PATH_INFO") == "/healthz":
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [b"ok"]
            return handler(environ, start_response)

        return application


if __name__ == "__main__":
    Server(int(sys.argv[1])).run()
