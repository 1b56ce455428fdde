"""`/invite`: the form at once, the lists, or - with people in the text - a request without a form."""

from __future__ import annotations

import difflib
import logging
import re
from typing import Any

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot.domain.batches import Prepared
from bot.domain.details import errors_in_words, parse_details
from bot.domain.inline import NO_EMAIL, InlineInvite, parse_inline
from bot.domain.text import clean_text
from bot.i18n import _
from bot.runtime.command import keep_command
from bot.runtime.deps import Deps
from bot.services.asking import Turned
from bot.ui import answers, bulk_blocks, forms, lists, mrkdwn
from handlers.actions import after_asked, after_batches

log = logging.getLogger(__name__)

# `/invite` is the documented name; `/awork-invite` is the fallback for workspaces where Slack
# keeps `/invite` for its own channel command.
COMMAND = re.compile(r"^/(awork-)?invite$")
SUBCOMMANDS = ("pending", "mine", "status", "help", "bulk")
DASHES = "-\u2013\u2014"  # `--help`, also as autocorrect's dashes


def register(app: App, deps: Deps) -> None:
    service = deps.service

    remembered: list[str] = []  # the name last kept in the store by this process

    def invite_command(ack: Ack, body: dict) -> None:
        command = command_name(body)
        text = str(body.get("text") or "").strip()
        words = text.split()
        user = str(body.get("user_id", ""))
        keyword = subcommand(words[0]) if words else ""
        if remembered[-1:] != [command]:
            deps.later(remember, command)  # for the App Home, which no command carries
        if keyword in listings:
            # Answered in the ack itself: a store read, well inside Slack's 3 seconds.
            ack(**answer(listings[keyword](user, words[1:], command)))
            return
        guess = did_you_mean(words, text, command)
        if guess is not None:
            ack(**answer(_private(guess)))
            return
        if text and keyword != "bulk":
            # Cached roles and teams, one store write: quick enough to answer in the ack;
            # Slack is told the rest (approval message, "waiting" notice) after it.
            reply, then = inline(body, user, text, command)
            ack(**(answer(reply) if reply else reply))
            if then is not None:
                deps.later(then)
            return
        if not service.policy.may_ask(user):  # INVITE_POLICY's requesters: no form to fill
            ack(**answer(_private(":no_entry: " + answers.turned_away(not_requester()))))
            return
        ack()
        # The trigger_id lives for 3 seconds: the modal opens first thing after the ack.
        deps.open_modal(open_form, body, user, keyword)

    def not_requester() -> Turned:
        return Turned("not_requester", ask_instead=service.approvers)

    def open_form(body: dict, user: str, keyword: str) -> None:
        origin = body.get("channel_id")
        view = (
            bulk_blocks.bulk_form(origin)
            if keyword == "bulk"
            else forms.invite_form(
                origin_channel=origin, advanced=service.is_default_approver(user)
            )
        )
        try:
            # The app's own client (Bolt's per-request one is a plain WebClient, without the
            # sandbox label and not the shell's terminal Slack).
            deps.modal_client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as exc:
            log.warning("could not open the form: %s", exc.response.get("error"))

    def answer(reply: dict[str, Any]) -> dict[str, Any]:
        return mrkdwn.label_sandbox(reply) if deps.settings.sandbox else reply

    def remember(command: str) -> None:
        """Keep the command's name for texts no command carries (the App Home)."""
        keep_command(service.store, command)
        remembered[:] = [command]

    def inline(body: dict, user: str, text: str, command: str) -> tuple[dict[str, Any], Any]:
        """People in the command's text: one request (one person) or a batch (several)."""
        parsed = parse_inline(
            text, deps.catalog.find_roles(), deps.catalog.find_teams(), command=command
        )
        if parsed.errors:
            return _private(
                ":warning: " + _quoted(parsed.errors) + "\n" + answers.usage(command)
            ), None
        origin = body.get("channel_id")
        domain = body.get("team_domain")
        if len(parsed.people) == 1:
            return submit_one(parsed, user, origin, domain)
        asked = deps.batches.ask(
            parsed.people,
            user,
            origin,
            role_id=parsed.role.id if parsed.role else None,
            team_ids=[team.id for team in parsed.teams],
            skip_sending_email=parsed.skip_sending_email,
        )
        prepared = asked.prepared
        if prepared.errors:
            return _private(":warning: " + _quoted(prepared.errors[:20])), None
        if asked.turned is not None and not asked.batches:
            return _private(":no_entry: " + answers.turned_away(asked.turned)), None
        if not asked.batches:
            text = _(
                ":information_source: Nobody left to ask for: {left_out}",
                left_out=_left_out(prepared),
            )
            return _private(text), None
        # Stored before anything else; Slack hears the rest after the ack.
        return {}, lambda: after_batches(deps, asked.batches, user, origin)

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
            return _private(":warning: " + _quoted(errors_in_words(errors), " ")), None
        asked = service.ask(details, user, origin)  # stored before anything else
        turned = asked.turned
        if turned is not None:
            if turned.why in ("member", "open"):
                link = mrkdwn.permalink(
                    domain, turned.existing and turned.existing.approval_message
                )
                text = answers.duplicate_error(turned.why, turned.existing, link)
                return _private(":information_source: " + text), None
            return _private(":no_entry: " + answers.turned_away(turned)), None
        request = asked.request
        return {}, lambda: after_asked(deps, request, user, origin)

    def pending(user: str, args: list[str], command: str) -> dict:
        if not service.is_approver(user):
            return {"text": _(answers.NOT_APPROVER)}
        # One read of the approvers' list, summaries only; every page reachable.
        page, wrong = _page_asked(args)
        return _reply(lists.pending_list(service.waiting(user), page, command, wrong))

    def mine(user: str, args: list[str], command: str) -> dict:
        asked, wrong = _page_asked(args)
        shown, page, total = service.own(user, asked, lists.MINE_PAGE)
        return _reply(lists.my_list(shown, page, command, total, asked=asked, wrong=wrong))

    def status(user: str, args: list[str], command: str) -> dict:
        if not args:
            return _private(
                _(
                    "Usage: `{command} status <request id>`. The id (`inv-…`, or `bat-…` for "
                    "several people) is on the request's messages and in `{command} mine`.",
                    command=command,
                )
            )
        if args[0].startswith("bat-"):
            batch = deps.batches.visible(args[0], user)
            if batch is not None:
                summary = deps.batches.summary(batch) if batch.run else None
                return _reply(bulk_blocks.batch_status_card(batch, summary))
        request = service.visible_request(args[0], user)
        if request is None:
            return {
                "text": _(answers.NOT_FOUND_TEXT)
                + " "
                + _("Usage: `{command} status <request id>`.", command=command)
            }
        return _reply(lists.status_card(request))

    def help_(user: str, args: list[str], command: str) -> dict:
        return {"text": answers.help_text(command)}

    listings = {"pending": pending, "mine": mine, "status": status, "help": help_}
    app.command(COMMAND)(invite_command)


