"""Issue 20: `invite-bot shell` shows what Slack would show - mrkdwn rendered (styles at a
terminal, plain text in a pipe), what people type printed as typed, the sandbox notice once per
message - and `--lang de` tries the German texts: the shell's people have a German Slack, the
channel posts and the shell's own words are German.

Until the German catalog is filled, the German tests use a fake one (`german()`): in German
every text is its msgid after `[de]`, in English it is unchanged."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import bot.i18n
from bot.cli.parser import parse_args
from bot.cli.shell.screen import Screen
from bot.cli.shell.session import Shell
from bot.cli.shell.world import Message, People
from bot.i18n import LANGUAGES, current
from bot.ui.mrkdwn import SANDBOX_NOTE, SANDBOX_SUFFIX, context, section
from tests.i18n_fake import Wrapping
from tests.test_shell import SCRIPT, messages, run

SANDBOX = "sandbox — no real invitation"
BOLD, ITALIC, STRIKE = "\x1b[1m", "\x1b[3m", "\x1b[9m"


class Tty(io.StringIO):
    """What the shell prints to, as a terminal."""

    def isatty(self) -> bool:
        return True


def shown(blocks: list[dict], text: str = "", out: io.StringIO | None = None) -> str:
    """What the shell prints for a message with `blocks` (or only `text`)."""
    out = out if out is not None else io.StringIO()
    message = Message(number=1, channel="CGENERAL", ts="1.0", text=text, blocks=blocks)
    Screen(out, People()).blocks(blocks, message)
    return out.getvalue()


MRKDWN = (
    "*Approved by <@UOLGA>* _for now_ ~old~ `inv-1` in <#CGENERAL>: "
    "<https://x.io/a?b=1&amp;c=2|the link>, <mailto:a@x.com|a@x.com>, "
    "<!date^1700000000^{date_short_pretty}|5 Dec 2026, 02:42 UTC> &lt;b&gt; :tada:"
)


def test_mrkdwn_is_shown_as_slack_shows_it_in_plain_text():
    """Outside a terminal: no markup left - bold, italics, strike and code as their words,
    mentions and channels by name, a link as `text (url)`, a date as its fallback, entities
    back, emoji - and no escape codes."""
    out = shown([section(MRKDWN)])
    assert out == (
        "  Approved by @olga for now old inv-1 in #general: the link (https://x.io/a?b=1&c=2), "
        "a@x.com, 5 Dec 2026, 02:42 UTC <b> 🎉\n"
    )


def test_at_a_terminal_the_styles_are_drawn():
    """At a terminal *bold*, _italics_ and ~strike~ are styles, not characters."""
    out = shown([section(MRKDWN)], out=Tty())
    assert f"{BOLD}Approved by " in out and f"{ITALIC}for now" in out and f"{STRIKE}old" in out
    assert "*" not in out and "_for" not in out and "~" not in out and "`" not in out
    assert "🎉" in out and "@olga" in out


def test_text_only_messages_quotes_and_snake_case():
    """A message without blocks shows its text rendered; a `>` line is a quote; underscores
    inside words and unknown :shortcodes: stay as they are."""
    out = shown([], text="*Hi* snake_case_name :no_such_emoji: 10:30:45\n> quoted *note*")
    assert out == "  Hi snake_case_name :no_such_emoji: 10:30:45\n  │ quoted note\n"


@pytest.mark.parametrize("out", [io.StringIO, Tty], ids=["pipe", "terminal"])
def test_rich_markup_in_what_people_type_is_printed_as_typed(out):
    """A note that says `[bold]` or `[red]` (mrkdwn-escaped, as the bot sends it) is printed
    literally, styled by nothing but Slack's own mrkdwn."""
    typed = "&lt;b&gt; [bold]not bold[/bold] [red]x[/red] [link=https://evil]y[/link]"
    printed = shown([section(f"> {typed}")], out=out())
    assert "[bold]not bold[/bold] [red]x[/red] [link=https://evil]y[/link]" in printed
    assert "<b>" in printed and BOLD not in printed and "\x1b]8" not in printed


def test_what_is_said_in_the_shell_is_printed_as_typed(tmp_path):
    """`say` with rich markup and angle brackets: the message shows them as typed (Slack keeps
    them escaped), only its *mrkdwn* is styled."""
    output = run("say [bold]hi[/bold] *there* <b> & <@UOLGA>\n", tmp_path, "shell")
    assert "  [bold]hi[/bold] there <b> & <@UOLGA>\n" in output


def test_the_sandbox_notice_is_shown_once_per_message():
    """Blocks that carry the sandbox label twice, or a text with the suffix twice, still show
    the notice once."""
    note = context(SANDBOX_NOTE)
    out = shown([note, section("*Hello*"), note], text=f"Hello{SANDBOX_SUFFIX}")
    assert out.count(SANDBOX) == 1 and "🧪" in out
    out = shown([], text=f"Hello{SANDBOX_SUFFIX}{SANDBOX_SUFFIX}")
    assert out == f"  Hello{SANDBOX_SUFFIX}\n"


