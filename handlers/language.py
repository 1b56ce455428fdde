"""Every listener speaks the language of the person who acted: Bolt middleware that looks up
their Slack locale (remembered for a day, handlers/delivery/languages.py) and sets it for the
listener and for the work it hands on after the ack (`Deps.later` carries the context); each
request is dispatched in a context of its own, so the language ends with it. An
event without a person (a Workflow Builder step run) speaks `INVITE_LANGUAGE`."""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware

from bot.i18n import use
from bot.runtime.deps import Deps

# A person's first request waits this long at most for their locale (later ones: not at all).
ACK_WAIT = 0.25


class SpeakTheirLanguage(Middleware):
    """Bolt's class middleware, handed the request as it is: a function middleware has its
    arguments looked up by name on every request."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse:
        user = req.context.user_id
        languages = self.deps.languages
        # Nobody in particular (a workflow step's event): the workspace's INVITE_LANGUAGE.
        language = languages.of(user, wait=ACK_WAIT) if user else languages.channel
        # Bolt's next() returns before the listener runs: the language is set for the rest of
        # the request, whose context AnsweringApp.dispatch keeps to it.
        use(language)
        return next()


def register(app: App, deps: Deps) -> None:
    app.use(SpeakTheirLanguage(deps))
