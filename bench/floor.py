"""The floor of this stack: a bare Bolt app on the bot's server, importing nothing of the bot.

What the bot is compared with in bench/hot_paths.py (and bench/ack_latency.py). It is served as
the bot is - waitress with the settings of bot/runtime/web.py (threads, request deadline,
connection limit, buffers; copied here, not imported), Bolt's WSGI adapter, listeners acking
inline (`process_before_response=True`, not Bolt's runner that polls for the ack every 10 ms),
the heap frozen after start and a 1 ms switch interval - and it makes the same Slack calls
after the ack, on the same kind of pools (8 threads for modals, INVITE_THREADS for the rest):

- `/invite` (no text): ack, then `views.open` with a form of the invite form's ten fields;
- `/invite a@x.com`: ack, then the approval post (`chat.postMessage`) and an ephemeral;
- an Approve click: ack, then `chat.update` of the message and a DM (`chat.postMessage`);
- the role picker's options: answered in the ack, from a list in memory; no Slack call;
- `app_home_opened`: ack, then `views.publish`.

Nothing is stored: the floor is what Slack, Bolt and the server cost, which the bot cannot
go below. `GET /healthz` answers 200 for start-up timing.

With `--libraries` it first imports the libraries the bot is built on (LIBRARIES: pydantic
with its BaseModel, pydantic-settings, httpx, prometheus_client, sqlitedict) and uses none of
them, as the bot imports them (without httpx's command-line client): what those cost in
start-up and memory before any code of the bot's runs, so that the bot's own share can be told
apart from its stack's.
Run: python bench/floor.py PORT [--libraries]
     (env: SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_API_URL)
"""

from __future__ import annotations

import gc

gc.disable()  # as `invite-bot serve` starts: no collections until it serves

import importlib  # noqa: E402 - after the collector is off, as the bot's own
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

from slack_bolt import App  # noqa: E402
from slack_bolt.adapter.wsgi import SlackRequestHandler  # noqa: E402
from slack_sdk import WebClient  # noqa: E402
from waitress.adjustments import Adjustments  # noqa: E402
from waitress.channel import HTTPChannel  # noqa: E402
from waitress.server import TcpWSGIServer  # noqa: E402
from waitress.task import ThreadedTaskDispatcher  # noqa: E402


def _text(text: str) -> dict:
    return {"type": "plain_text", "text": text, "emoji": True}


def _field(name: str, label: str, element: dict, optional: bool = True) -> dict:
    return {
        "type": "input",
        "block_id": name,
        "label": _text(label),
        "optional": optional,
        "element": {**element, "action_id": name},
    }


def _options(*pairs: tuple[str, str]) -> list[dict]:
    return [{"text": _text(text), "value": value} for text, value in pairs]


TEXT = {"type": "plain_text_input", "max_length": 100}
FORM = {  # the fields of the bot's invite form, as a bare app would write them
    "type": "modal",
    "callback_id": "invite_form",
    "title": _text("Invite to awork"),
    "submit": _text("Ask for approval"),
    "close": _text("Cancel"),
    "blocks": [
        _field("email", "Email", {"type": "plain_text_input", "max_length": 254}, False),
        _field("firstName", "First name", TEXT),
        _field("lastName", "Last name", TEXT),
        _field("title", "Title", TEXT),
        _field("position", "Position", {**TEXT, "max_length": 200}),
        _field(
            "gender",
            "Gender",
            {
                "type": "static_select",
                "options": _options(("Male", "male"), ("Female", "female"), ("Other", "other")),
            },
        ),
        _field("roleId", "Role", {"type": "external_select", "min_query_length": 0}),
        _field("teamIds", "Teams", {"type": "multi_external_select", "min_query_length": 0}),
        _field(
            "skipSendingEmail",
            "Welcome email",
            {"type": "checkboxes", "options": _options(("Don't send the welcome email", "true"))},
        ),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "An approver decides."}]},
    ],
}
ROLES = _options(("Admin", "role-admin"), ("Member", "role-member"), ("Guest", "role-guest"))
ADMIN_CHANNEL = os.environ.get("INVITE_ADMIN_CHANNEL", "CADMIN")


def approval_blocks(email: str, requester: str) -> list[dict]:
    return [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*<@{requester}> asks to invite {email}*"},
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "Role: Member"}]},
        {
            "type": "actions",
            "block_id": "decide",
            "elements": [
                {
                    "type": "button",
                    "action_id": "approve_invite",
                    "text": _text("Approve"),
                    "style": "primary",
                    "value": email,
                },
                {
                    "type": "button",
                    "action_id": "deny_invite",
                    "text": _text("Deny"),
                    "style": "danger",
                    "value": email,
                },
            ],
        },
    ]


