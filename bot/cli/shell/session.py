"""`invite-bot shell`: the real Bolt app (same listeners, same Block Kit) driven from a terminal.

You type what a Slack user would do, as a user you choose (`as @ada`): `/invite …` is a signed
slash command, a form opens as numbered fields to fill, buttons on messages are commands
(`approve 3`, `deny 3 "reason"`, `accept 5`…; `approve 5.2` for a list's second row), so are
the shortcuts (`shortcut`, `shortcut on message 4`; `say …` posts a message to use one on),
and every message, update, DM and modal the bot sends is printed. The pieces: the workspace's people and
messages (`world.py`), Slack's Web API answered in-process (`slack.py`), what is printed
(`screen.py`), the signed requests Slack would send (`signed.py`), buttons as commands
(`buttons.py`), forms (`forms.py`) and where lines come from (`lines.py`). awork is the sandbox
unless `AWORK_API_KEY` is set. Without `--db` the store lives in a temporary folder, removed
when the shell ends. `--policy FILE` tries a policy file (INVITE_POLICY) before it is deployed.
`--lang de` tries another language: the shell's people have that Slack locale, its channel
posts are in it (unless INVITE_LANGUAGE says otherwise) and the shell speaks it too.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import shlex
import shutil
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from bot.cli.shell import buttons
from bot.cli.shell.forms import Cancelled, Forms
from bot.cli.shell.lines import Lines
from bot.cli.shell.screen import Screen
from bot.cli.shell.signed import Sender
from bot.cli.shell.slack import TerminalSlack
from bot.cli.shell.world import APPROVALS, GENERAL, Message, People
from bot.domain.policy import PolicyError
from bot.i18n import N_, SOURCE, _, ngettext, pgettext, speaking
from bot.runtime.app import Bot, build, sandbox_path
from bot.runtime.config import Settings, problems

CONTINUATION = "... "  # the prompt for the lines of a multi-line answer
LOCALES = {"en": "en-US", "de": "de-DE"}  # the Slack locale of the shell's people, by --lang
HELP = N_("""\
Commands (as the current user):
  /invite …              any /invite command: /invite, /invite bulk, /invite a@x.com role:Member,
                         /invite pending, /invite mine, /invite help
  approve N | deny N "reason" | accept N | retry N | again N
                         click that button on message N; where a message has several rows
                         of buttons (`/invite pending`), each row is N.1, N.2 …: `approve 5.2`
  shortcut               the "Invite to awork" shortcut: the invite form
  shortcut on message N  "Invite the author to awork" on message N: the form filled in
                         with its author (the bot, for what it posted)
  say …                  post a message in #general as the current user
  as @name               act as another user (@olga and @sam are approvers; new names are made)
  users                  who is who
  home                   open your App Home tab
  help | quit
In a form: `N value` fills field N (and says what it now holds); `N` alone starts a multi-line
answer (the bulk list: one person per line), ended by an empty line, or lists a field's
choices; `show` prints the form so far; `submit` sends it, `cancel` closes it.
At the prompt, arrow keys edit and recall lines; Ctrl-C drops the line (or the multi-line
answer being typed); Ctrl-D or `quit` leaves.""")


class ShellError(Exception):
    """The shell cannot start (said in one line)."""


class CountingExecutor(ThreadPoolExecutor):
    """The listeners' executor, counting work still running, so the shell waits for it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._busy = 0
        self._lock = threading.Condition()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            self._busy += 1

        def counted() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self._busy -= 1
                    self._lock.notify_all()

        return super().submit(counted)

    def wait_idle(self, timeout: float) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: self._busy == 0, timeout=timeout)


