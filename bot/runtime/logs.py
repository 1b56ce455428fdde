"""Logging that cannot leak credentials or be forged.

slack_sdk (and Bolt) log whole request bodies at DEBUG - a DM's body holds the acceptance link -
so their loggers never go below INFO, whatever LOG_LEVEL says. Configured secret values and
Slack's response URLs are also masked in every record, as a second line of defence. A message
is one line whatever it quotes: control characters are escaped, so a newline in a request
cannot start a line of its own.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from bot.runtime.config import Settings

CHATTY_AT_DEBUG = ("slack_sdk", "slack_bolt", "httpcore", "httpx", "urllib3")
MASK = "[redacted]"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A response_url (https://hooks.slack.com/actions/...) lets anyone answer in the conversation it
# came from for 30 minutes: a credential. Matched by its host, as written, JSON- or URL-encoded.
RESPONSE_URL = re.compile(r"hooks\.slack\.com(?:/|\\/|%2F)[\w%/\\.-]*", re.IGNORECASE)
MASKED_RESPONSE_URL = "hooks.slack.com/" + MASK
# A path segment holding an address (awork's /users/autofill/ada@example.com): a person's, kept
# out of the logs as out of /metrics (bot/runtime/metrics.py).
ADDRESS_IN_PATH = re.compile(r"/[^/?#]*(?:@|%40)[^/?#]*")
# The Slack request (or background job) a log line belongs to; follow-up work carries it along.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


_ID_PREFIX = secrets.token_hex(3)  # this process
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """Unique across processes and restarts; no system call, so the ack path never lets go
    of the interpreter lock for it."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):06x}"


REQUEST_ID_HEADER = "x-invite-request-id"  # set by the HTTP layer on the request it hands Bolt


def tag_request(req: Any, next: Callable[[], Any]) -> Any:
    """Bolt middleware: the request's id for everything the listener (and the work it leaves
    for after the ack) logs - the HTTP layer's id, or a new one (Socket Mode). Bolt calls the
    listener after the middleware has returned, so the id stays set in this thread until the
    next request sets its own (the HTTP layer resets it when the response is out)."""
    given = (req.headers.get(REQUEST_ID_HEADER) or [None])[0]
    REQUEST_ID.set(given or new_request_id())
    return next()


def _escapes(codes: Iterable[int], style: str) -> dict[int, str]:
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"} if style == "text" else {}
    return {code: named.get(chr(code), f"\\u{code:04x}") for code in codes}


# Python's str.splitlines() breaks at each of these, some viewers at U+2028 and U+2029 too.
_C0_C1 = [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]
ONE_LINE = _escapes(_C0_C1, "text")
# json.dumps escapes C0 itself; with ensure_ascii=False it leaves DEL, C1 and U+2028/9 as they are.
JSON_ONE_LINE = _escapes([0x7F, *range(0x80, 0xA0), 0x2028, 0x2029], "json")


def one_line(text: str) -> str:
    """`text` with its control characters escaped (a newline reads as \\n): one line."""
    return text.translate(ONE_LINE)


