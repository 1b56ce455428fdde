"""What is said to one person in answer to what they just did: help and usage of the command,
the form's duplicate error, refusals of clicks that changed nothing, and the answers to Accept.
Pure functions and texts, in the language being spoken (bot/i18n); the module's constants are
marked msgids, translated where they are shown (`_(answers.BUSY)`).

Every piece of user text goes through `escape` (bot/ui/mrkdwn.py) before it is put into mrkdwn.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.domain.clock import utcnow
from bot.domain.records import InviteRequest, Status
from bot.i18n import N_, _
from bot.i18n.dates import fallback
from bot.ui.mrkdwn import approved_by, escape

NOT_FOUND_TEXT = N_("I can't find that invitation request any more.")
# The slash command's documented name; the texts name the one actually installed
# (`/awork-invite` where Slack keeps `/invite`), passed in as `command`.
DEFAULT_COMMAND = "/invite"


def help_text(command: str = DEFAULT_COMMAND) -> str:
    """`/invite help`, naming the command as installed."""
    return "\n".join(
        (
            _(
                "*{command}* opens the form; `{command} bulk` opens the form for many people "
                "(a list or a CSV file, up to 500).",
                command=command,
            ),
            _(
                "*Without a form:* `{command} ada@example.com` asks for one person; "
                '`{command} a@x.com b@y.com role:"Project Manager" team:Design '
                "team:Engineering --no-email` asks for several at once, with a role and teams "
                "by name (any case; the start of a name is enough when it is unique) and "
                "without awork's welcome email. One per line as `email, first name, last name` "
                "works too.",
                command=command,
            ),
            _(
                "*Lists:* `{command} pending [page]` (approvers: requests waiting for you), "
                "`{command} mine [page]` (your requests), `{command} status <request id>`, "
                "`{command} help`.",
                command=command,
            ),
        )
    )


def usage(command: str = DEFAULT_COMMAND) -> str:
    """The one-line reminder under a command's error."""
    return _(
        'Usage: `{command} a@x.com b@y.com role:"Project Manager" team:Design --no-email` '
        "(`{command} help` for more).",
        command=command,
    )


def duplicate_error(kind: str, request: InviteRequest | None, link: str | None) -> str:
    """The email field's error when the admins need not be asked (plain text, shown in the form)."""
    if kind == "member" or request is None:
        return _("This address is already in the awork workspace; no invitation is needed.")
    since = fallback(request.created_at)  # plain text: no Slack date token
    text = _(
        "There is already an open request for this address (request {id}, since {since}).",
        id=request.id,
        since=since,
    )
    return f"{text} {link}" if link else text


def turned_away(
    turned: Any, plain: bool = False, now: datetime | None = None, on_behalf: bool = False
) -> str:
    """Why nothing was asked for (bot.services.asking.Turned), naming the policy's rule:
    for a private answer (mrkdwn), or `plain` for a form's field error. `on_behalf`: said of
    the requester to someone else (a workflow), not to them."""
    show = (lambda text: str(text)) if plain else escape
    rule = show(turned.rule or turned.why)
    if turned.why in ("member", "open"):
        return duplicate_error(turned.why, turned.existing, None)
    if turned.why == "not_requester":
        if on_behalf:
            return _("The requester may not ask for awork invitations (policy rule: requesters).")
        who = sorted(turned.ask_instead)
        if plain or not who:
            return _(
                "You can't ask for awork invitations yourself (policy rule: requesters). "
                "Please ask one of the approvers to invite the person."
            )
        named = ", ".join(f"<@{user}>" for user in who[:10])
        if len(who) > 10:
            return _(
                "You can't ask for awork invitations yourself (policy rule: requesters). "
                "Please ask {approvers} or another approver to invite the person.",
                approvers=named,
            )
        return _(
            "You can't ask for awork invitations yourself (policy rule: requesters). "
            "Please ask {approvers} to invite the person.",
            approvers=named,
        )
    if turned.why == "blocked_domain":
        return _(
            "Addresses at {domain} are not invited to awork (policy rule: {rule}); "
            "nobody was asked.",
            domain=show(turned.entry),
            rule=rule,
        )
    if turned.why == "role_not_on_route":
        return _(
            "The role “{role}” can't be asked for here (policy rule: {rule}). "
            "Choose one of: {roles}.",
            role=show(turned.entry),
            rule=rule,
            roles=", ".join(show(role) for role in turned.roles),
        )
    if turned.why == "daily_limit":
        text = _("You have reached today's limit of invitations (policy rule: {rule}).", rule=rule)
        return f"{text} {resets(turned.resets_at, now)}"
    if turned.rule:
        return _("This can't be asked for (policy rule: {rule}).", rule=rule)
    return _("This can't be asked for.")