def floor_app(threads: int) -> App:
    token, base_url = os.environ["SLACK_BOT_TOKEN"], os.environ["SLACK_API_URL"]
    app = App(
        name="floor",  # as the bot does: unnamed, Bolt inspects the call stack at start
        client=WebClient(token=token, base_url=base_url),
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        process_before_response=True,
    )
    followups = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="listener")
    modals = ThreadPoolExecutor(max_workers=8, thread_name_prefix="modal")
    modal_client = WebClient(token=token, base_url=base_url, timeout=2.5)

    @app.command("/invite")
    def invite(ack, body, client):
        text = (body.get("text") or "").strip()
        ack()
        if not text:
            modals.submit(modal_client.views_open, trigger_id=body["trigger_id"], view=FORM)
            return
        user, channel = body["user_id"], body["channel_id"]

        def after() -> None:
            client.chat_postMessage(
                channel=ADMIN_CHANNEL,
                text=f"Invitation request for {text} from <@{user}>",
                blocks=approval_blocks(text, user),
            )
            client.chat_postEphemeral(
                channel=channel, user=user, text=f"Your request to invite {text} is waiting."
            )

        followups.submit(after)

    @app.action("approve_invite")
    def approve(ack, body, client):
        ack()
        email = body["actions"][0]["value"]
        channel, ts = body["container"]["channel_id"], body["container"]["message_ts"]
        approver = body["user"]["id"]

        def after() -> None:
            client.chat_update(
                channel=channel,
                ts=ts,
                text=f"Approved by <@{approver}>",
                blocks=approval_blocks(email, approver)[:2],
            )
            client.chat_postMessage(channel=approver, text=f"{email} is invited to awork.")

        followups.submit(after)

    @app.options("roleId")
    def roles(ack, body):
        query = (body.get("value") or "").lower()
        ack(options=[o for o in ROLES if query in o["text"]["text"].lower()])

    @app.event("app_home_opened")
    def home(event, client):
        user = event.get("user", "")

        def after() -> None:
            blocks = [
                {"type": "section", "text": {"type": "mrkdwn", "text": "*Your requests: 0*"}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "None yet."}]},
            ]
            client.views_publish(user_id=user, view={"type": "home", "blocks": blocks})

        followups.submit(after)

    app.followups = followups  # for bench/ack_cpu.py, which holds the work after the acks back
    return app


# -- the bot's waitress set-up (bot/runtime/web.py), copied: same settings, same deadline ---


class DeadlineChannel(HTTPChannel):
    request_started: float | None = None

    def received(self, data: bytes) -> bool:
        if data and self.request is None and self.request_started is None:
            self.request_started = time.monotonic()
        handled = super().received(data)
        if self.request is None:
            self.request_started = None
        return handled


class DeadlineServer(TcpWSGIServer):
    channel_class = DeadlineChannel

    def maintenance(self, now: float) -> None:
        super().maintenance(now)
        cutoff = time.monotonic() - self.adj.channel_timeout
        for channel in list(self.active_channels.values()):
            started = getattr(channel, "request_started", None)
            if started is not None and started < cutoff and not channel.requests:
                channel.will_close = True


def create_server(app, host: str, port: int, threads: int, body_timeout: float):
    adj = Adjustments(
        host=host,
        port=port,
        threads=threads,
        connection_limit=8192,
        max_request_body_size=1_000_000,
        inbuf_overflow=64 * 1024,
        max_request_header_size=64 * 1024,
        asyncore_use_poll=True,
        backlog=1024,
        ident="floor",
        expose_tracebacks=False,
        clear_untrusted_proxy_headers=True,
    )
    # The deadline and how often it is looked at, in seconds as given (waitress's settings
    # take whole seconds), as bot/runtime/web.py sets them.
    adj.channel_timeout = body_timeout
    adj.cleanup_interval = max(0.1, min(1.0, body_timeout / 10))
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    return DeadlineServer(app, {}, dispatcher=dispatcher, adj=adj, sockinfo=adj.listen[0])


def serve(app: App, port: int, threads: int) -> None:
    """`app` at POST /slack/events and 200 at GET /healthz, on the bot's waitress set-up."""
    slack = SlackRequestHandler(app)

    def application(environ, start_response):
        if environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
            return [b"ok\n"]
        return slack(environ, start_response)

    body_timeout = float(os.environ.get("HTTP_BODY_TIMEOUT", "5"))
    server = create_server(application, "127.0.0.1", port, threads, body_timeout)
    # The bot's process tuning too (bot.runtime.app.started), so that only the app code differs.
    gc.collect()
    gc.freeze()
    gc.enable()
    sys.setswitchinterval(0.001)
    server.run()


LIBRARIES = ("pydantic.main", "pydantic_settings", "httpx", "prometheus_client", "sqlitedict")


def main() -> None:
    if "--libraries" in sys.argv[2:]:
        # As the bot's package does (bot/__init__.py): httpx's own command-line client (click,
        # rich, pygments: ~80 modules) stays out, which it would import whenever they are
        # installed, as the dev extras install them.
        sys.modules.setdefault("httpx._main", None)
        for name in LIBRARIES:
            importlib.import_module(name)
    threads = int(os.environ.get("INVITE_THREADS", "16"))
    serve(floor_app(threads), int(sys.argv[1]), threads)


if __name__ == "__main__":
    main()
