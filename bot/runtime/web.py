"""HTTP mode: Bolt's WSGI adapter on waitress, with health, readiness and metrics endpoints.

waitress reads each request - headers and body - in its event loop and hands it to a worker
thread only once it is complete, so a slow or stalled client holds a socket, never a thread.
Each request must arrive whole within `HTTP_BODY_TIMEOUT` seconds of its first byte, and idle
connections close after the same time; bodies over `MAX_BODY` bytes get a 413.
"""

from __future__ import annotations

import logging
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web import SlackResponse
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import MultiSocketServer, TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher, WSGITask

from bot.runtime import metrics
from bot.runtime.app import Bot, build, started
from bot.runtime.config import Settings
from bot.runtime.deps import ACKS
from bot.runtime.logs import REQUEST_ID, REQUEST_ID_HEADER, Throttled, new_request_id
from bot.runtime.signing import HTTP_REQUEST
from bot.store import budget

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
MAX_BODY = 1_000_000  # Slack's largest payloads (a full modal's state) are far below this
CONNECTION_LIMIT = 8192  # open sockets; a stalled one costs a file descriptor, not a thread
BUFFERED = 64 * 1024  # a body beyond this waits in a temporary file, not in memory
log = logging.getLogger(__name__)

Wsgi = Callable[..., Iterable[bytes]]


class EventsHandler(SlackRequestHandler):
    """Bolt's WSGI adapter, which also tells Bolt the request's method and path (the signature
    check names them when it refuses one)."""

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        return self.app.dispatch(
            BoltRequest(
                body=request.get_body(),
                query=request.query_string,
                headers=request.get_headers(),
                context={HTTP_REQUEST: f"{request.method} {request.path}"},
            )
        )


