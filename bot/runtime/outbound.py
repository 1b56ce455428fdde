"""What every outbound HTTPS call of the bot shares - to Slack (its Web API, response URLs,
files) and to awork: one TLS context per process, and the proxy the environment names.

slack_sdk gives urllib no TLS context unless it is handed one, and urllib then makes one for
each connection, loading the whole CA store each time (~20 ms of CPU a call on these
machines); slack_sdk connects for every call (bench/slack_tls.py, docs/benchmarks.md)."""

from __future__ import annotations

import functools
import ssl
import urllib.request
from urllib.parse import urlsplit


@functools.cache
def tls() -> ssl.SSLContext:
    """The TLS context of every HTTPS call the bot makes, made once per process: the system's
    CA store (or SSL_CERT_FILE / SSL_CERT_DIR where set) and HTTP/1.1 offered by ALPN, as
    urllib's own context for each connection would be. The store is read once: a CA added to it
    later counts after a restart, as for any long-lived client."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


def tls_for(url: str) -> ssl.SSLContext | None:
    """`tls()` for an https URL; None for plain http (a loopback stand-in), which needs none."""
    return tls() if url.lower().startswith("https:") else None


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for `url` (HTTPS_PROXY or HTTP_PROXY, in either case),
    None when NO_PROXY covers its host or none is set - read as urllib reads them, as slack_sdk
    does for the calls to Slack."""
    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme) or None
