"""The bot's outbound HTTPS, to Slack and to awork: one TLS context per process with the
system's trust, and the proxy the environment names."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import trustme

from bot.cli.doctor.awork import awork_checks
from bot.cli.doctor.slack import slack_checks
from bot.runtime import outbound, slack_clients
from bot.runtime.app import build
from handlers import files
from handlers.clicks import Clicker, answer
from tests.conftest import make_settings
from tests.fakes.awork import FakeAwork
from tests.fakes.slack import FakeSlack


@pytest.fixture
def server_tls(tmp_path, monkeypatch) -> Iterator[ssl.SSLContext]:
    """A server context with a certificate for 127.0.0.1 from a test CA that SSL_CERT_FILE
    trusts, as the system's store trusts Slack's and awork's."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    outbound.tls.cache_clear()  # made afresh, with this trust
    outbound.httpx_tls.cache_clear()
    yield server
    outbound.tls.cache_clear()
    outbound.httpx_tls.cache_clear()


@pytest.fixture
def slack(server_tls) -> Iterator[FakeSlack]:
    """Slack faked over https."""
    fake = FakeSlack(tls=server_tls)
    yield fake
    fake.close()


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


def test_an_inline_ask_over_https_loads_no_ca_store(loads, slack, driver):
    """The bot loads the system's CA store once for Slack as it is made (Bolt's auth.test
    verified Slack's certificate with it; awork's client, faked here, makes its own only at
    its first call), and an inline ask's approval post and private notice load none."""
    assert slack.of("auth.test") and slack.url.startswith("https://")
    assert loads == ["load_default_certs"]
    assert driver.command("grace@example.com").status == 200
    slack.wait_for("chat.postMessage", timeout=10)
    slack.wait_for("chat.postEphemeral", timeout=10)
    assert len(loads) == 1


def test_a_click_answered_through_its_response_url_shares_the_context(loads, slack, bot):
    """A click's private answer through its (https) response URL loads no CA store either."""
    built = len(loads)
    clicker = Clicker("UREQ", "C1", response_url=f"{slack.url}hooks-T1-B1")
    answer(bot.deps, clicker, "Nothing changed")
    assert slack.of("hooks-T1-B1")[0].args["text"] == "Nothing changed"
    assert len(loads) == built


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
    built = len(loads)
    bot.deps.courier.remember_step_token("Fx1", "xwfp-run")
    assert bot.deps.courier.complete_step("Fx1", outputs={"request_id": "r1"})
    assert slack.of("functions.completeSuccess")[0].args["function_execution_id"] == "Fx1"
    assert len(loads) == built


def test_bulk_lists_downloaded_from_slack_share_the_httpx_context(loads, slack):
    """The bulk form's files, downloaded from Slack with the bot token: one CA store for all,
    the one awork's client uses (httpx's own would load one for each download)."""
    url = httpx.URL(f"{slack.url}files-T1-F1")
    for _ in range(2):
        text, problem = files._fetch(url, "xoxb-test", time.monotonic() + 5, threading.Event())
        assert problem is None and json.loads(text)
    assert len(slack.of("files-T1-F1")) == 2 and len(loads) == 1
    assert outbound.httpx_tls.cache_info().currsize == 1


def test_the_doctors_slack_checks_load_the_ca_store_once(loads, slack, settings):
    """`invite-bot doctor`'s Slack checks (token, scopes, channel, approvers) share it too."""
    checks = slack_checks(settings)
    assert len(checks) >= 3 and len(slack.calls) >= 3
    assert len(loads) == 1


def test_awork_over_https_loads_no_ca_store_per_call(loads, server_tls, slack, tmp_path):
    """The bot's awork calls check awork's certificate with the system's trust, in a context
    made at the first of them, not at start (httpx's own would load certifi's bundle, or
    SSL_CERT_FILE, itself), and loaded no more after it."""
    url, server = FakeAwork().serve(tls=server_tls)
    bot = build(make_settings(tmp_path, slack.url, AWORK_API_URL=url))
    try:
        built = len(loads)
        assert url.startswith("https://") and [r.name for r in bot.awork.roles()]
        assert bot.awork.teams() is not None
    finally:
        bot.shutdown(timeout=5)
        server.shutdown()
    assert built == 1 and loads == ["load_default_certs"] * 2


class Proxy(ThreadingHTTPServer):
    """A forward proxy on loopback that answers every request itself: `[]`, as awork's lists."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy.seen.append(self.path)  # a proxy is sent the absolute URL
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"[]")

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def proxy(monkeypatch) -> Iterator[Proxy]:
    """HTTP_PROXY names a loopback proxy; no other proxy setting is left from the environment."""
    for name in ("HTTPS_PROXY", "https_proxy", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    running = Proxy()
    monkeypatch.setenv("HTTP_PROXY", running.url)
    yield running
    running.shutdown()
    running.server_close()


def test_the_doctors_awork_checks_go_through_the_proxy_too(proxy, tmp_path):
    """`invite-bot doctor` reaches awork as the bot does, through the environment's proxy."""
    settings = make_settings(tmp_path, AWORK_API_URL="http://awork.invalid/api/v1")
    awork_checks(settings)
    assert proxy.seen and proxy.seen[0].startswith("http://awork.invalid/api/v1/users/me")


@pytest.mark.parametrize("bypassed", [False, True])
def test_awork_is_reached_through_the_environments_proxy(bypassed, proxy, monkeypatch, tmp_path):
    """HTTP(S)_PROXY takes the bot's awork calls through the proxy, as slack_sdk takes Slack's;
    a host NO_PROXY names is reached directly."""
    url, server = FakeAwork().serve()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1" if bypassed else "example.com")
    settings = make_settings(tmp_path, AWORK_API_URL=url)
    bot = build(settings, token_verification=False)
    try:
        roles = bot.awork.roles()
    finally:
        bot.shutdown(timeout=5)
        server.shutdown()
    if bypassed:
        assert roles and not proxy.seen
    else:
        assert roles == [] and proxy.seen[0].startswith(f"{url}/roles")


@pytest.mark.parametrize(
    ("environment", "url", "proxy"),
    [
        (
            {"HTTPS_PROXY": "proxy.corp:3128"},
            "https://api.awork.com/api/v1",
            "http://proxy.corp:3128",
        ),
        ({"https_proxy": "http://u:pw@p:1"}, "https://api.awork.com/api/v1", "http://u:pw@p:1"),
        ({"HTTP_PROXY": "http://p:1"}, "https://api.awork.com/api/v1", None),
        ({"ALL_PROXY": "http://p:1"}, "https://api.awork.com/api/v1", "http://p:1"),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"}, "https://api.awork.com/api/v1", None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "awork.com"}, "https://api.awork.com/x", None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "a.test:8443"}, "https://a.test:8443/x", None),
        (
            {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "a.test:8443"},
            "https://a.test/x",
            "http://p:1",
        ),
    ],
)
def test_the_proxy_for_a_url_is_read_as_curl_and_httpx_read_it(
    environment, url, proxy, monkeypatch
):
    """HTTPS_PROXY for https (ALL_PROXY for any), a value without a scheme an http proxy, and
    NO_PROXY by host, domain, port or `*`."""
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert outbound.proxy_for(url) == proxy
