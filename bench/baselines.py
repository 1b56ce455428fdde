"""The naive baseline for bench/ack_latency.py: a Bolt handler that asks awork *before* acking -
what not to do - served as the floor is (bench/floor.py: the bot's waitress set-up, copied, and
Bolt's WSGI adapter). Like the floor it imports nothing of the bot.

The floor the bot is held to is bench/floor.py; this file once held a "bare Bolt" baseline too,
which ran on Bolt's 10 ms polling runner, opened a one-field modal on 5 threads before later
acks and imported the whole bot: it flattered the bot and is gone.

Run: python bench/baselines.py naive PORT
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
from slack_bolt import App
from slack_sdk import WebClient

sys.path.insert(0, str(Path(__file__).resolve().parent))

from floor import FORM, serve  # bench/floor.py, by path: nothing of the bot comes along


def naive_app() -> App:
    awork = httpx.Client(
        base_url=os.environ["AWORK_API_URL"] + "/",
        headers={"Authorization": f"Bearer {os.environ['AWORK_API_KEY']}"},
    )
    app = App(
        name="naive",
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
            view={**FORM, "title": {"type": "plain_text", "text": f"{len(roles)} roles"}},
        )

    return app


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind != "naive":
        sys.exit("the floor is bench/floor.py; this script serves only `naive`")
    serve(naive_app(), port, int(os.environ.get("INVITE_THREADS", "64")))
