"""The App Home tab: 'Waiting for you' for approvers and 'Your requests' for everyone."""

from __future__ import annotations

from slack_bolt import App

from bot.deps import Deps


def register(app: App, deps: Deps) -> None:
    def home_opened(event: dict) -> None:
        if event.get("tab", "home") != "home":
            return
        deps.later(deps.courier.publish_home, str(event.get("user", "")), True)

    app.event("app_home_opened")(home_opened)
