"""`invite-bot` / `python -m bot`: the command line."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from bot.runtime import logs
from bot.runtime.config import Settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="invite-bot", description="Slack bot that invites people to awork."
    )
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the bot")
    mode = serve.add_mutually_exclusive_group()
    mode.add_argument(
        "--http", action="store_true", help="serve Slack's requests at POST /slack/events"
    )
    mode.add_argument(
        "--socket", action="store_true", help="connect with Socket Mode (SLACK_APP_TOKEN)"
    )
    serve.add_argument("--host", help="HTTP bind address (default HOST or 0.0.0.0)")
    serve.add_argument("--port", type=int, help="HTTP port (default PORT or 3000)")
    audit = commands.add_parser("audit", help="print the audit log of requests and decisions")
    audit.add_argument(
        "--since",
        type=parse_since,
        help="only events from this date or time on (ISO 8601, UTC unless given)",
    )
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    shell = commands.add_parser(
        "shell", help="try the bot in this terminal (the awork sandbox unless AWORK_API_KEY)"
    )
    shell.add_argument("--db", help="keep the shell's store in this file (default: a temp dir)")
    shell.add_argument(
        "--seats", type=int, default=25, help="booked seats of its new sandbox (default 25)"
    )
    sandbox = commands.add_parser(
        "sandbox", help="serve the awork sandbox over HTTP (awork's paths, errors, rate limit)"
    )
    sandbox.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    sandbox.add_argument("--port", type=int, default=8081, help="port (default 8081)")
    sandbox.add_argument(
        "--db", default="./awork-sandbox.sqlite", help="its state (default ./awork-sandbox.sqlite)"
    )
    sandbox.add_argument("--per-second", type=int, default=50, help="rate limit per second")
    sandbox.add_argument("--per-minute", type=int, default=1000, help="rate limit per minute")
    sandbox.add_argument("--seats", type=int, default=25, help="booked seats of a new sandbox")
    sandbox.add_argument(
        "--api-key",
        help="answer only requests with 'Authorization: Bearer KEY' (default: anyone on the port)",
    )
    commands.add_parser(
        "doctor",
        help="check this installation (Slack token, scopes, channel, approvers, awork, links, store)",
    )
    manifest = commands.add_parser(
        "manifest", help="print the Slack app manifest with this bot's address filled in"
    )
    manifest.add_argument("--url", help="the bot's public https:// address (HTTP mode)")
    manifest.add_argument(
        "--command",
        dest="slash_command",  # `command` is the subcommand's
        default="/invite",
        help="the slash command: /invite (default) or /awork-invite",
    )
    manifest.add_argument(
        "--socket", action="store_true", help="Socket Mode: no request URLs, SLACK_APP_TOKEN"
    )
    commands.add_parser(
        "migrate",
        help="create or upgrade the store's schema (INVITE_DATABASE_URL or INVITE_DB_PATH)",
    )
    export = commands.add_parser(
        "export",
        help="write the whole store (requests, archive, audit, state) to a JSON-lines file",
    )
    export.add_argument("file", help="where to write it ('-' for standard output)")
    load = commands.add_parser(
        "import", help="read an export into the configured store (what exists is kept)"
    )
    load.add_argument("file", help="an export file ('-' for standard input)")
    return parser


def parse_since(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or time: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def existing_store(settings: Settings, must_exist: bool = True):  # -> Store | None
    """The configured store (its schema created or upgraded), or None with a line on stderr:
    a store file that is missing (when it `must_exist`), or one that cannot be opened."""
    file_store = not settings.invite_database_url
    if must_exist and file_store and not Path(settings.invite_db_path).exists():
        print(
            f"invite-bot: no store at {settings.invite_db_path} (INVITE_DB_PATH)", file=sys.stderr
        )
        return None
    store, problem = open_configured_store(settings)
    if problem:
        print(f"invite-bot: {problem}", file=sys.stderr)
    return store


def open_configured_store(settings: Settings):  # -> (Store | None, str | None)
    """Open the store, or say in one line why not ("cannot write the store at PATH: ..."),
    with the database password masked."""
    from bot.cli.doctor.store import store_problem
    from bot.store import open_store

    try:
        return open_store(settings), None
    except Exception as exc:
        return None, store_problem(settings, exc)


def print_audit(settings: Settings, since: datetime | None, as_json: bool) -> int:
    from bot.domain.text import log_value

    store = existing_store(settings)
    if store is None:
        return 2
    try:
        for event in store.audit(since):
            if as_json:
                print(event.model_dump_json())
                continue
            # Every stored value is shown by log_value: a reason holding a line break, "x=y"
            # or an escape sequence cannot fake a field or a line, nor reach the terminal.
            detail = " ".join(
                f"{log_value(key)}={log_value(value)}" for key, value in event.detail.items()
            )
            actor = f" by {log_value(event.actor)}" if event.actor else ""
            request = log_value(event.request_id) if event.request_id else "-"
            print(
                f"{event.at:%Y-%m-%d %H:%M:%S}Z  {log_value(event.event):<15} {request}{actor}  {detail}".rstrip()
            )
    finally:
        store.close()
    return 0


def private_text_file(path: str):  # -> TextIO
    """A file for writing that only its owner can read (0600, whatever the umask): an export
    holds invitation and password-reset codes."""
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT: tighten it
    return os.fdopen(fd, "w", encoding="utf-8")


def run_store_command(settings: Settings, args: argparse.Namespace) -> int:
    """`migrate`, `export FILE`, `import FILE`: moving a store between engines."""
    import json

    if args.command == "export":
        store = existing_store(settings)
        if store is None:
            return 2
        count = 0
        try:
            out = sys.stdout if args.file == "-" else private_text_file(args.file)
            with out if out is not sys.stdout else contextlib.nullcontext(out):
                for item in store.export():
                    out.write(json.dumps(item, sort_keys=True) + "\n")
                    count += 1
        finally:
            store.close()
        print(f"invite-bot: exported {count} items from the {store.engine} store", file=sys.stderr)
        return 0
    store = existing_store(settings, must_exist=False)  # creates or upgrades the schema
    if store is None:
        return 2
    try:
        if args.command == "migrate":
            print(f"invite-bot: {store.engine} store at schema version {store.migrate()}")
            return 0
        source = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
        with source if source is not sys.stdin else contextlib.nullcontext(source):
            items = (json.loads(line) for line in source if line.strip())
            counts = store.import_items(items)
        summary = ", ".join(f"{count} {kind}" for kind, count in counts.items())
        print(f"invite-bot: imported into the {store.engine} store: {summary}")
        return 0
    finally:
        store.close()


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            print(f"invite-bot: configuration {name}: {error['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


def slack_preflight(settings: Settings) -> str | None:
    """Check the bot token once before serving, so a bad one is a clear line, not a traceback."""
    from slack_sdk.errors import SlackApiError

    from bot.cli.doctor.slack import quiet_slack_sdk, unreachable
    from bot.runtime.app import slack_client

    try:
        with quiet_slack_sdk():  # its retries would each log three lines
            slack_client(settings).auth_test()
    except SlackApiError as exc:
        return f"Slack refused SLACK_BOT_TOKEN ({exc.response.get('error')}); check the token"
    except OSError as exc:
        return unreachable(settings, exc)
    return None


def store_preflight(settings: Settings) -> str | None:
    """Open the store once (creating or migrating its schema) and write to it before serving,
    so an unreachable database or an unwritable file is one clear line."""
    from bot.cli.doctor.store import store_writable

    return store_writable(settings)


def run_socket_mode(settings: Settings) -> None:
    """Socket Mode through Bolt's SocketModeHandler; SIGTERM/SIGINT stop it gracefully."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.runtime.app import build

    bot = build(settings)
    bot.start_background()
    handler = SocketModeHandler(bot.app, settings.slack_app_token.get_secret_value())
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    handler.connect()
    logging.getLogger(__name__).info("connected in Socket Mode")
    stop.wait()
    handler.close()
    bot.shutdown()


