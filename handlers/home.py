"""The App Home tab: 'Waiting for you' for approvers and 'Your requests' for everyone.

The tab names the slash command as installed (bot/runtime/command.py); the Courier publishes it.
"""

from __future__ import annotations

from slack_bolt import App

from bot.runtime.deps import Deps


def register(app: App, deps: Deps) -> None:
    def home_opened(event: dict) -> None:
        if event.get("tab", "home") != "home":
            return
        deps.later(deps.courier.publish_home, str(event.get("user", "")), True)

    app.event("app_home_opened")(home_opened)
