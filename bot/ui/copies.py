"""A second copy of a message the bot posted, retired: Slack answered the first post too late,
so the message went out twice. The older copy keeps what it says but loses its buttons and
says that the newer copy, below it, is the one kept up to date. Pure functions over the copy's
own blocks as Slack returns them."""

from __future__ import annotations

from typing import Any

from bot.i18n import N_, _, in_every_language
from bot.ui.mrkdwn import SANDBOX_NOTE, SANDBOX_SUFFIX, context

BLOCK_LIMIT = 50  # Slack's limit on a message's blocks
RETIRED_NOTE = N_(
    "_Slack answered slowly and this message was posted twice. This copy is retired; "
    "the newer one below is kept up to date and has the buttons._"
)


def has_buttons(blocks: list[dict[str, Any]] | None) -> bool:
    """Whether a message offers buttons (an actions block): a live copy someone might click."""
    return any(block.get("type") == "actions" for block in blocks or [])


def retired(text: str, blocks: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The copy without its actions blocks, with a closing note pointing to the newer copy.
    A sandbox label it carries goes too: the client labels what it sends again."""
    kept = [b for b in blocks if b.get("type") != "actions" and not _sandbox_label(b)]
    note = context(_(RETIRED_NOTE))
    for suffix in in_every_language(SANDBOX_SUFFIX):
        text = text.removesuffix(suffix)
    return text, [*kept[: BLOCK_LIMIT - 1], note]


def _sandbox_label(block: dict[str, Any]) -> bool:
    elements = block.get("elements") or [{}]
    return block.get("type") == "context" and elements[0].get("text") in in_every_language(
        SANDBOX_NOTE
    )