def run_sandbox(args: argparse.Namespace) -> int:
    from bot.awork.sandbox import Sandbox
    from bot.awork.sandbox_http import http_server

    sandbox = Sandbox(
        args.db,
        per_second=args.per_second,
        per_minute=args.per_minute,
        seats=args.seats,
        api_key=args.api_key,
    )
    server = http_server(sandbox.handle, args.host, args.port)
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


def run_doctor(settings: Settings) -> int:
    from bot.cli import doctor
    from bot.cli.doctor.slack import slack_checks

    logging.disable(logging.CRITICAL)  # what goes wrong is said in its check's line

    lines, code = doctor.report(doctor.run(settings, lambda: slack_checks(settings)), settings)
    for line in lines:
        print(line, flush=True)
    return code


def print_manifest(args: argparse.Namespace) -> int:
    from bot.cli.manifest import ManifestError, render

    try:
        sys.stdout.write(render(args.url, args.slash_command, args.socket))
    except ManifestError as exc:
        print(f"invite-bot: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        code = run(argv)
        sys.stdout.flush()  # a reader that left early shows here, not at exit
    except BrokenPipeError:
        # `invite-bot audit | head`: the reader has what it wanted. Python's docs' way: stdout
        # to devnull, so the interpreter's final flush does not complain either.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


def run(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "manifest":  # needs no configuration
        return print_manifest(args)
    settings = load_settings()
    if args.command is None:  # plain `invite-bot`: serve when Slack is configured, else the shell
        configured = settings.slack_bot_token.get_secret_value()
        args = parse_args(["serve"] if configured else ["shell"])
    if args.command in ("audit", "migrate", "export", "import", "doctor"):
        logs.configure(settings)  # a database driver's errors go through the secret mask too
    if args.command == "audit":
        return print_audit(settings, args.since, args.json)
    if args.command == "sandbox":
        return run_sandbox(args)
    if args.command == "doctor":
        return run_doctor(settings)
    if args.command in ("migrate", "export", "import"):
        return run_store_command(settings, args)
    if args.command == "shell":
        from bot.cli.shell.session import run_shell

        logging.basicConfig(level=logging.ERROR)  # the terminal is the shell's; warnings stay out
        return run_shell(args.seats, db_path=args.db)
    logs.configure(settings)
    socket_mode = args.socket or (not args.http and settings.slack_app_token is not None)
    missing = settings.missing_for_serving(socket_mode)
    if missing:
        print(f"invite-bot: set {', '.join(missing)} (see README.md)", file=sys.stderr)
        return 2
    problem = slack_preflight(settings) or store_preflight(settings)
    if problem:
        print(f"invite-bot: {problem}", file=sys.stderr)
        return 2
    if socket_mode:
        run_socket_mode(settings)
        return 0
    from bot.runtime.web import Server

    Server(settings, args.host or settings.host, args.port or settings.port).run()
    return 0
