"""HTTP mode: Bolt's WSGI adapter behind gunicorn's threaded worker."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from gunicorn.app.base import BaseApplication
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.app import Bot, build
from bot.config import Settings

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
log = logging.getLogger(__name__)


def wsgi_app(bot: Bot) -> Callable[..., Iterable[bytes]]:
    """Slack's requests at POST /slack/events, a health check at GET /healthz, else 404."""
    slack = SlackRequestHandler(bot.app, path=EVENTS_PATH)

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # Bolt parses the body before it checks the signature and raises on malformed JSON or
        # shapes it does not expect: that is a bad request, not a server error.
        try:
            return slack(environ, start_response)
        except Exception as exc:
            log.warning("refused a malformed request to %s: %s", EVENTS_PATH, type(exc).__name__)
            return _plain(start_response, "400 Bad Request", b"bad request\n")

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == EVENTS_PATH:
            if method == "POST":
                return guarded(environ, start_response)
            return _plain(
                start_response, "405 Method Not Allowed", b"POST only\n", [("Allow", "POST")]
            )
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            return _plain(start_response, "200 OK", b"ok\n")
        return _plain(start_response, "404 Not Found", b"not found\n")

    return application


def _plain(
    start_response: Callable[..., Any], status: str, body: bytes, headers: list | None = None
) -> list[bytes]:
    start_response(
        status,
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), *(headers or [])],
    )
    return [body]


class Server(BaseApplication):
    """gunicorn with one worker process and a thread pool.

    One process, because the store's compare-and-set lock is held within a process; the
    threads give the concurrency (acks are fast, slow awork work runs after them).
    """

    def __init__(self, settings: Settings, host: str, port: int) -> None:
        self.settings = settings
        self.bind = f"{host}:{port}"
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", self.bind)
        self.cfg.set("workers", 1)
        self.cfg.set("worker_class", "gthread")
        self.cfg.set("threads", self.settings.threads)
        self.cfg.set("timeout", 120)
        self.cfg.set("graceful_timeout", 30)
        self.cfg.set("keepalive", 5)
        self.cfg.set("loglevel", self.settings.log_level.lower())
        self.cfg.set("proc_name", "invite-bot")
        if "control_socket_disable" in self.cfg.settings:
            # gunicorn 27's runtime control socket is not used; several bots can share a host.
            self.cfg.set("control_socket_disable", True)

    def load(self) -> Callable[..., Iterable[bytes]]:
        # Built in the worker, so the background threads live where the requests are served.
        bot = build(self.settings)
        bot.start_background()
        # SIGTERM: gunicorn stops accepting and finishes open requests; then this lets the
        # invitations running after their acks finish too, and closes the store.
        self.cfg.set("worker_exit", lambda server, worker: bot.shutdown(timeout=25.0))
        return wsgi_app(bot)
