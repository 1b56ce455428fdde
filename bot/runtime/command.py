"""The slash command's name as installed: `/invite`, or `/awork-invite` where Slack keeps
`/invite` for itself. A command carries its own name; texts that no command carries (the App
Home, later news) name the last one a command came in with, kept in the store's small state.
"""

from __future__ import annotations

from typing import Any

from bot.ui.answers import DEFAULT_COMMAND

COMMAND_META = "command_name"
# How long the name as this process read it is used: the sweep reads it again every
# INVITE_SWEEP_SECONDS (`refresh_command`), so the texts that name it - an approval's outcome,
# the App Home - do not read the store; a command renamed shows in another replica's texts by
# its next sweep, in this one's at once.
COMMAND_SECONDS = 600.0


def installed_command(store: Any) -> str:
    """The slash command's name as last seen in a command; `/invite` until one came."""
    name = store.recent_meta(COMMAND_META, None, max_age=COMMAND_SECONDS)
    return name if isinstance(name, str) and name.startswith("/") else DEFAULT_COMMAND


def refresh_command(store: Any) -> None:
    """Read the name from the store now (the sweep's, off every request's path)."""
    store.recent_meta(COMMAND_META, None, max_age=0)


def keep_command(store: Any, name: str) -> None:
    """Keep the name a command came in with, when it is not the one kept already."""
    if installed_command(store) != name:
        store.set_meta(COMMAND_META, name)
        store.forget_recent(COMMAND_META)