def wsgi_app(bot: Bot) -> Wsgi:
    """Slack's requests at POST /slack/events; /healthz, /readyz and /metrics; else 404."""
    slack = EventsHandler(bot.app, path=EVENTS_PATH)
    # Anyone can post a request without a timestamp or with a broken body: one line per 10 s.
    refused, malformed = Throttled(log), Throttled(log)

    def events(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        stamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "")
        length = environ.get("CONTENT_LENGTH") or 0
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            # Bolt would raise on int() and answer 200 with a stack trace in the log.
            refused.warning("refused POST %s (%s bytes): no valid timestamp", EVENTS_PATH, length)
            return _plain(start_response, "401 Unauthorized", b"invalid request\n")
        # Bolt parses the body before it checks the signature and raises on malformed JSON or
        # shapes it does not expect: that is a bad request, not a server error.
        try:
            return slack(environ, start_response)
        except Exception as exc:
            malformed.warning(
                "refused POST %s (%s bytes): malformed (%s)",
                EVENTS_PATH,
                length,
                type(exc).__name__,
            )
            return _plain(start_response, "400 Bad Request", b"bad request\n")

    def route(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == EVENTS_PATH:
            if method == "POST":
                return events(environ, start_response)
            return _plain(
                start_response, "405 Method Not Allowed", b"POST only\n", [("Allow", "POST")]
            )
        if method not in ("GET", "HEAD"):
            return _plain(start_response, "404 Not Found", b"not found\n")
        if path == HEALTH_PATH:
            return _plain(start_response, "200 OK", b"ok\n")
        if path == READY_PATH:
            problem = bot.not_ready()
            if problem:
                return _plain(start_response, "503 Service Unavailable", f"{problem}\n".encode())
            return _plain(start_response, "200 OK", b"ready\n")
        if path == METRICS_PATH:
            body = generate_latest()
            return _plain(start_response, "200 OK", body, content_type=CONTENT_TYPE_LATEST)
        return _plain(start_response, "404 Not Found", b"not found\n")

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # When the request had arrived whole: the time it waited for this thread counts.
        arrived = environ.get(ARRIVED_ENVIRON) or time.monotonic()
        request_id = new_request_id()
        token = REQUEST_ID.set(request_id)
        environ[REQUEST_ID_ENVIRON] = request_id  # for Bolt's middleware (logs.tag_request)
        status: list[str] = []

        def recording_start(code: str, headers: list, *exc_info: Any) -> Any:
            status.append(code.split(" ", 1)[0])
            return start_response(code, headers, *exc_info)

        try:
            if environ.get("PATH_INFO") == EVENTS_PATH:
                # The budget from the arrival; Bolt's dispatch opens one from now inside it,
                # and the earlier end counts (bot/store/budget.py).
                with ACKS.answering(), budget.ack_budget(since=arrived):
                    return route(environ, recording_start)
            return route(environ, recording_start)
        finally:
            REQUEST_ID.reset(token)
            path = environ.get("PATH_INFO", "")
            endpoint = path if path in KNOWN_PATHS else "other"
            metrics.HTTP_REQUESTS.labels(endpoint, status[0] if status else "500").inc()
            if endpoint == EVENTS_PATH:
                metrics.ACK_SECONDS.labels("http").observe(time.monotonic() - arrived)

    return application


KNOWN_PATHS = {EVENTS_PATH, HEALTH_PATH, READY_PATH, METRICS_PATH}
REQUEST_ID_ENVIRON = "HTTP_" + REQUEST_ID_HEADER.upper().replace("-", "_")
ARRIVED_ENVIRON = "invite_bot.arrived"  # the monotonic time the request had arrived whole


def _plain(
    start_response: Callable[..., Any],
    status: str,
    body: bytes,
    headers: list | None = None,
    content_type: str = "text/plain",
) -> list[bytes]:
    start_response(
        status,
        [("Content-Type", content_type), ("Content-Length", str(len(body))), *(headers or [])],
    )
    return [body]


class ArrivedTask(WSGITask):
    """waitress's WSGI task, telling the application when its request had arrived whole."""

    def get_environment(self) -> dict[str, Any]:
        environ = super().get_environment()
        environ[ARRIVED_ENVIRON] = getattr(self.request, "arrived", None)
        return environ


class DeadlineChannel(HTTPChannel):
    """A connection that notes when its current request began to arrive, and when each request
    had arrived whole (then it waits for a thread)."""

    request_started: float | None = None
    task_class = ArrivedTask

    def received(self, data: bytes) -> bool:
        now = time.monotonic()
        if data and self.request is None and self.request_started is None:
            self.request_started = now
        handled = super().received(data)
        if self.request is None:  # complete (handed to a worker) or nothing pending
            self.request_started = None
        with self.requests_lock:
            for request in self.requests:
                if getattr(request, "arrived", None) is None:
                    request.arrived = now
        return handled


class DeadlineServer(TcpWSGIServer):
    """waitress's server, closing connections whose request is not complete in time."""

    channel_class = DeadlineChannel

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # idle connections, by waitress's channel_timeout
        cutoff = time.monotonic() - self.adj.channel_timeout
        for channel in list(self.active_channels.values()):
            started = getattr(channel, "request_started", None)
            if started is not None and started < cutoff and not channel.requests:
                channel.will_close = True


def timed(adj: Adjustments, body_timeout: float) -> None:
    """The request deadline and how often it is looked at (a tenth of it, at least every
    second), in seconds as given: waitress's own settings take whole seconds (0.5 would be 0,
    closing every connection at once, and the tenth of 5 s would be a look at every turn)."""
    adj.channel_timeout = body_timeout
    adj.cleanup_interval = max(0.1, min(1.0, body_timeout / 10))


def create_server(app: Wsgi, host: str, port: int, threads: int, body_timeout: float) -> Any:
    """waitress with a request deadline: one server per address `host` resolves to."""
    adj = Adjustments(
        host=host,
        port=port,
        threads=threads,
        connection_limit=CONNECTION_LIMIT,
        max_request_body_size=MAX_BODY,
        inbuf_overflow=BUFFERED,
        max_request_header_size=64 * 1024,
        asyncore_use_poll=True,  # select() stops at 1,024 sockets
        backlog=1024,
        ident="invite-bot",
        expose_tracebacks=False,
        clear_untrusted_proxy_headers=True,
    )
    timed(adj, body_timeout)
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    shared: dict = {}
    servers = [
        DeadlineServer(app, shared, dispatcher=dispatcher, adj=adj, sockinfo=sockinfo)
        for sockinfo in adj.listen
    ]
    if len(servers) == 1:
        return servers[0]
    listening = [(server.effective_host, server.effective_port) for server in servers]
    return MultiSocketServer(shared, adj, listening, dispatcher)


def allow_many_sockets(wanted: int) -> None:
    """Raise the soft limit on open files towards `wanted` (within the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class Server:
    """One process: waitress's event loop reads requests, its threads run Bolt (each listener
    acks inline and hands slow work to the follow-up pool), and SIGTERM stops gracefully."""

    def __init__(
        self,
        settings: Settings,
        host: str,
        port: int,
        slack_auth: SlackResponse | None = None,
    ) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self.slack_auth = slack_auth  # auth.test's answer before serving (bot.cli.serve)

    def run(self) -> None:
        allow_many_sockets(CONNECTION_LIMIT + 2 * self.settings.threads + 64)
        # Bolt keeps the token check's answer (auth.test), or asks Slack for one: without it,
        # the first request would ask Slack before its ack.
        bot = build(self.settings, slack_auth=self.slack_auth)
        server = create_server(
            wsgi_app(bot),
            self.host,
            self.port,
            threads=self.settings.threads,
            body_timeout=self.settings.http_body_timeout,
        )
        started()  # before the threads below: what they make is not frozen for good
        bot.start_background()
        threading.Thread(target=bot.warm_up, name="warm-up", daemon=True).start()
        # A thread that has answered Slack's socket waits for the interpreter lock while the
        # follow-up work (views.open, posts) holds it: 1 ms turns instead of 5 ms keep acks
        # from queueing behind it.
        sys.setswitchinterval(0.001)

        def stop(signum: int, _frame: Any) -> None:
            raise SystemExit(0)  # waitress's loop ends and lets its workers finish

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, stop)
        log.info("serving Slack at http://%s:%s%s", self.host, self.port, EVENTS_PATH)
        try:
            server.run()
        finally:
            server.close()
            bot.shutdown(timeout=25.0)
