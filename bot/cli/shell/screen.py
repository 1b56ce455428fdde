"""What the shell prints: Block Kit as readable lines - mentions by name, links as `text (url)`,
each button with the command that clicks it (`[Approve: approve 1]`)."""

from __future__ import annotations

import re
import threading
from typing import Any, TextIO

from bot.cli.shell import buttons
from bot.cli.shell.world import CHANNEL_NAMES, Message, People


def text_of(block: dict[str, Any]) -> str:
    """A section's or context's text (a section's fields too)."""
    if block.get("type") == "context":
        return " ".join(e.get("text", "") for e in block.get("elements") or [])
    parts = [(block.get("text") or {}).get("text", "")]
    parts += [f.get("text", "") for f in block.get("fields") or []]
    return "\n".join(p for p in parts if p)


class Screen:
    """The terminal. `lock` keeps what one thread prints (a whole message) together; the
    shell's Slack holds it while it answers a call."""

    def __init__(self, out: TextIO, people: People) -> None:
        self.out = out
        self.people = people
        self.lock = threading.RLock()

    def print(self, line: str) -> None:
        with self.lock:
            print(self.plain(line), file=self.out, flush=True)

    def where(self, channel: str, only: str | None) -> str:
        """`#approvals`, `DM to @ada`; `…, only @ada sees it` for an ephemeral."""
        name = self.people.name
        if channel.startswith("D"):
            where = f"DM to {name(channel[1:])}"
        else:
            where = CHANNEL_NAMES.get(channel, channel)
        return f"{where}, only {name(only)} sees it" if only else where

    def plain(self, text: str) -> str:
        """mrkdwn made readable: mentions by name, links as `text (url)`, entities back."""
        text = re.sub(r"<@(U[A-Z0-9]+)>", lambda m: self.people.name(m[1]), text)
        text = re.sub(r"<#(\w+)(?:\|[^>]*)?>", lambda m: CHANNEL_NAMES.get(m[1], "#" + m[1]), text)
        text = re.sub(r"<!date\^[^|>]*\|([^>]*)>", r"\1", text)
        text = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r"\2 (\1)", text)
        text = re.sub(r"<(https?://[^>]+)>", r"\1", text)
        return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")

    def blocks(self, blocks: list[dict[str, Any]], message: Message | None) -> None:
        """A message's (or the App Home's, `message` None) blocks; a message without blocks
        shows its text."""
        if not blocks and message is not None:
            self.print("  " + message.text.replace("\n", "\n  "))
        for block in blocks:
            kind = block.get("type")
            if kind in ("section", "context", "header"):
                text = text_of(block) or (block.get("text") or {}).get("text", "")
                self.print("  " + text.replace("\n", "\n  "))
            elif kind == "divider":
                self.print("  ────")
            elif kind == "actions":
                self.print(
                    "  "
                    + "  ".join(
                        self._button(e, block, message) for e in block.get("elements") or []
                    )
                )

    @staticmethod
    def _button(element: dict[str, Any], block: dict[str, Any], message: Message | None) -> str:
        label = element.get("text", {}).get("text", "")
        if message is None:  # the App Home: its buttons are not clicked from here
            return f"[{label} ({element['value']})]" if element.get("value") else f"[{label}]"
        verb = buttons.VERBS.get(element.get("action_id", ""), "click")
        return f"[{label}: {buttons.command(verb, message, block)}]"
