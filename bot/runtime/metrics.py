"""What an operator's Prometheus scrapes at GET /metrics (prometheus_client, text format).

The counters are process-wide, as prometheus_client's default registry is; the outbox depth is
counted by the sweeper on the store's due index (a scrape never touches the store). Nothing
here knows Slack.
"""

from __future__ import annotations

import re

from prometheus_client import Counter, Gauge, Histogram

from bot.runtime import logs

HTTP_REQUESTS = Counter(
    "invitebot_http_requests",
    "HTTP requests served, by endpoint and status code",
    ["endpoint", "code"],
)
ACK_SECONDS = Histogram(
    "invitebot_ack_seconds",
    "Time from a Slack request's arrival to the bot's answer (the ack)",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0, 5.0),
)
REQUEST_EVENTS = Counter(
    "invitebot_request_events",
    "Requests by outcome: every audit event (submitted, approved, denied, invited, expired, ...)",
    ["event"],
)
INVITATIONS = Counter(
    "invitebot_invitations",
    "Invitations awork was asked for, by result (created; unsure: its answer was lost, with "
    "why; or failed with awork's error code)",
    ["result", "code"],
)
AWORK_CALLS = Counter(
    "invitebot_awork_calls",
    "Calls to awork's API, by method, endpoint and HTTP status ('error': no answer)",
    ["method", "endpoint", "status"],
)
AWORK_SECONDS = Histogram(
    "invitebot_awork_call_seconds",
    "Latency of calls to awork's API",
    ["endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0),
)
AWORK_RATE_LIMITED = Counter(
    "invitebot_awork_rate_limited", "Answers 429 (rate limited) from awork"
)
SLACK_CALLS = Counter(
    "invitebot_slack_calls",
    "Slack Web API calls, by method and outcome ('ok', Slack's error, or the exception)",
    ["method", "outcome"],
)
SLACK_RETRIES = Counter(
    "invitebot_slack_retries",
    "Slack Web API calls retried by slack_sdk's retry handlers, by reason",
    ["reason"],
)

STORE_RETRIES = Counter(
    "invitebot_store_retries",
    "Store operations done again on a fresh connection after their connection failed",
)
STORE_BUSY = Counter(
    "invitebot_store_busy",
    "Slack requests answered 'the bot is busy' because the store missed the ack's time budget",
    ["kind"],
)
CLICKS_NOT_STORED = Counter(
    "invitebot_clicks_not_stored",
    "Clicks whose decision could not be stored; the clicker was asked to click again",
    ["action"],
)

INVITATION_EVENTS = {"invited": "created", "invite_unsure": "unsure", "invite_failed": "failed"}
_ID_SEGMENT = re.compile(r"/[0-9a-fA-F-]{16,}(?=/|$)")


def audit_event(event: str, detail: dict) -> None:
    """Count one audit event; invitations also by their result."""
    REQUEST_EVENTS.labels(event).inc()
    result = INVITATION_EVENTS.get(event)
    if result is not None:
        INVITATIONS.labels(result, str(detail.get("code") or "")).inc()


def awork_endpoint(path: str) -> str:
    """A path without its ids or addresses (`/users/3f2a…/contactinfos` ->
    `/users/{id}/contactinfos`, `/users/autofill/ada@x.com` -> `/users/autofill/{email}`): the
    label set stays small, and nobody's address reaches /metrics."""
    trimmed = path.split("/api/v1", 1)[-1] or "/"
    return _ID_SEGMENT.sub("/{id}", logs.without_addresses(trimmed))


WORK_PENDING = Gauge(
    "invitebot_work_after_acks_pending",
    "Work handed on after acks in this process, queued or running, by pool: work (posts, DMs, "
    "awork calls; above INVITE_THREADS it queues) and modals (8 threads)",
    ["pool"],
)
OUTBOX_DEPTH = Gauge(
    "invitebot_outbox_depth",
    "Requests with Slack posts or follow-ups due now (counted by each sweep, on the due index)",
)
POLICY_DECISIONS = Counter(
    "invitebot_policy_decisions",
    "Decisions the invitation policy (INVITE_POLICY) took, by rule and outcome (refused, "
    "approved without an approver, asked of a route's or the default approvers)",
    ["rule", "outcome"],
)
POLICY_VALID = Gauge(
    "invitebot_policy_valid",
    "1 while the policy file in place is the one in force; 0 when a change did not validate "
    "(the last good policy stays in force)",
)
