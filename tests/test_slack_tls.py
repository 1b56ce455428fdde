"""The bot's calls to Slack over https: one TLS context per process, with the system's trust."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import trustme

from bot.cli.doctor.slack import slack_checks
from bot.runtime import slack_clients
from handlers import files
from handlers.clicks import Clicker, answer
from tests.conftest import make_settings
from tests.fakes.slack import FakeSlack


@pytest.fixture
def slack(tmp_path, monkeypatch) -> Iterator[FakeSlack]:
    """Slack faked over https, its certificate from a test CA that SSL_CERT_FILE trusts."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    slack_clients.tls.cache_clear()  # made afresh, with this trust
    fake = FakeSlack(tls=server)
    yield fake
    fake.close()
    slack_clients.tls.cache_clear()


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """One entry each time a CA store is loaded: each TLS context made loads one, the system's
    (urllib's default, ours) or a file (httpx's default: certifi's, or SSL_CERT_FILE)."""
    count: list[str] = []
    for name in ("load_default_certs", "load_verify_locations"):
        load = getattr(ssl.SSLContext, name)

        def counted(self, *args, load=load, name=name, **kwargs):
            count.append(name)
            return load(self, *args, **kwargs)

        monkeypatch.setattr(ssl.SSLContext, name, counted)
    return count


def test_an_inline_ask_over_https_loads_the_ca_store_once(loads, slack, driver):
    """Bolt's auth.test, an inline ask's approval post and its private notice all go over one
    TLS context, made once and verifying Slack's certificate with the system's trust."""
    assert driver.command("grace@example.com").status == 200
    slack.wait_for("chat.postMessage", timeout=10)
    slack.wait_for("chat.postEphemeral", timeout=10)
    assert slack.of("auth.test") and slack.url.startswith("https://")
    assert len(loads) == 1


def test_a_click_answered_through_its_response_url_shares_the_context(loads, slack, bot):
    """A click's private answer through its (https) response URL uses the same context."""
    clicker = Clicker("UREQ", "C1", response_url=f"{slack.url}hooks-T1-B1")
    answer(bot.deps, clicker, "Nothing changed")
    assert slack.of("hooks-T1-B1")[0].args["text"] == "Nothing changed"
    assert len(loads) == 1


def test_slack_over_plain_http_loads_no_ca_store(loads, tmp_path):
    """A loopback stand-in over http (the tests' and benchmarks' fakes) costs no TLS at all."""
    fake = FakeSlack()
    try:
        client = slack_clients.slack_client(make_settings(tmp_path, fake.url))
        assert client.auth_test()["ok"] and client.ssl is None
    finally:
        fake.close()
    assert loads == []


def test_a_workflow_steps_own_token_completes_it_over_the_same_context(loads, slack, bot):
    """The client of a workflow run's own token (completing the step) shares the context."""
    bot.deps.courier.remember_step_token("Fx1", "xwfp-run")
    assert bot.deps.courier.complete_step("Fx1", outputs={"request_id": "r1"})
    assert slack.of("functions.completeSuccess")[0].args["function_execution_id"] == "Fx1"
    assert len(loads) == 1


def test_a_bulk_lists_download_from_slack_shares_the_context(loads, slack):
    """The bulk form's file, downloaded from Slack with the bot token, goes over it too."""
    slack_clients.tls()  # as the bot's clients made it when it started
    url = httpx.URL(f"{slack.url}files-T1-F1")
    text, problem = files._fetch(url, "xoxb-test", time.monotonic() + 5, threading.Event())
    assert problem is None and json.loads(text) and slack.of("files-T1-F1")
    assert len(loads) == 1


def test_the_doctors_slack_checks_load_the_ca_store_once(loads, slack, settings):
    """`invite-bot doctor`'s Slack checks (token, scopes, channel, approvers) share it too."""
    checks = slack_checks(settings)
    assert len(checks) >= 3 and len(slack.calls) >= 3
    assert len(loads) == 1