class OneLineText(logging.Formatter):
    """LOG_FORMAT=text: `time level logger: message` on one line, its control characters
    escaped. An exception's traceback follows on lines of its own, each indented, so no line
    but a record's first starts at the margin."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        head, _, rest = super().format(record).partition("\n")
        if not rest:
            return head
        lines = rest.translate({**ONE_LINE, ord("\n"): "\n"}).split("\n")
        return "\n".join([head, *("    " + line for line in lines)])


class JsonLines(logging.Formatter):
    """LOG_FORMAT=json: one JSON object per line (time, level, logger, message, request_id,
    and the exception's traceback as one string)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False).translate(JSON_ONE_LINE)


def maskable(secrets: Iterable[str]) -> list[str]:
    """The values worth masking, the longest first. A value shorter than 8 characters is no
    credential worth the name and would mask ordinary words (a signing secret `s` would turn
    "workspace" into "work[redacted]pace"), so it is left."""
    return sorted({s for s in secrets if len(s) >= 8}, key=len, reverse=True)


def masked(text: str, secrets: Iterable[str]) -> str:
    """`text` with each of `secrets` (see `maskable`) replaced by the mask."""
    for secret in maskable(secrets):
        text = text.replace(secret, MASK)
    return text


def masked_payload(value: Any, secrets: Iterable[str]) -> Any:
    """A copy of a Web API call's JSON with every string in it, however deep, `masked`."""
    ordered = maskable(secrets)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            for secret in ordered:
                item = item.replace(secret, MASK)
            return item
        if isinstance(item, dict):
            return {key: walk(inner) for key, inner in item.items()}
        if isinstance(item, list | tuple):
            return [walk(inner) for inner in item]
        return item

    return walk(value) if ordered else value


class RedactSecrets(logging.Filter):
    """Masks the secrets and response URLs in a record's message and its traceback."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        return RESPONSE_URL.sub(MASKED_RESPONSE_URL, masked(text, self.secrets))

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        safe = self.mask(message)
        if safe != message:
            record.msg, record.args = safe, None
        if record.exc_info and not record.exc_text:
            # The formatters take the traceback from here rather than format it again.
            record.exc_text = self.mask(logging.Formatter().formatException(record.exc_info))
        return True


class Throttled:
    """A warning anyone on the internet can provoke (a refused request): at most one line
    per `every` seconds; the next one says how many were left out meanwhile."""

    def __init__(
        self,
        logger: logging.Logger,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.every = every
        self.clock = clock
        self._lock = threading.Lock()
        self._last: float | None = None
        self._left_out = 0

    def warning(self, message: str, *args: object) -> None:
        with self._lock:
            now = self.clock()
            if self._last is not None and now - self._last < self.every:
                self._left_out += 1
                return
            left_out, self._left_out, self._last = self._left_out, 0, now
        if left_out:
            message += f" ({left_out} more like it not logged)"
        self.logger.warning(message, *args)


def secret_values(settings: Settings) -> list[str]:
    values = [
        settings.slack_bot_token.get_secret_value(),
        settings.slack_signing_secret.get_secret_value(),
        settings.awork_api_key.get_secret_value(),
    ]
    if settings.slack_app_token is not None:
        values.append(settings.slack_app_token.get_secret_value())
    if settings.invite_database_url is not None:
        url = settings.invite_database_url.get_secret_value()
        values.append(url)
        values.extend(database_password(url))
    return values


def database_password(url: str) -> list[str]:
    """The password of a postgresql:// URL, as written and decoded, to mask it in logs."""
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    return [password, unquote(password)] if password else []


def without_addresses(text: str) -> str:
    """`text` (a URL, a path) with each path segment that holds an address as `{email}`."""
    return ADDRESS_IN_PATH.sub("/{email}", text)


class AddressesOut(logging.Filter):
    """httpx logs every request's URL at INFO (`HTTP Request: GET https://…`): the address in
    awork's `/users/autofill/ada@example.com` - the person asked for - is left out of it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) > 1:
            url = str(record.args[1])
            if "@" in url or "%40" in url:
                record.args = (record.args[0], without_addresses(url), *record.args[2:])
        return True


ADDRESSES_OUT = AddressesOut()


def quiet_libraries(level: int) -> None:
    """Keep the libraries that log request bodies at INFO or above, and the addresses in the
    URLs httpx logs out of the log."""
    for name in CHATTY_AT_DEBUG:
        logging.getLogger(name).setLevel(max(level, logging.INFO))
    logging.getLogger("httpx").addFilter(ADDRESSES_OUT)  # once: a filter is not added twice


def bolt_logger() -> logging.Logger:
    """The logger Bolt is handed: at INFO or above whatever LOG_LEVEL says. Bolt gives every
    logger it makes this one's level (without it, the root's: at DEBUG it logs each ack's body,
    a person's address in it)."""
    logger = logging.getLogger("slack_bolt.App")
    logger.setLevel(max(logging.getLogger().getEffectiveLevel(), logging.INFO))
    return logger


def prepare(handler: logging.Handler, settings: Settings) -> logging.Handler:
    """`handler` with the secret mask and the format LOG_FORMAT asks for."""
    handler.addFilter(RedactSecrets(secret_values(settings)))
    handler.setFormatter(JsonLines() if settings.log_format == "json" else OneLineText(TEXT_FORMAT))
    return handler


def configure(settings: Settings) -> None:
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        level = logging.INFO
    logging.basicConfig(level=level)
    quiet_libraries(level)
    for handler in logging.getLogger().handlers:
        prepare(handler, settings)