def command_name(body: dict) -> str:
    """The command as installed, from the payload (`/invite` or `/awork-invite`)."""
    name = str(body.get("command") or "")
    return name if COMMAND.match(name) else answers.DEFAULT_COMMAND


def subcommand(word: str) -> str:
    """The list or form a first word asks for; `--help`, `-h` and `?` ask for help."""
    lowered = word.lower()
    if lowered == "?" or (lowered[:1] in DASHES and lowered.lstrip(DASHES) in ("help", "h")):
        return "help"
    return lowered


def did_you_mean(words: list[str], text: str, command: str) -> str | None:
    """For a first word that is neither a command nor an address (nor a `role:`/`team:` or
    `--no-email` option): which command it resembles. A word with `@` is an address, and
    text with an address in it is a request."""
    first = words[0].lower() if words else ""
    if not first or first in SUBCOMMANDS or "@" in first or ":" in first or first in NO_EMAIL:
        return None
    typed = first.lstrip(DASHES)
    close = difflib.get_close_matches(typed, SUBCOMMANDS, n=1, cutoff=0.6)
    shown = mrkdwn.escape(clean_text(words[0])[:40])
    if close:
        return _(
            ":grey_question: “{word}” is not a command I know. Did you mean "
            "`{command} {subcommand}`? (`{command} help` lists them all.)",
            word=shown,
            command=command,
            subcommand=close[0],
        )
    if "@" in text:
        return None  # people after all: the inline request says what is wrong with it
    known = _(
        ":grey_question: “{word}” is not an email address, nor a command I know ({commands}).",
        word=shown,
        commands=", ".join(SUBCOMMANDS),
    )
    return known + "\n" + answers.usage(command)


def _left_out(prepared: Prepared) -> str:
    words = bulk_blocks.LEFT_OUT
    return "; ".join(
        f"{mrkdwn.escape(s.email)} ({_(words[s.reason])})" for s in prepared.skipped[:20]
    )


def _quoted(errors: list[str], joiner: str = "\n") -> str:
    """Errors that quote what was typed (and awork's role and team names), made inert in
    mrkdwn like every other user text: `<!channel>` stays words."""
    return joiner.join(mrkdwn.escape(error) for error in errors)


def _private(text: str) -> dict[str, Any]:
    return {"text": text, "response_type": "ephemeral"}


def _reply(reply_blocks: list[dict]) -> dict:
    fallback = reply_blocks[0]["text"]["text"] if reply_blocks else ""
    return {"text": fallback, "blocks": reply_blocks, "response_type": "ephemeral"}


def _page_asked(args: list[str]) -> tuple[int, str | None]:
    """The page asked for, and the word typed when it is no page number (page 1 then, and
    the list says so). A number too long to be a page asks for page 1,000,000 (past the last,
    which the list says), and Python's int() is never handed thousands of digits."""
    if not args:
        return 1, None
    word = args[0]
    if not (word.isascii() and word.isdigit()) or not word.strip("0"):  # no page 0 either
        return 1, clean_text(word)[:40]
    return (int(word) if len(word) <= 6 else 1_000_000), None
