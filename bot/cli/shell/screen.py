"""What the shell prints: Block Kit as Slack shows it - mrkdwn rendered (render.py: styles at
a terminal, plain text elsewhere), mentions by name, links as `text (url)`, emoji - and each
button with the command that clicks it (`[Approve: approve 1]`). The shell's own lines are
printed as they are, in the shell's language."""

from __future__ import annotations

import threading
from typing import Any, TextIO

from rich.console import Console
from rich.text import Text

from bot.cli.shell import buttons
from bot.cli.shell.render import Mrkdwn, plain_text
from bot.cli.shell.world import CHANNEL_NAMES, Message, People
from bot.i18n import SOURCE, _, in_every_language
from bot.ui.mrkdwn import SANDBOX_NOTE, SANDBOX_SUFFIX

INDENT = "  "
HEADER = "bold"  # a message's `── message 3 · #approvals ──` line, at a terminal


def text_of(block: dict[str, Any]) -> str:
    """A section's or context's text (a section's fields too), as written."""
    if block.get("type") == "context":
        return " ".join(e.get("text", "") for e in block.get("elements") or [])
    parts = [(block.get("text") or {}).get("text", "")]
    parts += [f.get("text", "") for f in block.get("fields") or []]
    return "\n".join(p for p in parts if p)


def sandbox_note(block: dict[str, Any]) -> bool:
    """Whether `block` is the sandbox label's context block (in any language)."""
    elements = block.get("elements") or [{}]
    return block.get("type") == "context" and elements[0].get("text") in in_every_language(
        SANDBOX_NOTE
    )


def suffixed_once(text: str) -> str:
    """A message's text with the sandbox suffix at most once, at its end."""
    found = ""
    for suffix in in_every_language(SANDBOX_SUFFIX):
        if suffix in text:
            found = found or suffix
            text = text.replace(suffix, "")
    return (text + found).strip() if found else text


def indented(text: Text, prefix: str = INDENT) -> Text:
    """Every line of `text` after `prefix`."""
    lines = text.split("\n", allow_blank=True) if text.plain else [Text()]
    return Text("\n").join(Text(prefix) + line for line in lines)


def _isatty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


class Screen:
    """The terminal. `lock` keeps what one thread prints (a whole message) together; the
    shell's Slack holds it while it answers a call. `language` is the shell's (`--lang`)."""

    def __init__(self, out: TextIO, people: People, language: str = SOURCE) -> None:
        self.out = out
        self.people = people
        self.language = language
        self.lock = threading.RLock()
        # Styles only at a terminal: in a pipe or a file the same lines are plain text. Never
        # rich markup or emoji codes in what is printed: every Text is built piece by piece.
        self.console = Console(
            file=out,
            force_terminal=_isatty(out),
            highlight=False,
            markup=False,
            emoji=False,
            soft_wrap=True,
        )
        self.mrkdwn = Mrkdwn(self.people.name, self._channel)

    def print(self, line: str | Text, style: str | None = None) -> None:
        """One of the shell's lines, printed as it is."""
        text = line if isinstance(line, Text) else Text(line, style=style or "")
        with self.lock:
            self.console.print(text)
            self.out.flush()

    def header(self, line: str) -> None:
        """The line above a message, form or App Home (`── message 3 · #approvals ──`)."""
        self.print(line, style=HEADER)

    @staticmethod
    def _channel(channel_id: str) -> str:
        return CHANNEL_NAMES.get(channel_id, "#" + channel_id)

    def where(self, channel: str, only: str | None) -> str:
        """`#approvals`, `DM to @ada`; `…, only @ada sees it` for an ephemeral."""
        name = self.people.name
        if channel.startswith("D"):
            where = _("DM to {who}", who=name(channel[1:]))
        else:
            where = CHANNEL_NAMES.get(channel, channel)
        return _("{where}, only {who} sees it", where=where, who=name(only)) if only else where

    def text(self, obj: dict[str, Any] | None) -> Text:
        """A text object as Slack shows it: mrkdwn rendered, plain_text with its emoji."""
        obj = obj or {}
        if obj.get("type") == "plain_text":
            return plain_text(str(obj.get("text", "")), emojis=obj.get("emoji", True))
        return self.mrkdwn(str(obj.get("text", "")))

    def block_text(self, block: dict[str, Any]) -> Text:
        """A section's, header's or context's text (a section's fields too)."""
        if block.get("type") == "context":
            shown = [self.text(e) for e in block.get("elements") or [] if "text" in e]
            return Text(" ").join(shown)
        parts = [block.get("text"), *(block.get("fields") or [])]
        shown = [self.text(p) for p in parts if p and p.get("text")]
        text = Text("\n").join(shown)
        if block.get("type") == "header":
            text.stylize("bold")
        return text

    def blocks(self, blocks: list[dict[str, Any]], message: Message | None) -> None:
        """A message's (or the App Home's, `message` None) blocks; a message without blocks
        shows its text. The sandbox label shows once, however often the blocks carry it."""
        if not blocks and message is not None:
            self.print(indented(self.mrkdwn(suffixed_once(message.text))))
        labelled = False
        for block in blocks:
            kind = block.get("type")
            if sandbox_note(block):
                if labelled:
                    continue
                labelled = True
            if kind in ("section", "context", "header"):
                self.print(indented(self.block_text(block)))
            elif kind == "divider":
                self.print(INDENT + "────")
            elif kind == "actions":
                row = Text("  ").join(
                    self._button(e, block, message) for e in block.get("elements") or []
                )
                self.print(indented(row))

    def _button(
        self, element: dict[str, Any], block: dict[str, Any], message: Message | None
    ) -> Text:
        label = self.text(element.get("text"))
        if message is None:  # the App Home: its buttons are not clicked from here
            value = element.get("value")
            return Text.assemble("[", label, f" ({value})]" if value else "]")
        verb = buttons.VERBS.get(element.get("action_id", ""), "click")
        return Text.assemble("[", label, ": ", (buttons.command(verb, message, block), "bold"), "]")