def resets(at: datetime | None, now: datetime | None = None) -> str:
    """When a daily limit lets the requester ask again (UTC midnight), and in how long."""
    if at is None:
        return ""
    left = max(0, int((at - (now or utcnow())).total_seconds()) // 60)
    hours, minutes = divmod(left, 60)
    wait = (
        _("{hours} h {minutes} min", hours=hours, minutes=minutes)
        if hours
        else _("{minutes} min", minutes=minutes)
    )
    # The date and time as the language writes them (plain: also a form's field error).
    return _("Asking is possible again from {when} (in {wait}).", when=fallback(at), wait=wait)


def refusal(request: Any, reason: str | None, decided: Callable[[Any], str] | None = None) -> str:
    """Why a click or a deny changed nothing, said privately to the clicker. `decided` words
    an already-decided request (a batch has its own)."""
    if request is None:
        return _(NOT_FOUND_TEXT)
    if reason == "not_approver":
        return _(NOT_APPROVER)
    if reason == "already_approved":
        return _("Your approval is in; this admin-role invitation needs a second approver.")
    if reason == "own_request":
        return _("You can't approve your own request; another approver will decide it.")
    return (decided or already_decided)(request)


FIRST_APPROVAL = N_(
    ":white_check_mark: Your approval is in. An admin role needs a second approver, who has "
    "been shown it."
)
NOT_APPROVER = N_(":lock: Only approvers can decide on invitation requests.")
# The store missed the ack's time budget: nothing was stored, and the person hears so in time.
BUSY = N_(
    ":hourglass: The bot is busy — your request was not stored. Please try again in a minute."
)
# A click's decision could not be stored (the store failed, even on a fresh connection).
CLICK_AGAIN = N_(
    ":warning: That didn't go through — the bot could not store it. Please click again."
)


def already_decided(request: InviteRequest) -> str:
    """A click on a request that was decided already: how, and by whom."""
    email = escape(request.details.email)
    someone = _("someone else")
    who = approved_by(request, someone)
    denier = f"<@{request.decided_by}>" if request.decided_by else someone
    status = request.status
    if status is Status.INVITING:
        return _(
            "Nothing changed: the request for {email} was already approved by {who} and is "
            "being sent.",
            email=email,
            who=who,
        )
    if status in (Status.INVITED, Status.JOINING):
        return _(
            "Nothing changed: the request for {email} was already approved by {who}.",
            email=email,
            who=who,
        )
    if status is Status.DENIED:
        return _(
            "Nothing changed: the request for {email} was already denied by {who}.",
            email=email,
            who=denier,
        )
    if status is Status.FAILED:
        if request.failure and request.failure.retryable:
            return _(
                "Nothing changed: the request for {email} was already approved by {who}, and "
                "the invitation did not go through.",
                email=email,
                who=who,
            )
        return _(
            "Nothing changed: the request for {email} was already approved by {who}, and "
            "awork refused it.",
            email=email,
            who=who,
        )
    if status is Status.PENDING:
        return _("Nothing changed: the request for {email} is still waiting.", email=email)
    if status is Status.JOINED:
        return _(
            "Nothing changed: the request for {email} was already approved by {who}, and "
            "they joined.",
            email=email,
            who=who,
        )
    if status is Status.LAPSED:
        return _(
            "Nothing changed: the invitation for {email} lapsed, and was already asked for again.",
            email=email,
        )
    return _("Nothing changed: the request for {email} expired without a decision.", email=email)


ACCEPT_ANSWERS = {
    "already_joined": N_("You have already joined. :tada:"),
    "in_progress": N_("Your acceptance is being processed; one moment."),
    "lapsed": N_(
        "This invitation can no longer be accepted. I've let the person who invited you know, "
        "so they can invite you again."
    ),
    "refused": N_(
        "awork did not accept this invitation. I've let the person who invited you know, so "
        "they can invite you again."
    ),
    "unavailable": N_(
        "awork is not answering right now. Please click *Accept invitation* again in a few minutes."
    ),
    "no_code": N_("Please accept this invitation from awork's email."),
    "not_invitee": N_(":lock: This invitation is for someone else; only they can accept it."),
    "not_found": NOT_FOUND_TEXT,
    "not_requester": N_(":lock: Only the person who asked for this invitation can ask again."),
}


def accept_answer(outcome: str) -> str | None:
    """The answer to a click on Accept (or Invite again) that came to `outcome`, in the
    clicker's language; None for an outcome without one."""
    text = ACCEPT_ANSWERS.get(outcome)
    return _(text) if text else None
