"""The App Home tab: 'Waiting for you' for approvers and 'Your requests' for everyone.

The tab names the slash command as installed (`/invite`, or `/awork-invite` where Slack keeps
`/invite` for itself): the last name a command came in with, kept in the store's small state.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.runtime.deps import Deps
from bot.ui import blocks

COMMAND_META = "command_name"


def installed_command(store: Any) -> str:
    """The slash command's name as last seen in a command; `/invite` until one came."""
    name = store.get_meta(COMMAND_META, None)
    return name if isinstance(name, str) and name.startswith("/") else blocks.DEFAULT_COMMAND


def register(app: App, deps: Deps) -> None:
    def home_opened(event: dict) -> None:
        if event.get("tab", "home") != "home":
            return
        deps.later(deps.courier.publish_home, str(event.get("user", "")), True)

    app.event("app_home_opened")(home_opened)
