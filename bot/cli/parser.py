"""The command line's grammar: `invite-bot` and its subcommands, each with a sentence saying
what it does (`invite-bot COMMAND --help`). A mistake in the arguments is one line on stderr,
like every other failure of the command line."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime
from typing import NoReturn

SEATS = 25  # a new sandbox's booked seats, as bot.awork.sandbox.Sandbox's default


class Parser(argparse.ArgumentParser):
    """argparse, but a wrong argument is one line (`invite-bot: …`) saying where to look,
    not the usage followed by the error."""

    def error(self, message: str) -> NoReturn:
        print(f"invite-bot: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def port_number(text: str) -> int:
    """A TCP port: 0 to 65535 (0: any free one)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return port


def positive_number(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return number


def parse_since(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or time: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def slack_id(kinds: str, what: str):  # -> a type for argparse
    """A Slack id starting with one of `kinds` (U…, C…), upper-case letters and digits."""
    pattern = re.compile(rf"^[{kinds}][A-Z0-9]{{2,}}$")

    def check(text: str) -> str:
        if not pattern.match(text):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return text

    return check


def languages() -> tuple[str, ...]:
    """The languages the bot speaks: English and each one with a compiled catalog."""
    from bot.i18n import LANGUAGES

    return LANGUAGES


def language(text: str) -> str:
    """One of the bot's languages: `de`, `DE` or a locale such as `de-DE`."""
    wanted = text.strip().replace("_", "-").split("-", 1)[0].lower()
    if wanted not in languages():
        known = ", ".join(languages())
        raise argparse.ArgumentTypeError(f"{text!r} is not a language the bot speaks ({known})")
    return wanted


def email_address(text: str) -> str:
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an email address")
    return text


def add_policy(command) -> None:  # command: the `command` helper of build_parser
    """`invite-bot policy check [FILE]` and `invite-bot policy explain …`."""
    policy = command(
        "policy",
        "check a policy file (INVITE_POLICY) and explain what it does with one request",
    )
    actions = policy.add_subparsers(dest="policy_command", metavar="check | explain")
    actions.required = True
    check = actions.add_parser(
        "check",
        help="validate a policy file and say what it means",
        description="Validate a policy file and say what it means, in plain words; exit 0 "
        "when it is valid, else 1 with one line per mistake.",
    )
    check.add_argument("file", nargs="?", help="the policy file (default INVITE_POLICY)")
    explain = actions.add_parser(
        "explain",
        help="say which rule applies to one request and what would happen",
        description="Say which rule of the policy applies to one request and what would happen.",
    )
    user = slack_id("UW", "a Slack user id (U…)")
    explain.add_argument("--requester", required=True, type=user, metavar="U…", help="who asks")
    explain.add_argument(
        "--email", required=True, type=email_address, metavar="ADDRESS", help="who is invited"
    )
    explain.add_argument(
        "--role", metavar="NAME", help="the role asked for, as awork names it (default: none)"
    )
    explain.add_argument(
        "--team",
        action="append",
        default=[],
        metavar="NAME",
        help="a team asked for, as awork names it (repeat for several)",
    )
    channel = slack_id("CGD", "a Slack channel id (C…)")
    explain.add_argument("--channel", type=channel, metavar="C…", help="the channel asked in")
    explain.add_argument("--policy", metavar="FILE", help="the policy file (default INVITE_POLICY)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="invite-bot", description="Slack bot that invites people to awork.")
    commands = parser.add_subparsers(dest="command")

    def command(name: str, what: str) -> argparse.ArgumentParser:
        """A subcommand; `what` is its line in `invite-bot --help` and the sentence that
        starts its own --help."""
        sentence = what[0].upper() + what[1:] + "."
        return commands.add_parser(name, help=what, description=sentence)

    serve = command(
        "serve",
        "run the bot: Socket Mode when SLACK_APP_TOKEN is set, else HTTP at POST /slack/events",
    )
    mode = serve.add_mutually_exclusive_group()
    mode.add_argument(
        "--http", action="store_true", help="serve Slack's requests at POST /slack/events"
    )
    mode.add_argument(
        "--socket", action="store_true", help="connect with Socket Mode (SLACK_APP_TOKEN)"
    )
    serve.add_argument("--host", help="HTTP bind address (default HOST or 0.0.0.0)")
    serve.add_argument("--port", type=port_number, help="HTTP port (default PORT or 3000)")
    audit = command("audit", "print the audit log of requests and decisions")
    audit.add_argument(
        "--since",
        type=parse_since,
        help="only events from this date or time on (ISO 8601, UTC unless given)",
    )
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    shell = command(
        "shell",
        "try the bot in this terminal, as Slack users you choose (on the awork sandbox unless AWORK_API_KEY is set)",
    )
    shell.add_argument("--db", help="keep the shell's store in this file (default: a temp dir)")
    shell.add_argument(
        "--seats",
        type=positive_number,
        default=SEATS,
        help=f"booked seats of its new sandbox, its owner's included (default {SEATS})",
    )
    shell.add_argument(
        "--policy", metavar="FILE", help="try this policy file (instead of INVITE_POLICY)"
    )
    shell.add_argument(
        "--lang",
        type=language,
        default="en",
        metavar="LANG",
        help="the language to try: the shell's people have it as their Slack language, channel "
        "posts use it unless INVITE_LANGUAGE is set, and the shell speaks it "
        f"({' or '.join(languages())}; default en)",
    )
    sandbox = command(
        "sandbox", "serve the awork sandbox over HTTP (awork's paths, errors, rate limit)"
    )
    sandbox.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    sandbox.add_argument("--port", type=port_number, default=8081, help="port (default 8081)")
    sandbox.add_argument(
        "--db", default="./awork-sandbox.sqlite", help="its state (default ./awork-sandbox.sqlite)"
    )
    sandbox.add_argument("--per-second", type=int, default=50, help="rate limit per second")
    sandbox.add_argument("--per-minute", type=int, default=1000, help="rate limit per minute")
    sandbox.add_argument(
        "--seats",
        type=positive_number,
        default=SEATS,
        help=f"booked seats of a new sandbox (default {SEATS})",
    )
    sandbox.add_argument(
        "--api-key",
        help="answer only requests with 'Authorization: Bearer KEY' (default: anyone on the port)",
    )
    command(
        "doctor",
        "check this installation (Slack token, scopes, channel, approvers, awork, links, store, policy); exit 0 only when all pass",
    )
    manifest = command("manifest", "print the Slack app manifest with this bot's address filled in")
    manifest.add_argument("--url", help="the bot's public https:// address (HTTP mode)")
    manifest.add_argument(
        "--command",
        dest="slash_command",  # `command` is the subcommand's
        default="/invite",
        help="the slash command: /invite (default) or /awork-invite",
    )
    manifest.add_argument(
        "--socket",
        action="store_true",
        help="Socket Mode: no request URLs (so no --url), SLACK_APP_TOKEN",
    )
    command(
        "migrate", "create or upgrade the store's schema (INVITE_DATABASE_URL or INVITE_DB_PATH)"
    )
    export = command(
        "export", "write the whole store (requests, archive, audit, state) to a JSON-lines file"
    )
    export.add_argument("file", help="where to write it ('-' for standard output)")
    load = command("import", "read an export into the configured store (what exists is kept)")
    load.add_argument("file", help="an export file ('-' for standard input)")
    add_policy(command)
    return parser
