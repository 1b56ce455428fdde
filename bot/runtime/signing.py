"""Slack's signature check, without Bolt's log line.

Bolt's own check logs a refused request's whole body at INFO: a megabyte of log for every
unsigned megabyte posted, a late request's response_url (a credential), lines forged by a
newline in the body. This one refuses the same requests with the same 401 and logs the method,
path, length and reason - at WARNING, at most one line every ten seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt.middleware.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import Clock, SignatureVerifier

from bot.runtime.logs import Throttled

log = logging.getLogger(__name__)
HTTP_REQUEST = "http_request"  # the Bolt context's key for "POST /slack/events" (web.py sets it)
MAX_AGE = 5 * 60  # Slack's window for a request's timestamp, as SignatureVerifier checks it


class SignedOnly(Middleware):
    """Lets through only requests Slack signed with `signing_secret` (Socket Mode's come over
    Slack's own connection and are not signed)."""

    def __init__(self, signing_secret: str, clock: Clock | None = None) -> None:
        self.signing_secret = signing_secret
        self.clock = clock or Clock()
        self.refused = Throttled(log)
        self._verifier: SignatureVerifier | None = None

    @property
    def verifier(self) -> SignatureVerifier:
        # Made at the first request: Socket Mode runs without a signing secret, which
        # SignatureVerifier refuses.
        if self._verifier is None:
            self._verifier = SignatureVerifier(self.signing_secret, clock=self.clock)
        return self._verifier

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse:
        if req.mode == "socket_mode":
            return next()
        reason = self.refusal(req)
        if reason is None:
            return next()
        self.refused.warning(
            "refused %s (%s bytes): %s",
            req.context.get(HTTP_REQUEST) or "a request",
            _first(req.headers, "content-length") or len(req.raw_body.encode()),
            reason,
        )
        return BoltResponse(status=401, body={"error": "invalid request"})

    def refusal(self, req: BoltRequest) -> str | None:
        """Why the request is not Slack's, or None when it is."""
        timestamp = _first(req.headers, "x-slack-request-timestamp")
        signature = _first(req.headers, "x-slack-signature")
        if not signature:
            return "no signature"
        if not (timestamp and timestamp.isascii() and timestamp.isdigit()):
            return "no valid timestamp"
        if abs(self.clock.now() - int(timestamp)) > MAX_AGE:
            return "timestamp more than 5 minutes away"
        if not self.verifier.is_valid(req.raw_body, timestamp, signature):
            return "signature does not match"
        return None


def _first(headers: dict[str, Any], name: str) -> str | None:
    values = headers.get(name) or [None]
    return values[0]
