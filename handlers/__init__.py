"""Slack listeners by kind. Each module wires itself with `register(app, deps)`."""

from __future__ import annotations

from slack_bolt import App

from bot.runtime.deps import Deps
from handlers import (
    actions,
    commands,
    errors,
    functions,
    home,
    language,
    options,
    shortcuts,
    views,
)


def register(app: App, deps: Deps) -> None:
    language.register(app, deps)  # first: every listener speaks the person's language
    for kind in (commands, shortcuts, functions, views, actions, options, home, errors):
        kind.register(app, deps)
