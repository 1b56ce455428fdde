"""What is said to one person in answer to what they just did: help and usage of the command,
the form's duplicate error, refusals of clicks that changed nothing, and the answers to Accept.
Pure functions and texts.

Every piece of user text goes through `escape` (bot/ui/mrkdwn.py) before it is put into mrkdwn.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.domain.clock import utcnow
from bot.domain.records import InviteRequest, Status
from bot.ui.mrkdwn import approved_by, escape

NOT_FOUND_TEXT = "I can't find that invitation request any more."
# The slash command's documented name; the texts name the one actually installed
# (`/awork-invite` where Slack keeps `/invite`), passed in as `command`.
DEFAULT_COMMAND = "/invite"


def help_text(command: str = DEFAULT_COMMAND) -> str:
    """`/invite help`, naming the command as installed."""
    return (
        f"*{command}* opens the form; `{command} bulk` opens the form for many people (a list "
        "or a CSV file, up to 500).\n"
        f"*Without a form:* `{command} ada@example.com` asks for one person; "
        f'`{command} a@x.com b@y.com role:"Project Manager" team:Design team:Engineering '
        "--no-email` asks for several at once, with a role and teams by name (any case; the "
        "start of a name is enough when it is unique) and without awork's welcome email. One "
        "per line as `email, first name, last name` works too.\n"
        f"*Lists:* `{command} pending [page]` (approvers: requests waiting for you), "
        f"`{command} mine [page]` (your requests), `{command} status <request id>`, "
        f"`{command} help`."
    )


def usage(command: str = DEFAULT_COMMAND) -> str:
    """The one-line reminder under a command's error."""
    return (
        f'Usage: `{command} a@x.com b@y.com role:"Project Manager" team:Design --no-email` '
        f"(`{command} help` for more)."
    )


def duplicate_error(kind: str, request: InviteRequest | None, link: str | None) -> str:
    """The email field's error when the admins need not be asked (plain text, shown in the form)."""
    if kind == "member" or request is None:
        return "This address is already in the awork workspace; no invitation is needed."
    since = request.created_at.strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"There is already an open request for this address (request {request.id}, since {since})."
    )
    return f"{text} {link}" if link else text


def turned_away(
    turned: Any, plain: bool = False, now: datetime | None = None, on_behalf: bool = False
) -> str:
    """Why nothing was asked for (bot.services.asking.Turned), naming the policy's rule:
    for a private answer (mrkdwn), or `plain` for a form's field error. `on_behalf`: said of
    the requester to someone else (a workflow), not to them."""
    show = (lambda text: str(text)) if plain else escape
    rule = f" (policy rule: {show(turned.rule)})" if turned.rule else ""
    if turned.why in ("member", "open"):
        return duplicate_error(turned.why, turned.existing, None)
    if turned.why == "not_requester":
        who = sorted(turned.ask_instead)
        instead = (
            "one of the approvers"
            if plain or not who
            else ", ".join(f"<@{user}>" for user in who[:10])
            + (" or another approver" if len(who) > 10 else "")
        )
        if on_behalf:
            return "The requester may not ask for awork invitations (policy rule: requesters)."
        return (
            "You can't ask for awork invitations yourself (policy rule: requesters). "
            f"Please ask {instead} to invite the person."
        )
    if turned.why == "blocked_domain":
        return (
            f"Addresses at {show(turned.entry)} are not invited to awork{rule}; nobody was asked."
        )
    if turned.why == "role_not_on_route":
        allowed = ", ".join(show(role) for role in turned.roles)
        return (
            f"The role “{show(turned.entry)}” can't be asked for here{rule}. "
            f"Choose one of: {allowed}."
        )
    if turned.why == "daily_limit":
        return (
            f"You have reached today's limit of invitations{rule}. {resets(turned.resets_at, now)}"
        )
    return f"This can't be asked for{rule}."


def resets(at: datetime | None, now: datetime | None = None) -> str:
    """When a daily limit lets the requester ask again (UTC midnight), and in how long."""
    if at is None:
        return ""
    left = max(0, int((at - (now or utcnow())).total_seconds()) // 60)
    hours, minutes = divmod(left, 60)
    wait = f"{hours} h {minutes} min" if hours else f"{minutes} min"
    return f"Asking is possible again from {at:%H:%M} UTC on {at:%Y-%m-%d} (in {wait})."


def refusal(request: Any, reason: str | None, decided: Callable[[Any], str] | None = None) -> str:
    """Why a click or a deny changed nothing, said privately to the clicker. `decided` words
    an already-decided request (a batch has its own)."""
    if request is None:
        return NOT_FOUND_TEXT
    if reason == "not_approver":
        return NOT_APPROVER
    if reason == "already_approved":
        return "Your approval is in; this admin-role invitation needs a second approver."
    if reason == "own_request":
        return "You can't approve your own request; another approver will decide it."
    return (decided or already_decided)(request)


FIRST_APPROVAL = ":white_check_mark: Your approval is in. An admin role needs a second approver, who has been shown it."
NOT_APPROVER = ":lock: Only approvers can decide on invitation requests."
# The store missed the ack's time budget: nothing was stored, and the person hears so in time.
BUSY = ":hourglass: The bot is busy — your request was not stored. Please try again in a minute."
# A click's decision could not be stored (the store failed, even on a fresh connection).
CLICK_AGAIN = ":warning: That didn't go through — the bot could not store it. Please click again."


def already_decided(request: InviteRequest) -> str:
    who = approved_by(request, "someone else")
    denier = f"<@{request.decided_by}>" if request.decided_by else "someone else"
    words = {
        Status.INVITING: f"was already approved by {who} and is being sent",
        Status.INVITED: f"was already approved by {who}",
        Status.DENIED: f"was already denied by {denier}",
        Status.FAILED: f"was already approved by {who}, and awork refused it"
        if not (request.failure and request.failure.retryable)
        else f"was already approved by {who}, and the invitation did not go through",
        Status.PENDING: "is still waiting",
        Status.JOINING: f"was already approved by {who}",
        Status.JOINED: f"was already approved by {who}, and they joined",
        Status.LAPSED: "lapsed, and was already asked for again",
        Status.EXPIRED: "expired without a decision",
    }[request.status]
    return f"Nothing changed: the request for {escape(request.details.email)} {words}."


ACCEPT_ANSWERS = {
    "already_joined": "You have already joined. :tada:",
    "in_progress": "Your acceptance is being processed; one moment.",
    "lapsed": "This invitation can no longer be accepted. I've let the person who invited you know, so they can invite you again.",
    "refused": "awork did not accept this invitation. I've let the person who invited you know, so they can invite you again.",
    "unavailable": "awork is not answering right now. Please click *Accept invitation* again in a few minutes.",
    "no_code": "Please accept this invitation from awork's email.",
    "not_invitee": ":lock: This invitation is for someone else; only they can accept it.",
    "not_found": NOT_FOUND_TEXT,
    "not_requester": ":lock: Only the person who asked for this invitation can ask again.",
}