class Shell:
    def __init__(
        self,
        seats: int,
        out: TextIO = sys.stdout,
        db_path: str | None = None,
        policy: str | None = None,
        lang: str = SOURCE,
    ) -> None:
        self.lang = lang
        if policy is not None:  # before anything is made: a file that is not valid says why
            _check_policy(policy)
        if db_path and not Path(db_path).parent.is_dir():
            raise ShellError(
                f"--db {db_path}: there is no folder {Path(db_path).parent}; create it or give a file in an existing folder"
            )
        self.people = People()
        self.screen = Screen(out, self.people, language=lang)
        self.input = Lines(io.StringIO())  # `run` reads from its own lines
        # Without --db, a folder of its own, removed by `close`.
        self.workdir = None if db_path else Path(tempfile.mkdtemp(prefix="invite-shell-"))
        try:
            self._start(seats, db_path or str(self.workdir / "invite-bot.sqlite"), policy)
        except BaseException:
            self._remove_workdir()
            raise

    def _start(self, seats: int, db_path: str, policy: str | None) -> None:
        secret = secrets.token_hex(16)
        users = self.people.users
        try:
            self.settings = Settings(
                SLACK_BOT_TOKEN="xoxb-shell",
                SLACK_SIGNING_SECRET=secret,
                SLACK_APP_TOKEN="",
                INVITE_ADMIN_CHANNEL=APPROVALS,
                INVITE_DB_PATH=db_path,
                # Its own store, never the deployed one a .env or the environment names.
                INVITE_DATABASE_URL="",
                # The shell's own people decide, whatever a .env says about the real Slack.
                INVITE_APPROVERS=f"{users['olga'].id},{users['sam'].id}",
                **({"INVITE_POLICY": policy} if policy is not None else {}),
            )
        except ValidationError as exc:  # the environment's, where the shell does not override it
            raise ShellError("; ".join(problems(exc))) from None
        if "invite_language" not in self.settings.model_fields_set:  # not in the environment
            self.settings = self.settings.model_copy(update={"invite_language": self.lang})
        source = "--policy" if policy is not None else "INVITE_POLICY"
        self.executor = CountingExecutor(max_workers=16, thread_name_prefix="listener")
        self.slack = TerminalSlack(
            self.people,
            self.screen,
            sandbox=self.settings.sandbox,
            locale=LOCALES.get(self.lang, self.lang),
        )
        try:
            self.seats = self._sandbox(seats) if self.settings.sandbox else None
            self.bot: Bot = build(self.settings, slack=self.slack, executor=self.executor)
        except (OSError, sqlite3.Error) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            raise ShellError(f"cannot open the shell's store at {db_path}: {why}") from None
        except PolicyError as exc:  # INVITE_POLICY from the environment or .env
            raise ShellError(f"{source} {self.settings.invite_policy}: {exc}") from None
        self.sender = Sender(self.bot.app, secret, self.people, self.slack)
        self.forms = Forms(self.screen, self.sender, self._read_block)
        self.slack.open_view = self.forms.open_view
        self.bot.deps.catalog.refresh()
        if self.settings.invite_policy is not None:  # its names, now that awork's are known
            try:
                _check_policy(self.settings.invite_policy, self.bot.deps.catalog.names(), source)
            except ShellError:
                self.bot.shutdown(timeout=5)
                raise

    def _sandbox(self, seats: int) -> int | None:
        """A new sandbox, with `seats` booked seats, where the bot will look for it; None when
        one is kept there from an earlier run (with its own seats)."""
        from bot.awork.sandbox import Sandbox

        path = sandbox_path(self.settings.invite_db_path)
        if Path(path).exists():
            return None
        Sandbox(path, seats=seats).close()
        return seats

    def close(self) -> None:
        """Stop the bot and remove the temporary folder (not a --db file)."""
        try:
            with contextlib.suppress(KeyboardInterrupt):
                self.bot.shutdown(timeout=10)
        finally:
            self._remove_workdir()

    def _remove_workdir(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- the user's side: what you type ------------------------------------------------------

    def greeting(self) -> str:
        you = _("You are @{name}. Type `help`.", name=self.people.current.name)
        if not self.settings.sandbox:
            return _(
                "invite-bot shell (awork at {url}). {you}",
                url=self.settings.awork_api_url,
                you=you,
            )
        if self.seats is None:
            kept = sandbox_path(self.settings.invite_db_path)
            workspace = _(
                "Its workspace is the one kept in {path}, with the seats it has.", path=kept
            )
        else:
            workspace = ngettext(
                "Its workspace has {n} seat, its owner's included (`--seats N`).",
                "Its workspace has {n} seats, its owner's included (`--seats N`).",
                self.seats,
            )
        return _(
            "invite-bot shell (sandbox — no real invitation). {workspace} {you}",
            workspace=workspace,
            you=you,
        )

    def run(self, lines: TextIO) -> None:
        """The session, in the shell's language (the bot's listeners speak each person's)."""
        with speaking(self.lang):
            self._run(lines)

    def _run(self, lines: TextIO) -> None:
        self.screen.print(self.greeting())
        self.input = Lines(lines)
        while (line := self._next()) is not None and line not in ("quit", "exit"):
            try:
                try:
                    self.do(line)
                except (ValueError, KeyError, IndexError) as exc:
                    self.screen.print(f"  ?? {exc}")
                self.executor.wait_idle(timeout=120)
            except KeyboardInterrupt:  # Ctrl-C while a command runs: back to the prompt
                self.screen.print("  " + _("(interrupted)"))

    def _next(self) -> str | None:
        """The next command; None to leave (Ctrl-D, end of input). At a terminal the prompt
        comes first; from a pipe each line is printed after its prompt, as a transcript."""
        while True:
            prompt = f"@{self.people.current.name}> "
            try:
                raw = self.input.read(prompt)
            except KeyboardInterrupt:  # Ctrl-C drops the line, as in a terminal; Ctrl-D leaves
                self.screen.print(_("^C (line dropped; Ctrl-D or `quit` leaves)"))
                continue
            if raw is None:
                return None
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not self.input.terminal:
                self.screen.print(prompt + line)
            return line

    def _read_block(self) -> str:
        """A multi-line answer: the lines up to an empty one (or Ctrl-D, the end of input).
        Ctrl-C drops it (`Cancelled`)."""
        lines: list[str] = []
        while True:
            try:
                raw = self.input.read(CONTINUATION)
            except KeyboardInterrupt:
                self.screen.print("^C")
                raise Cancelled from None
            if raw is None or not raw.strip():
                return "\n".join(lines)
            if not self.input.terminal:
                self.screen.print(CONTINUATION + raw.rstrip())
            lines.append(raw.rstrip())

    def do(self, line: str) -> None:
        current = self.people.current
        said = line.split(None, 1)
        if said[0].lower() == "say":  # the text as typed: quotes and apostrophes are words
            if len(said) < 2:
                raise ValueError(_("say what? e.g. `say Hello, I'm new here`"))
            self.slack.say(current.id, GENERAL, said[1])
            return
        form = self.forms.by_user.get(current.id)
        words = shlex.split(line, posix=True) if line.count('"') % 2 == 0 else line.split()
        verb = words[0].lower()
        if form is not None and (verb.isdigit() or verb in ("submit", "cancel", "show")):
            self.forms.fill(form, words)
        elif verb == "show" or (verb.isdigit() and form is None):
            raise ValueError(_("no form is open; `/invite` opens one"))
        elif line.startswith("/"):
            self.sender.command(line)
        elif verb == "as":
            if len(words) < 2:
                raise ValueError(_("as whom? e.g. `as @olga`"))
            self.people.current = self.people.user(words[1])
            who = self.people.current
            self.screen.print(
                "  " + _("you are now @{name} ({email})", name=who.name, email=who.email)
            )
        elif verb == "users":
            approvers = self.settings.invite_approvers
            for user in self.people.users.values():
                if user.id in approvers:
                    role = pgettext("the shell's list of users", "approver")
                else:
                    role = pgettext("the shell's list of users", "member")
                self.screen.print(f"  @{user.name}  {user.id}  {user.email}  {role}")
        elif verb == "shortcut":
            self.sender.shortcut(self._shortcut_on(words[1:]))
        elif verb == "home":
            self.sender.event({"type": "app_home_opened", "user": current.id, "tab": "home"})
        elif verb in buttons.VERBS.values() or verb == "click":
            self._click(verb, words[1:])
        elif verb == "help":
            self.screen.print(_(HELP))
        else:
            raise ValueError(_("unknown command {command}; type `help`", command=repr(verb)))

    def _shortcut_on(self, args: list[str]) -> Message | None:
        """The message `shortcut on message N` names (None: the global shortcut)."""
        if not args:
            return None
        if len(args) != 3 or args[:2] != ["on", "message"] or not args[2].isdigit():
            raise ValueError(_("`shortcut`, or `shortcut on message N`"))
        number = int(args[2])
        message = next((m for m in self.slack.messages if m.number == number), None)
        if message is None:
            raise ValueError(_("there is no message {number}", number=number))
        if message.to is not None:
            raise ValueError(
                _(
                    "message {number} is only shown to {who}: Slack has no shortcuts on it",
                    number=number,
                    who=self.people.name(message.to),
                )
            )
        return message

    def _click(self, verb: str, args: list[str]) -> None:
        message, block, element = buttons.find(self.slack.messages, verb, args)
        self.sender.interactive(buttons.click(message, block, element, self.sender.trigger()))
        if verb == "deny" and len(args) > 1:  # the reason modal: fill it in and send it
            self.executor.wait_idle(timeout=30)
            form = self.forms.by_user.get(self.people.current.id)
            if form is not None and form.view.get("callback_id") == "deny_reason":
                self.forms.fill(form, ["1", " ".join(args[1:])])
                self.forms.fill(form, ["submit"])


def _check_policy(
    path: str, names: tuple[list[str], list[str]] | None = None, source: str = "--policy"
) -> None:
    """ShellError naming the policy file's mistakes (and the names awork lacks, when known)."""
    from bot.services.policy import read_policy

    try:
        read_policy(path, names)
    except PolicyError as exc:
        raise ShellError(f"{source} {path}: {exc}") from None


def run_shell(
    seats: int,
    lines: TextIO = sys.stdin,
    out: TextIO = sys.stdout,
    db_path: str | None = None,
    policy: str | None = None,
    lang: str = SOURCE,
) -> int:
    """The shell until `quit`, Ctrl-D or the end of input, speaking `lang`; 2 with a line on
    stderr when it cannot start, 130 when Ctrl-C stops its start."""
    try:
        shell = Shell(seats, out=out, db_path=db_path, policy=policy, lang=lang)
    except ShellError as exc:
        print(f"invite-bot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C while starting: leave quietly, as interrupted
        print(file=out)
        return 130
    try:
        shell.run(lines)
    finally:
        shell.close()
    return 0
