"""Logging that cannot leak credentials.

slack_sdk (and Bolt) log whole request bodies at DEBUG - a DM's body holds the acceptance link -
so their loggers never go below INFO, whatever LOG_LEVEL says. Configured secret values are also
masked in every record, as a second line of defence.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from bot.runtime.config import Settings

CHATTY_AT_DEBUG = ("slack_sdk", "slack_bolt", "httpcore", "httpx", "urllib3")
MASK = "[redacted]"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
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
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def masked(text: str, secrets: Iterable[str]) -> str:
    """`text` with each of `secrets` replaced by the mask, the longest first. A value shorter
    than 8 characters is no credential worth the name and would mask ordinary words (a
    signing secret `s` would turn "workspace" into "work[redacted]pace"), so it is left."""
    for secret in sorted({s for s in secrets if len(s) >= 8}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        safe = masked(message, self.secrets)
        if safe != message:
            record.msg, record.args = safe, None
        return True


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


def quiet_libraries(level: int) -> None:
    """Keep the libraries that log request bodies at INFO or above."""
    for name in CHATTY_AT_DEBUG:
        logging.getLogger(name).setLevel(max(level, logging.INFO))


def configure(settings: Settings) -> None:
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        level = logging.INFO
    logging.basicConfig(level=level, format=TEXT_FORMAT)
    quiet_libraries(level)
    redact = RedactSecrets(secret_values(settings))
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
        if settings.log_format == "json":
            handler.setFormatter(JsonLines())
