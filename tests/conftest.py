"""Shared fixtures: a fake Slack on loopback, a fake awork, explicit settings, the real bot."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from bot.app import Bot, build
from bot.config import Settings
from tests.fakes.awork import API_KEY, FakeAwork
from tests.fakes.slack import FakeSlack
from tests.slack_requests import ADMIN_CHANNEL, SlackDriver

SIGNING_SECRET = "test-signing-secret-abcdef"
BOT_TOKEN = "xoxb-test-bot-token-123456"
APPROVERS = ("UAPPROVER1", "UAPPROVER2")


class IsolatedSettings(Settings):
    """Settings from explicit arguments only: tests never read the real environment."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, *args, **kwargs):
        return (init_settings,)


def make_settings(tmp_path, slack_url: str = "http://127.0.0.1:9/api/", **overrides) -> Settings:
    values = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_url,
        "AWORK_API_URL": "https://api.awork.com/api/v1",
        "AWORK_API_KEY": API_KEY,
        "INVITE_ADMIN_CHANNEL": ADMIN_CHANNEL,
        "INVITE_APPROVERS": ",".join(APPROVERS),
        "INVITE_DB_PATH": str(tmp_path / "invite-bot.sqlite"),
        "INVITE_ACCEPT_URL": "https://app.awork.com/accept?code={code}&email={email}",
        **overrides,
    }
    return IsolatedSettings(**values)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    yield fake
    fake.close()


@pytest.fixture
def awork() -> FakeAwork:
    return FakeAwork()


@pytest.fixture
def settings(tmp_path, slack) -> Settings:
    return make_settings(tmp_path, slack.url)


def build_bot(settings: Settings, handler) -> Bot:
    """The real bot with awork faked by `handler` (an httpx.MockTransport function), no retry waits."""
    return build(settings, awork_transport=httpx.MockTransport(handler), retry_sleep=lambda _: None)


@pytest.fixture
def bot(settings, awork) -> Iterator[Bot]:
    built = build_bot(settings, awork.handler)
    assert built.deps.catalog.refresh()
    yield built
    built.shutdown(timeout=5)


@pytest.fixture
def driver(bot) -> SlackDriver:
    return SlackDriver(bot.app, SIGNING_SECRET)


def approval_request_id(slack: FakeSlack, seen: int = 0) -> str:
    """The request id on the approval message posted after the first `seen` ones."""

    def is_approval(call) -> bool:
        return call.args["channel"] == ADMIN_CHANNEL and not call.args.get("thread_ts")

    post = slack.wait_for("chat.postMessage", seen + 1, where=is_approval)[seen]
    for block in post.args["blocks"]:
        if block["type"] == "actions":
            return block["elements"][0]["value"]
    raise AssertionError(json.dumps(post.args))


@pytest.fixture
def awork_server():
    """The fake awork over loopback HTTP, for tests that start the real server process."""
    fake = FakeAwork()
    url, server = fake.serve()
    yield fake, url
    server.shutdown()


@pytest.fixture
def env(tmp_path, slack, awork_server) -> dict[str, str]:
    """The environment for a real `invite-bot serve` against the loopback fakes."""
    from tests.serving import serve_env

    _, awork_url = awork_server
    return serve_env(
        slack.url,
        awork_url,
        str(tmp_path / "db.sqlite"),
        SIGNING_SECRET,
        BOT_TOKEN,
        ",".join(APPROVERS),
    )
