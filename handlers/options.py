"""Options for the role and team pickers, answered from the background-refreshed cache."""

from __future__ import annotations

from slack_bolt import Ack, App

from bot.runtime.deps import Deps
from bot.ui import forms


def register(app: App, deps: Deps) -> None:
    def role_options(ack: Ack, body: dict) -> None:
        ack(options=forms.role_options(deps.catalog.find_roles(body.get("value") or "")))

    def team_options(ack: Ack, body: dict) -> None:
        ack(options=forms.team_options(deps.catalog.find_teams(body.get("value") or "")))

    app.options("roleId")(role_options)
    app.options("teamIds")(team_options)
