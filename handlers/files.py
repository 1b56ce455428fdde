"""The bulk form's attached list, read from Slack's file host (files:read).

The bot token goes only to `https://files.slack.com` on the default port; no redirect is
followed. The file is read before the submission is acked (a bad list is a field error), so
the whole download has a deadline, and it is streamed: never more than the cap (plus the one
network chunk that crossed it) is held, whatever the file's size claims to be.
"""

from __future__ import annotations

import logging
import threading
import time

import httpx

from bot.i18n import N_
from bot.runtime.outbound import tls_for

log = logging.getLogger(__name__)

FILE_HOST = "files.slack.com"
MAX_FILE_BYTES = 1_000_000  # 500 lines of email and names are a few dozen kilobytes
DEADLINE = 2.0  # seconds for the whole download: Slack wants the submission acked within 3
# How the download reaches the host. None: the network (TLS, certificates checked). Tests put
# an httpx transport here, so that they never leave the process.
TRANSPORT: httpx.BaseTransport | None = None

# Why a file is not read: English msgids (the download runs on a thread of its own, outside
# the person's language), said in it by the form's listener (handlers/views.py).
NOT_SLACKS = N_("I can't read that file; attach a CSV or text file from your computer.")
TOO_BIG = N_("That file is too big for a list of people (1 MB at most).")  # MAX_FILE_BYTES
TOO_SLOW = N_("Reading the file took too long; please submit again.")
UNREACHABLE = N_("I couldn't read the file just now; please submit again.")
REDIRECTED = N_(
    "Slack sent the file on to another address, and I follow no redirects; attach the file again."
)
UNREADABLE = N_("I couldn't read the file; please submit again.")
NOT_UTF8 = N_("The file is not UTF-8 text; save it as CSV (UTF-8) and attach it again.")


def slack_file_url(raw: str) -> httpx.URL | None:
    """The URL, if it is Slack's file host over https on the default port (else None).
    Parsed by httpx itself, so what is checked is what would be fetched."""
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, TypeError, ValueError):
        return None
    ok = url.scheme == "https" and url.host == FILE_HOST and url.port is None and not url.userinfo
    return url if ok else None


def download(file: dict, token: str, deadline: float | None = None) -> tuple[str, str | None]:
    """The uploaded list's text, or why not (a sentence for the form, as its English msgid:
    the caller says it in the person's language). Answers within
    `deadline` seconds (DEADLINE unless given); a download still under way then is abandoned
    (and stops reading)."""
    deadline = DEADLINE if deadline is None else deadline
    url = slack_file_url(str(file.get("url_private_download") or file.get("url_private") or ""))
    if url is None:
        return "", NOT_SLACKS
    try:
        claimed = int(file.get("size") or 0)
    except (TypeError, ValueError):
        claimed = 0
    if claimed > MAX_FILE_BYTES:
        return "", TOO_BIG
    outcome: list[tuple[str, str | None]] = []
    abandoned = threading.Event()
    ends = time.monotonic() + deadline

    def fetch() -> None:
        outcome.append(_fetch(url, token, ends, abandoned))

    worker = threading.Thread(target=fetch, name="bulk-file", daemon=True)
    worker.start()
    worker.join(deadline)
    if not outcome:
        abandoned.set()
        log.warning("could not download the bulk list: not read within %.1f s", deadline)
        return "", TOO_SLOW
    return outcome[0]


def _fetch(
    url: httpx.URL, token: str, ends: float, abandoned: threading.Event
) -> tuple[str, str | None]:
    # Each network wait is bounded too, so an abandoned download ends soon after.
    timeout = httpx.Timeout(max(0.1, ends - time.monotonic()))
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}
    body = bytearray()
    try:
        with (
            # The TLS context of the bot's httpx clients, made once (bot/runtime/outbound.py).
            httpx.Client(
                transport=TRANSPORT,
                verify=tls_for(str(url), httpx=True) or True,
                timeout=timeout,
                follow_redirects=False,
            ) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            if response.is_redirect:
                log.warning(
                    "could not download the bulk list: redirected (%s)", response.status_code
                )
                return "", REDIRECTED
            if response.status_code != 200:
                log.warning("could not download the bulk list: HTTP %s", response.status_code)
                return "", UNREADABLE
            if response.headers.get("content-encoding", "identity").lower() != "identity":
                # Compressed despite "identity": its unpacked size is unknown until unpacked.
                log.warning("could not download the bulk list: sent compressed")
                return "", UNREADABLE
            for chunk in response.iter_bytes():  # identity: the bytes as they arrive
                body += chunk
                if len(body) > MAX_FILE_BYTES:
                    return "", TOO_BIG
                if abandoned.is_set() or time.monotonic() > ends:
                    return "", TOO_SLOW
    except httpx.HTTPError as exc:
        log.warning("could not download the bulk list: %s", type(exc).__name__)
        return "", TOO_SLOW if isinstance(exc, httpx.TimeoutException) else UNREACHABLE
    try:
        return bytes(body).decode("utf-8-sig"), None
    except UnicodeDecodeError:
        return "", NOT_UTF8