def test_each_message_of_a_session_has_the_notice_once(tmp_path):
    """In a whole session - posts, updates, ephemerals, DMs, the App Home, forms - each printed
    message says "sandbox — no real invitation" exactly once."""
    output = run(
        "/invite grace@example.com role:member\n/invite\ncancel\nas @olga\napprove 1\nhome\n"
        "/invite pending\n",
        tmp_path,
        "shell",
    )
    printed = [m for m in messages(output) if m.startswith("── ")]
    assert len(printed) >= 6
    for message in printed:
        assert message.count(SANDBOX) == 1, message


# --- --lang ------------------------------------------------------------------------------------


@contextmanager
def german() -> Iterator[None]:
    """German answers from the fake catalog; English stays as written."""
    original = bot.i18n.translations
    fake = Wrapping("[de]")  # a German catalog in which every text is `[de]` and its msgid
    bot.i18n.translations = lambda language: fake if language == "de" else original(language)  # type: ignore[assignment]
    try:
        yield
    finally:
        bot.i18n.translations = original  # type: ignore[assignment]


@pytest.fixture
def here(tmp_path, monkeypatch):
    """An in-process shell's surroundings: no .env, no Slack, awork or bot settings."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("SLACK_", "AWORK_", "INVITE_")):
            monkeypatch.delenv(name)
    return tmp_path


def session(lines: str, lang: str) -> tuple[Shell, str]:
    """An in-process shell speaking `lang` run through `lines`; the shell (closed) and what it
    printed."""
    out = io.StringIO()
    shell = Shell(25, out=out, lang=lang)
    try:
        shell.run(io.StringIO(lines))
    finally:
        shell.close()
    return shell, out.getvalue()


def test_lang_de_gives_everyone_a_german_slack_and_the_shell_speaks_german(here):
    """`--lang de`: users.info (with include_locale) says de-DE, the bot takes its people and
    its channel posts to be German, and the shell's help, greeting and headers are German."""
    with german():
        shell, output = session("help\n/invite grace@example.com role:member\n", "de")
    ada = shell.people.users["ada"].id
    assert shell.slack.users_info(user=ada, include_locale=True)["user"]["locale"] == "de-DE"
    assert "locale" not in shell.slack.users_info(user=ada)["user"]
    assert shell.bot.deps.languages.of(ada) == "de"
    assert shell.settings.invite_language == "de"
    assert "[de]invite-bot shell (sandbox — no real invitation)." in output
    assert "@ada> help\n[de]Commands (as the current user):" in output
    assert "Commands (as the current user)" not in output.replace("[de]Commands", "")
    # The shell's header, then the bot's channel post (its sandbox notice first), in German.
    assert "\n[de]── message 1 · #approvals ──\n  [de]🧪 sandbox" in output
    assert "[de]── message 2 · [de]#general, only @ada sees it ──" in output


def test_lang_en_is_the_default_and_english(here):
    """Without --lang the shell, its people and its channel speak English."""
    assert parse_args(["shell"]).lang == "en"
    with german():
        shell, output = session("help\n", parse_args(["shell"]).lang)
    ada = shell.people.users["ada"].id
    assert shell.slack.users_info(user=ada, include_locale=True)["user"]["locale"] == "en-US"
    assert shell.settings.invite_language == "en"
    assert "[de]" not in output and "Commands (as the current user):" in output


def test_invite_language_in_the_environment_wins_for_channel_posts(here, monkeypatch):
    """INVITE_LANGUAGE set: channel posts keep it, the shell and its people still speak --lang."""
    monkeypatch.setenv("INVITE_LANGUAGE", "en")
    shell = Shell(25, out=io.StringIO(), lang="de")
    shell.close()
    assert shell.settings.invite_language == "en" and shell.slack.locale == "de-DE"


def test_the_shell_speaks_its_language_where_the_bot_speaks_another(here):
    """The shell's words around a message are in --lang even while the bot writes to someone
    in another language: the headers are made in the shell's language, the bot's text in its."""
    seen: list[str] = []
    with german():
        out = io.StringIO()
        shell = Shell(25, out=out, lang="de")
        try:
            original = shell.screen.where

            def where(channel: str, only: str | None) -> str:
                seen.append(current())
                return original(channel, only)

            shell.screen.where = where  # type: ignore[method-assign]
            with bot.i18n.speaking("en"):  # as a listener writing to an English reader would
                shell.slack.chat_postMessage(channel="DUADA", text="*Hi*")
        finally:
            shell.close()
    assert seen == ["de"]
    assert "[de]── message 1 · [de]DM to @ada ──\n  Hi" in out.getvalue()


def test_lang_accepts_a_locale_and_refuses_an_unknown_language_in_one_line(tmp_path):
    """`--lang DE-de` is German; `--lang fr` is one line on stderr, exit 2, no traceback."""
    assert parse_args(["shell", "--lang", "de_DE"]).lang == "de"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AWORK_", "INVITE_"))}
    result = subprocess.run(
        [str(SCRIPT), "shell", "--lang", "fr"],
        input="quit\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"invite-bot: argument --lang: 'fr' is not a language the bot speaks "
        f"({', '.join(LANGUAGES)}) (see `invite-bot shell --help`)"
    ]
