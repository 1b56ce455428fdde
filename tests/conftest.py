"""Shared fixtures: a fake Slack on loopback, a fake awork, explicit settings, the real bot."""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

import handlers.files
from bot.runtime.app import Bot, build
from bot.runtime.config import Settings
from tests.fakes.awork import API_KEY, FakeAwork
from tests.fakes.files import FakeFiles
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


# Whether bytecode is written, as the session started (restored once the tests are collected).
WRITES_BYTECODE = not sys.dont_write_bytecode


def pytest_sessionstart(session) -> None:
    """Bytecode for the many `invite-bot` processes the tests start (serving.compiled), and for
    the test modules as pytest rewrites their asserts while it collects them.

    pytest keeps each test module, its asserts rewritten, as bytecode in __pycache__ - but not
    where bytecode is not written (PYTHONDONTWRITEBYTECODE, as on these machines): there it
    rewrote all the test modules again at every run, ~3 s before the first test. Written for
    the collection only (`pytest_collection_finish` turns it back)."""
    from tests.serving import compiled

    compiled()
    sys.dont_write_bytecode = False
    # Every Slack, awork and PostgreSQL the tests talk to is on loopback: a proxy set on the
    # machine (for the bot, slack_sdk and the servers the tests start) is not in the way.
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        os.environ.pop(name, None)
        os.environ.pop(name.lower(), None)


def pytest_collection_finish(session) -> None:
    sys.dont_write_bytecode = not WRITES_BYTECODE


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
def files(monkeypatch) -> FakeFiles:
    """Slack's file host in-process: the bot's CSV downloads reach it, and nothing else."""
    fake = FakeFiles()
    monkeypatch.setattr(handlers.files, "TRANSPORT", fake.transport)
    return fake


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
        # Short leases and frequent sweeps, so a takeover after a kill happens within seconds:
        # a lease is connect + write + read timeouts (4 s each here) plus the margin.
        AWORK_TIMEOUT="4",
        INVITE_LEASE_MARGIN="1",
        INVITE_SWEEP_SECONDS="1",
    )


# --- PostgreSQL ---------------------------------------------------------------------------------

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    """A reachable PostgreSQL: INVITE_TEST_DATABASE_URL (then it must answer: .ci/run sets it),
    else this machine's default, else the PostgreSQL tests are skipped with the reason."""
    import psycopg

    url = os.environ.get("INVITE_TEST_DATABASE_URL")
    try:
        psycopg.connect(url or PG_DEFAULT, connect_timeout=3).close()
    except psycopg.Error as exc:
        if url:
            pytest.fail(f"INVITE_TEST_DATABASE_URL does not answer: {exc}")
        pytest.skip(f"no PostgreSQL at {PG_DEFAULT} ({exc}); set INVITE_TEST_DATABASE_URL")
    return url or PG_DEFAULT


def with_schema(url: str, schema: str) -> str:
    """The URL with every connection's search_path set to `schema` (one test's own tables)."""
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options={quote(f'-c search_path={schema}')}"


@pytest.fixture
def pg_url(pg_base_url) -> Iterator[str]:
    """A PostgreSQL URL whose tables live in a schema of this test's own, dropped after."""
    import psycopg

    schema = "t_" + secrets.token_hex(6)
    with psycopg.connect(pg_base_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield with_schema(pg_base_url, schema)
    with psycopg.connect(pg_base_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pg_bot(tmp_path, slack, awork, pg_url) -> Iterator[Bot]:
    """The real bot on a PostgreSQL store of this test's own, its pickers' catalog read."""
    built = build_bot(make_settings(tmp_path, slack.url, INVITE_DATABASE_URL=pg_url), awork.handler)
    assert built.deps.catalog.refresh()
    yield built
    built.shutdown(timeout=5)
