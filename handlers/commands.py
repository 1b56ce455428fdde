"""`/invite`: the form at once, the lists, or - with people in the text - a request without a form."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot import blocks, bulk_blocks
from bot.bulk import Prepared
from bot.deps import Deps
from bot.inline import InlineInvite, parse_inline
from bot.models import parse_details
from handlers.actions import run_approval, run_batch_approval

log = logging.getLogger(__name__)

# `/invite` is the documented name; `/awork-invite` is the fallback for workspaces where Slack
# keeps `/invite` for its own channel command.
COMMAND = re.compile(r"^/(awork-)?invite$")


def register(app: App, deps: Deps) -> None:
    service = deps.service

    def invite_command(ack: Ack, body: dict) -> None:
        text = str(body.get("text") or "").strip()
        words = text.split()
        user = str(body.get("user_id", ""))
        keyword = words[0].lower() if words else ""
        if keyword in lists:
            # Answered in the ack itself: a store read, well inside Slack's 3 seconds.
            ack(**answer(lists[keyword](user, words[1:])))
            return
        if text and keyword != "bulk":
            # Cached roles and teams, one store write: quick enough to answer in the ack;
            # Slack is told the rest (approval message, "waiting" notice) after it.
            reply, then = inline(body, user, text)
            ack(**(answer(reply) if reply else reply))
            if then is not None:
                deps.later(then)
            return
        ack()
        # The trigger_id lives for 3 seconds: the modal opens first thing after the ack.
        deps.open_modal(open_form, body, user, keyword)

    def open_form(body: dict, user: str, keyword: str) -> None:
        origin = body.get("channel_id")
        view = (
            bulk_blocks.bulk_form(origin)
            if keyword == "bulk"
            else blocks.invite_form(origin_channel=origin, advanced=service.is_approver(user))
        )
        try:
            # The app's own client (Bolt's per-request one is a plain WebClient, without the
            # sandbox label and not the shell's terminal Slack).
            deps.modal_client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as exc:
            log.warning("could not open the form: %s", exc.response.get("error"))

    def answer(reply: dict[str, Any]) -> dict[str, Any]:
        return blocks.label_sandbox(reply) if deps.settings.sandbox else reply

    def inline(body: dict, user: str, text: str) -> tuple[dict[str, Any], Any]:
        """People in the command's text: one request (one person) or a batch (several)."""
        parsed = parse_inline(text, deps.catalog.find_roles(), deps.catalog.find_teams())
        if parsed.errors:
            return _private(":warning: " + _quoted(parsed.errors) + USAGE), None
        origin = body.get("channel_id")
        domain = body.get("team_domain")
        if len(parsed.people) == 1:
            return submit_one(parsed, user, origin, domain)
        prepared = deps.batches.prepare(
            parsed.people,
            role_id=parsed.role.id if parsed.role else None,
            team_ids=[team.id for team in parsed.teams],
            skip_sending_email=parsed.skip_sending_email,
        )
        if prepared.errors:
            return _private(":warning: " + _quoted(prepared.errors[:20])), None
        if not prepared.entries:
            text = ":information_source: Nobody left to ask for: " + _left_out(prepared)
            return _private(text), None
        batch = deps.batches.submit(prepared, user, origin)  # stored before anything else
        return {}, lambda: after_batch(batch.id, user, origin)

    def submit_one(
        parsed: InlineInvite, user: str, origin: str | None, domain: str | None
    ) -> tuple[dict[str, Any], Any]:
        person = parsed.people[0]
        details, errors = parse_details(
            {
                "email": person.email,
                "firstName": person.first_name,
                "lastName": person.last_name,
                "roleId": parsed.role.id if parsed.role else None,
                "teamIds": [team.id for team in parsed.teams],
                "skipSendingEmail": parsed.skip_sending_email,
            }
        )
        if details is None:
            return _private(":warning: " + _quoted(list(errors.values()), " ")), None
        duplicate = service.duplicate_of(details)
        if duplicate is not None:
            kind, existing = duplicate
            link = blocks.permalink(domain, existing and existing.approval_message)
            text = ":information_source: " + blocks.duplicate_error(kind, existing, link)
            return _private(text), None
        request = service.submit(details, user, origin)  # stored before anything else
        return {}, lambda: after_submit(request.id, user, origin)

    def after_submit(request_id: str, user: str, origin: str | None) -> None:
        service.autofill(request_id)  # names awork suggests for the address
        deps.courier.sync(request_id)  # the approval message and the "waiting" notice
        if deps.settings.invite_self_approve and service.is_approver(user):
            run_approval(deps, request_id, user, origin, own_allowed=True)

    def after_batch(batch_id: str, user: str, origin: str | None) -> None:
        deps.courier.sync_batch(batch_id)
        if deps.settings.invite_self_approve and service.is_approver(user):
            run_batch_approval(deps, batch_id, user, origin, own_allowed=True)

    def pending(user: str, args: list[str]) -> dict:
        if not service.is_approver(user):
            return {"text": blocks.NOT_APPROVER}
        waiting = _oldest_first(service.waiting_for(user) + deps.batches.waiting_for(user))
        return _reply(blocks.pending_list(waiting, _page_number(args)))

    def mine(user: str, args: list[str]) -> dict:
        own = _newest_first(service.requests_of(user) + deps.batches.batches_of(user))
        return _reply(blocks.my_list(own, _page_number(args)))

    def status(user: str, args: list[str]) -> dict:
        if args and args[0].startswith("bat-"):
            batch = deps.batches.visible(args[0], user)
            if batch is not None:
                summary = deps.batches.summary(batch) if batch.run else None
                return _reply(bulk_blocks.batch_status_card(batch, summary))
        request = service.visible_request(args[0], user) if args else None
        if request is None:
            return {"text": blocks.NOT_FOUND_TEXT + " Usage: `/invite status <request id>`."}
        return _reply(blocks.status_card(request))

    def help_(user: str, args: list[str]) -> dict:
        return {"text": blocks.help_text()}

    lists = {"pending": pending, "mine": mine, "status": status, "help": help_}
    app.command(COMMAND)(invite_command)


USAGE = '\nUsage: `/invite a@x.com b@y.com role:"Project Manager" team:Design --no-email` (`/invite help` for more).'


def _left_out(prepared: Prepared) -> str:
    why = {"member": "already in awork", "open": "already requested", "repeated": "listed twice"}
    return "; ".join(f"{blocks.escape(s.email)} ({why[s.reason]})" for s in prepared.skipped[:20])


def _quoted(errors: list[str], joiner: str = "\n") -> str:
    """Errors that quote what was typed (and awork's role and team names), made inert in
    mrkdwn like every other user text: `<!channel>` stays words."""
    return joiner.join(blocks.escape(error) for error in errors)


def _private(text: str) -> dict[str, Any]:
    return {"text": text, "response_type": "ephemeral"}


def _reply(reply_blocks: list[dict]) -> dict:
    fallback = reply_blocks[0]["text"]["text"] if reply_blocks else ""
    return {"text": fallback, "blocks": reply_blocks, "response_type": "ephemeral"}


def _oldest_first(items: list) -> list:
    return sorted(items, key=lambda item: item.created_at)


def _newest_first(items: list) -> list:
    return sorted(items, key=lambda item: item.created_at, reverse=True)


def _page_number(args: list[str]) -> int:
    """The page asked for; a number too long to be a page is the last page (`_page` clamps),
    and Python's int() is never handed thousands of digits."""
    word = args[0] if args else ""
    if not (word.isascii() and word.isdigit()):
        return 1
    return int(word) if len(word) <= 6 else 1_000_000
