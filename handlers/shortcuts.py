"""Shortcuts: "Invite to awork" (global) opens the invite form, as `/invite` does; "Invite the
author to awork" (on a message) opens it filled in with the author's address and names - or
says privately why there is no form: an app wrote the message, Slack keeps the address, or the
author is in awork already or asked for.

Whatever the form holds, it is sent to `/invite`'s view listener (handlers/views.py): the same
validation, policy, approval and exactly-once path; nothing here stores a request.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot.domain.details import InviteDetails
from bot.domain.text import clean_text
from bot.i18n import _
from bot.runtime.command import installed_command
from bot.runtime.deps import Deps
from bot.services.asking import Turned
from bot.ui import answers, forms, mrkdwn
from handlers.delivery.slack_errors import SEND_ERRORS, slack_error

log = logging.getLogger(__name__)

GLOBAL_SHORTCUT = "invite_shortcut"  # manifest.yml: features.shortcuts
MESSAGE_SHORTCUT = "invite_author"
SLACKBOT = "USLACKBOT"


def register(app: App, deps: Deps) -> None:
    service = deps.service

    def invite_shortcut(ack: Ack, body: dict) -> None:
        ack()
        user = str(body["user"]["id"])
        if may_ask(user, None):
            # The trigger_id lives for 3 seconds: the modal opens first thing after the ack.
            deps.open_modal(open_form, body["trigger_id"], user, None, None)

    def invite_author(ack: Ack, body: dict) -> None:
        ack()
        user = str(body["user"]["id"])
        channel = (body.get("channel") or {}).get("id")
        if may_ask(user, channel):
            # users.info, then views.open, both within the trigger_id's 3 seconds.
            deps.open_modal(fill_in, body, user, channel)

    def may_ask(user: str, channel: str | None) -> bool:
        """INVITE_POLICY's requesters, as for `/invite`: no form for one it leaves out."""
        if service.policy.may_ask(user):
            return True
        turned = Turned("not_requester", ask_instead=service.approvers)
        deps.later(deps.courier.tell, user, channel, ":no_entry: " + answers.turned_away(turned))
        return False

    def open_form(
        trigger_id: str, user: str, origin: str | None, initial: dict[str, str] | None
    ) -> None:
        view = forms.invite_form(
            origin_channel=origin, advanced=service.is_default_approver(user), initial=initial
        )
        try:
            deps.modal_client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            log.warning("could not open the form: %s", exc.response.get("error"))

    def fill_in(body: dict, user: str, channel: str | None) -> None:
        """The form with the message author's address and names, or why not (privately)."""
        found = author_form(body)
        if isinstance(found, dict):
            open_form(body["trigger_id"], user, channel, found)
        else:
            # After the modal's pool: an ephemeral where the shortcut was used, else a DM.
            deps.later(deps.courier.tell, user, channel, found)

    def author_form(body: dict) -> dict[str, str] | str:
        """What the form is filled in with, or the private answer instead of a form."""
        message = body.get("message") or {}
        author = None if message.get("bot_id") else message.get("user")
        if not author or author == SLACKBOT:
            return not_a_person(command())
        try:
            person = deps.modal_client.users_info(user=author)["user"]
        except SEND_ERRORS as exc:
            log.warning("users.info failed for a message shortcut: %s", slack_error(exc))
            return slack_failed(slack_error(exc), command())
        if person.get("is_bot") or person.get("is_app_user"):
            return not_a_person(command())
        initial = author_fields(person.get("profile") or {})
        try:
            details = InviteDetails(email=initial.get("email"))
        except ValidationError:  # none, or none awork would take: typed in by hand instead
            return no_address(author, command())
        duplicate = service.duplicate_of(details)
        if duplicate is None:
            return initial
        why, existing = duplicate
        domain = (body.get("team") or {}).get("domain")
        link = mrkdwn.permalink(domain, existing and existing.approval_message)
        return f":information_source: <@{mrkdwn.escape(author)}>: " + answers.duplicate_error(
            why, existing, link
        )

    def command() -> str:
        """The slash command as installed, for an answer that points to it (a store read:
        only when there is no form to open)."""
        return installed_command(service.store)

    app.shortcut(GLOBAL_SHORTCUT)(invite_shortcut)
    app.shortcut(MESSAGE_SHORTCUT)(invite_author)


def author_fields(profile: dict[str, Any]) -> dict[str, str]:
    """The form's email, first and last name from a Slack profile: its first and last name,
    else its full name split at the first space (`Ada King Lovelace` -> Ada, King Lovelace)."""
    first, last = _line(profile.get("first_name")), _line(profile.get("last_name"))
    if not first and not last:
        full = _line(profile.get("real_name")) or _line(profile.get("real_name_normalized"))
        first, _, last = full.partition(" ")
    fields = {"email": _line(profile.get("email")), "firstName": first, "lastName": last.strip()}
    return {key: value for key, value in fields.items() if value}


def _line(value: Any) -> str:
    return clean_text(value).strip() if isinstance(value, str) else ""


def not_a_person(command: str) -> str:
    return _(
        ":information_source: An app posted that message, not a person: there is nobody to "
        "invite. `{command}` opens the form for any address.",
        command=command,
    )


def no_address(author: str, command: str) -> str:
    mention = "<@" + mrkdwn.escape(author) + ">"
    return _(
        ":warning: Slack does not show me {who}'s email address, so I can't fill in the "
        "form. `{command}` opens it to type their address.",
        who=mention,
        command=command,
    )


def slack_failed(error: str, command: str) -> str:
    return _(
        ":warning: Slack did not tell me who wrote that message ({error}). Try "
        "again, or use `{command}` and type their address.",
        error=mrkdwn.escape(error),
        command=command,
    )
