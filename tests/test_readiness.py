"""GET /readyz answers within a second whatever the store does."""

from __future__ import annotations

import threading
import time

from bot.runtime.web import wsgi_app


def get(app, path: str) -> tuple[str, bytes]:
    seen: list[str] = []
    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, lambda s, h: seen.append(s)))
    return seen[0], body


def test_readyz_is_503_at_once_while_the_store_hangs(bot, monkeypatch):
    """A store that does not answer: /readyz is 503 within 1.5 s, the next ones at once while
    the store is asked only once, and 200 again as soon as the store answers."""
    bot.check_slack_auth()
    app = wsgi_app(bot)
    assert get(app, "/readyz")[0].startswith("200")
    answer = threading.Event()
    asked: list[str] = []
    real = bot.store.get_meta

    def hanging(key, default=None):
        asked.append(key)
        answer.wait(5)
        return real(key, default)

    monkeypatch.setattr(bot.store, "get_meta", hanging)
    try:
        took = []
        for _ in range(3):
            started = time.monotonic()
            status, body = get(app, "/readyz")
            took.append(time.monotonic() - started)
            assert status.startswith("503") and b"store unreachable" in body, body
        assert took[0] < 1.5 and max(took[1:]) < 0.2, took
        assert asked == ["ready"]
    finally:
        answer.set()
    deadline = time.monotonic() + 3
    while not get(app, "/readyz")[0].startswith("200"):
        assert time.monotonic() < deadline, "still not ready after the store answered"
        time.sleep(0.05)


def test_a_token_slack_accepted_as_the_app_was_made_is_ready_before_the_first_sweep(bot, slack):
    """Bolt's auth.test as the app is made counts: /readyz is 200 before any sweep, and the
    first sweep's check does not ask Slack again - one auth.test in all."""
    assert get(wsgi_app(bot), "/readyz")[0].startswith("200")
    bot.check_slack_auth()  # what the first sweep does first
    assert len(slack.of("auth.test")) == 1
