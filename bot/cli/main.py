"""`invite-bot` / `python -m bot`: the command line. Its grammar is in parser.py; serving the
bot and the sandbox in serve.py; the store's commands (audit, migrate, export, import) in
store_commands.py; `policy check` and `policy explain` in policy.py; `doctor`, `manifest` and
`shell` in their own places. Every failure is one line on stderr, `invite-bot: what is wrong;
what to do`, and a non-zero exit."""

from __future__ import annotations

import gc
import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from bot.runtime.config import Settings


def load_settings() -> Settings:
    from pydantic import ValidationError

    from bot.runtime.config import Settings, problems

    try:
        return Settings()
    except ValidationError as exc:
        for problem in problems(exc):
            print(f"invite-bot: {problem}", file=sys.stderr)
        raise SystemExit(2) from None


def run_doctor(settings: Settings) -> int:
    from bot.cli import doctor
    from bot.cli.doctor.slack import slack_checks

    logging.disable(logging.CRITICAL)  # what goes wrong is said in its check's line
    lines, code = doctor.report(doctor.run(settings, lambda: slack_checks(settings)), settings)
    for line in lines:
        print(line, flush=True)
    return code


def print_manifest(slash_command: str, url: str | None, socket: bool) -> int:
    from bot.cli.manifest import ManifestError, render

    try:
        sys.stdout.write(render(url, slash_command, socket))
    except ManifestError as exc:
        print(f"invite-bot: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["serve"]:  # the real command line, not a test's call
        from bot.runtime.allocator import without_thread_caches

        # Before anything else is imported or parsed: what this process did before the exec
        # is start-up time spent twice (bot/runtime/allocator.py).
        without_thread_caches()
        # No collections while start-up imports and builds what lives as long as the process:
        # each would walk all of it again (~30 ms of a 0.4 s start). Once serving, that is
        # frozen and the collector runs again (bot.runtime.app.started).
        gc.disable()
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


def start_shell(args: argparse.Namespace) -> int:
    from bot.cli.shell.session import run_shell

    logging.basicConfig(level=logging.ERROR)  # the terminal is the shell's; warnings stay out
    return run_shell(args.seats, db_path=args.db, policy=args.policy, lang=args.lang)


def run(argv: list[str] | None = None) -> int:
    from bot.cli.parser import parse_args

    args = parse_args(argv)  # before the heavier imports: `--help` and mistakes answer at once
    if args.command == "manifest":  # needs no configuration
        return print_manifest(args.slash_command, args.url, args.socket)
    from bot.runtime import logs

    if args.command is None:  # plain `invite-bot`: serve when Slack is configured, else the shell
        from bot.runtime.config import SlackToken

        configured = SlackToken().slack_bot_token.get_secret_value()
        args = parse_args(["serve"] if configured else ["shell"])
    if args.command == "shell":  # its own settings: checked as it makes them (session.py)
        return start_shell(args)
    settings = load_settings()
    if args.command in ("audit", "migrate", "export", "import", "doctor", "policy"):
        logs.configure(settings)  # a database driver's errors go through the secret mask too
    if args.command == "doctor":
        return run_doctor(settings)
    if args.command == "policy":
        from bot.cli import policy

        return policy.run(settings, args)
    if args.command in ("audit", "migrate", "export", "import"):
        from bot.cli import store_commands as store

        if args.command == "audit":
            return store.print_audit(settings, args.since, args.json)
        if args.command == "migrate":
            return store.migrate(settings)
        if args.command == "export":
            return store.export(settings, args.file)
        return store.load(settings, args.file)
    from bot.cli import serve

    if args.command == "sandbox":
        return serve.run_sandbox(args)
    logs.configure(settings)
    return serve.serve(settings, args)
