"""Posting to Slack on behalf of the flow: the approval message, notices, and link DMs.

A failed post is logged by its Slack error name and never stops the flow: the request is
already stored, and its state is what counts.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.models import InviteRequest
from bot.service import InviteService

log = logging.getLogger(__name__)


def _error(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error", "unknown"))
    return type(exc).__name__


def dm(client: WebClient, user_id: str, text: str) -> bool:
    """A direct message from the bot to one person."""
    try:
        channel = client.conversations_open(users=user_id)["channel"]["id"]
        client.chat_postMessage(channel=channel, text=text, unfurl_links=False)
        return True
    except (SlackApiError, OSError) as exc:
        log.warning("could not DM %s: %s", user_id, _error(exc))
        return False


def tell(client: WebClient, user_id: str, channel: str | None, text: str) -> None:
    """A private note: ephemeral in `channel` when the bot can post there, else a DM."""
    if channel:
        try:
            client.chat_postEphemeral(channel=channel, user=user_id, text=text)
            return
        except (SlackApiError, OSError) as exc:
            log.info(
                "ephemeral to %s in %s failed (%s); sending a DM", user_id, channel, _error(exc)
            )
    dm(client, user_id, text)


def post_approval(
    client: WebClient, service: InviteService, request: InviteRequest, channel: str
) -> None:
    text, message_blocks = blocks.approval_message(request)
    try:
        posted = client.chat_postMessage(channel=channel, text=text, blocks=message_blocks)
    except (SlackApiError, OSError) as exc:
        log.error("request %s: could not post the approval message: %s", request.id, _error(exc))
        return
    service.record_approval_message(request.id, posted["channel"], posted["ts"])


def refresh_approval(client: WebClient, request: InviteRequest) -> None:
    """Show the request's current state on its approval message."""
    if request.approval_message is None:
        return
    text, message_blocks = blocks.approval_message(request)
    try:
        client.chat_update(
            channel=request.approval_message.channel,
            ts=request.approval_message.ts,
            text=text,
            blocks=message_blocks,
        )
    except (SlackApiError, OSError) as exc:
        log.warning(
            "request %s: could not update the approval message: %s", request.id, _error(exc)
        )


def slack_user_for(client: WebClient, address: str) -> str | None:
    """The Slack member with this email, if there is one (needs users:read.email)."""
    try:
        user = client.users_lookupByEmail(email=address)["user"]
    except (SlackApiError, OSError) as exc:
        if _error(exc) != "users_not_found":
            log.warning("users.lookupByEmail failed: %s", _error(exc))
        return None
    if user.get("deleted") or user.get("is_bot"):
        return None
    return user.get("id")


def deliver_link(
    client: WebClient, service: InviteService, request: InviteRequest
) -> InviteRequest:
    """DM the acceptance link: to the invitee if they are in Slack, else to the requester."""
    link = service.accept_link(request)
    invitee = slack_user_for(client, request.details.email)
    sent_to = None
    if invitee and dm(client, invitee, blocks.link_message(request, link, to_invitee=True)):
        sent_to = invitee
    elif dm(client, request.requester_id, blocks.link_message(request, link, to_invitee=False)):
        sent_to = request.requester_id
    return service.store.update(request.id, link_sent_to=sent_to) or request


def tell_requester(client: WebClient, request: InviteRequest) -> None:
    tell(client, request.requester_id, request.origin_channel, blocks.outcome_notice(request))
