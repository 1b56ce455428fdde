"""Buttons as commands: `approve 3` clicks message 3's Approve button, `approve 5.2` the one in
its second row of buttons (the pending list has a row per request). Which button a command
means, and the `block_actions` payload Slack would send for its click."""

from __future__ import annotations

import re
import time
from typing import Any

from bot.cli.shell.world import CHANNEL_NAMES, Message
from bot.i18n import _

VERBS = {  # button action_id -> the command that clicks it
    "approve_invite": "approve",
    "deny_invite": "deny",
    "retry_invite": "retry",
    "retry_failed": "retry",
    "accept_invite": "accept",
    "invite_again": "again",
}


def rows(message: Message) -> list[dict[str, Any]]:
    """The message's rows of buttons (its `actions` blocks)."""
    return [block for block in message.blocks if block.get("type") == "actions"]


def command(verb: str, message: Message, block: dict[str, Any]) -> str:
    """What to type to click a button of `verb` in `block`: `approve 3`, or `approve 3.2` where
    the message has several rows; a deny takes its reason too."""
    where = f"{message.number}"
    several = rows(message)
    if len(several) > 1:
        where += f".{next(i for i, row in enumerate(several, 1) if row is block)}"
    if verb == "deny":  # the reason is the person's own words: the hint says so in theirs
        command = f"{verb} {where}"
        return _('{command} "reason"', command=command)
    return f"{verb} {where}"


def find(
    messages: list[Message], verb: str, args: list[str]
) -> tuple[Message, dict[str, Any], dict[str, Any]]:
    """The message, row and button `verb args` names; ValueError says why there is none, or
    that several rows have one (it never guesses which request is meant)."""
    address = re.fullmatch(r"(\d+)(?:\.(\d+))?", args[0]) if args else None
    if address is None:
        raise ValueError(
            _("which message? e.g. `{verb} 3` (or `{verb} 3.2`: its second row)", verb=verb)
        )
    number, row = int(address[1]), int(address[2]) if address[2] else None
    message = next((m for m in messages if m.number == number), None)
    if message is None:
        raise ValueError(_("there is no message {number}", number=number))
    blocks = rows(message)
    if row is not None and not 1 <= row <= len(blocks):
        raise ValueError(_("message {number} has no row {row} of buttons", number=number, row=row))
    buttons = [
        (i, block, element)
        for i, block in enumerate(blocks, start=1)
        if row in (None, i)
        for element in block.get("elements") or []
        if verb == "click" or VERBS.get(element.get("action_id", "")) == verb
    ]
    if not buttons:
        where = f"{number}.{row}" if row else f"{number}"
        raise ValueError(_("message {number} has no {verb} button", number=where, verb=verb))
    if len({i for i, _b, _e in buttons}) > 1:
        which = _(" or ").join(
            f"`{verb} {number}.{i}`" for i in dict.fromkeys(i for i, _b, _e in buttons)
        )
        raise ValueError(
            _(
                "message {number} has several {verb} buttons: {which}",
                number=number,
                verb=verb,
                which=which,
            )
        )
    block, element = buttons[0][1:]
    return message, block, element


def click(
    message: Message, block: dict[str, Any], element: dict[str, Any], trigger: str
) -> dict[str, Any]:
    """The `block_actions` payload of a click on `element` (without the user and team)."""
    return {
        "type": "block_actions",
        "trigger_id": trigger,
        "container": {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": message.channel,
            "is_ephemeral": message.to is not None,
        },
        "channel": {"id": message.channel, "name": CHANNEL_NAMES.get(message.channel, "")},
        "message": {"ts": message.ts, "text": message.text, "blocks": message.blocks},
        "response_url": "https://hooks.slack.invalid/actions/shell",
        "actions": [
            {
                "action_id": element["action_id"],
                "block_id": block.get("block_id", ""),
                "type": "button",
                "value": element.get("value", ""),
                "text": element.get("text"),
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
