"""What every outbound HTTPS call of the bot shares - to Slack (its Web API, response URLs,
files) and to awork: the system's CA store, loaded once per process, and the proxy the
environment names for awork.

slack_sdk gives urllib no TLS context unless it is handed one, and urllib then makes one for
each connection, loading the whole CA store each time (~20 ms of CPU a call on these
machines); slack_sdk connects for every call (bench/slack_tls.py, docs/benchmarks.md)."""

from __future__ import annotations

import functools
import ssl
import urllib.request
from urllib.parse import urlsplit


def _context() -> ssl.SSLContext:
    """The system's CA store (or SSL_CERT_FILE / SSL_CERT_DIR where set) and HTTP/1.1 offered
    by ALPN, as urllib's own context for each connection would be."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


@functools.cache
def tls() -> ssl.SSLContext:
    """The TLS context of the bot's calls through urllib (slack_sdk's), made once per process.
    The store is read once: a CA added to it later counts after a restart, as for any
    long-lived client."""
    return _context()


@functools.cache
def httpx_tls() -> ssl.SSLContext:
    """The same, for the bot's httpx clients (awork, Slack's files): a context of their own,
    because httpcore sets the ALPN list on the context it is given at every connection it makes,
    which must not happen to a context another thread is making a connection with."""
    return _context()


def tls_for(url: str, httpx: bool = False) -> ssl.SSLContext | None:
    """`tls()` (`httpx_tls()` for an httpx client) for an https URL; None for plain http (a
    loopback stand-in), which needs none."""
    if not url.lower().startswith("https:"):
        return None
    return httpx_tls() if httpx else tls()


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for `url`, as urllib, curl and httpx read it:
    HTTPS_PROXY for an https URL (HTTP_PROXY for http, ALL_PROXY for either; the lower-case
    names first), none when NO_PROXY covers its host (and port). A value without a scheme is
    an http proxy, as they take it. (slack_sdk, for Slack, reads HTTPS_PROXY or else HTTP_PROXY
    and no NO_PROXY.)"""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if urllib.request.proxy_bypass(f"{host}:{parts.port}" if parts.port else host):
        return None
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy:
        return None
    return proxy if "://" in proxy else f"http://{proxy}"
