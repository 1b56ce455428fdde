"""`invite-bot serve` and `invite-bot sandbox`: what serves. Before the bot serves, what would
stop it - the port, the policy file, the Slack token, the store - is checked once and said in
one line."""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sqlite3
import sys
import threading
from typing import TYPE_CHECKING

from bot.runtime import allocator
from bot.runtime.config import Settings

if TYPE_CHECKING:
    from slack_sdk.web import SlackResponse


def cannot_listen(host: str, port: int, exc: Exception) -> str:
    """'cannot listen on HOST:PORT: why; …' for a port in use, out of range or a host that is
    not this machine's."""
    why = getattr(exc, "strerror", None) or str(exc).rstrip(".")
    return f"cannot listen on {host}:{port}: {why}; choose another --port (or --host)"


def listen_problem(host: str, port: int) -> str | None:
    """None when a server can listen on host:port (tried with a socket bound and closed,
    address reuse on, as the servers do); else why not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except (OSError, OverflowError) as exc:
        return cannot_listen(host, port, exc)
    return None


class SlackCheck:
    """The bot token, checked once before serving (auth.test), so that a bad one is a clear
    line, not a traceback. Its answer is handed on to the app (`build`), which would otherwise
    ask Slack the same again before it serves."""

    def __init__(self, settings: Settings) -> None:
        from bot.runtime.slack_clients import slack_client

        self.settings = settings
        self.answer: SlackResponse | None = None
        self.web = slack_client(settings)  # both checks' client

    def problem(self) -> str | None:
        from slack_sdk.errors import SlackApiError

        from bot.cli.doctor.slack import quiet_slack_sdk, unreachable

        try:
            with quiet_slack_sdk():  # its retries would each log three lines
                self.answer = self.web.auth_test()
        except SlackApiError as exc:
            return f"Slack refused SLACK_BOT_TOKEN ({exc.response.get('error')}); check the token"
        except OSError as exc:
            return unreachable(self.settings, exc)
        return None

    def socket_problem(self) -> str | None:
        """SLACK_APP_TOKEN refused, before anything starts (what Socket Mode's connect would
        meet only once the bot is built)."""
        from bot.cli.doctor.slack import APP_TOKEN_FIX, socket_token_problem

        problem = socket_token_problem(self.settings, self.web)
        return f"{problem}; {APP_TOKEN_FIX}" if problem else None


def serve(settings: Settings, args: argparse.Namespace) -> int:
    """Socket Mode (`--socket`, or SLACK_APP_TOKEN set without `--http`) or HTTP."""
    allocator.cap_arenas()  # before the threads start
    from bot.cli.doctor.policy import policy_problem
    from bot.cli.doctor.store import store_writable

    socket_mode = args.socket or (not args.http and settings.slack_app_token is not None)
    missing = settings.missing_for_serving(socket_mode)
    if missing:
        print(f"invite-bot: set {', '.join(missing)} (see README.md)", file=sys.stderr)
        return 2
    host, port = args.host or settings.host, args.port or settings.port
    slack = SlackCheck(settings)
    problem = (
        (None if socket_mode else listen_problem(host, port))
        # INVITE_POLICY's own mistakes before Slack is asked: nothing outside is needed for them.
        or policy_problem(settings)
        or slack.problem()
        or (slack.socket_problem() if socket_mode else None)
        # The store opens (its schema created or migrated) and takes a write.
        or store_writable(settings)
        # Then the policy's role and team names, against awork's as the store holds them.
        or policy_problem(settings, with_names=True)
    )
    if problem:
        print(f"invite-bot: {problem}", file=sys.stderr)
        return 2
    if socket_mode:
        problem = run_socket_mode(settings, slack)
        if problem:
            print(f"invite-bot: {problem}", file=sys.stderr)
            return 2
        return 0
    from bot.runtime.web import Server

    Server(settings, host, port, slack.answer).run()
    return 0


def run_socket_mode(settings: Settings, slack: SlackCheck | None = None) -> str | None:
    """Socket Mode through Bolt's SocketModeHandler; SIGTERM/SIGINT stop it gracefully. What
    kept it from connecting (SLACK_APP_TOKEN refused, Slack out of reach), in one line."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_sdk.errors import SlackApiError

    from bot.cli.doctor.slack import APP_TOKEN_FIX, socket_refusal
    from bot.runtime.app import build, started

    bot = build(settings, slack_auth=slack and slack.answer)
    started()
    bot.start_background()
    handler = SocketModeHandler(bot.app, settings.slack_app_token.get_secret_value())
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        handler.connect()
    except (SlackApiError, OSError) as exc:  # refused since the check before start
        bot.shutdown()
        refusal = socket_refusal(settings, exc)
        return f"{refusal}; {APP_TOKEN_FIX}" if isinstance(exc, SlackApiError) else refusal
    logging.getLogger(__name__).info("connected in Socket Mode")
    stop.wait()
    handler.close()
    bot.shutdown()
    return None


def run_sandbox(args: argparse.Namespace) -> int:
    from bot.awork.sandbox import Sandbox
    from bot.awork.sandbox_http import http_server

    sandbox: Sandbox | None = None
    try:  # the port first: one in use leaves no sandbox file behind
        server = http_server(lambda request: sandbox.handle(request), args.host, args.port)
    except (OSError, OverflowError) as exc:
        print(f"invite-bot: {cannot_listen(args.host, args.port, exc)}", file=sys.stderr)
        return 2
    try:
        sandbox = Sandbox(
            args.db,
            per_second=args.per_second,
            per_minute=args.per_minute,
            seats=args.seats,
            api_key=args.api_key,
        )
    except (OSError, sqlite3.Error) as exc:
        server.server_close()
        why = getattr(exc, "strerror", None) or str(exc)
        print(
            f"invite-bot: cannot keep the sandbox in {args.db}: {why}; give --db a file in a folder you may write to",
            file=sys.stderr,
        )
        return 2
    host, port = server.server_address[:2]
    guard = (
        "only requests with 'Authorization: Bearer <--api-key>' are answered"
        if args.api_key
        else f"no --api-key, so it answers anyone who can reach {host}:{port}"
    )
    print(
        f"awork sandbox at http://{host}:{port}/api/v1 (workspace {sandbox.workspace_id}); "
        f"{guard}; no real invitation is sent. Ctrl-C stops it.",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sandbox.close()
    return 0
