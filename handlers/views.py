"""Modal submissions: the invite form, the bulk form and the deny reason."""

from __future__ import annotations

import json
import logging

from slack_bolt import Ack, App

from bot.domain.batches import BATCH_LIMIT
from bot.domain.details import field_label, parse_details
from bot.domain.people import parse_people
from bot.domain.text import clean_text
from bot.i18n import _, ngettext
from bot.runtime.deps import Deps
from bot.services.asking import Turned
from bot.ui import answers, bulk_blocks, bulk_notices, forms, mrkdwn
from handlers.actions import after_asked, after_batches, is_batch
from handlers.files import download

log = logging.getLogger(__name__)


def register(app: App, deps: Deps) -> None:
    service = deps.service

    def submit_invite(ack: Ack, body: dict, view: dict) -> None:
        requester = body["user"]["id"]
        details, errors = parse_details(forms.form_fields(view.get("state", {}).get("values", {})))
        if (
            details is not None
            and details.uses_advanced()
            and not service.is_default_approver(requester)
        ):
            errors = {"email": _("Only approvers may use the advanced options.")}
        request = None
        if not errors:
            origin = _origin_channel(view)
            # Who may ask, the policy's rules, duplicates, the daily limit; then stored
            # before anything else: a crash after this line loses nothing.
            asked = service.ask(details, requester, origin)
            request, turned = asked.request, asked.turned
            if turned is not None:
                errors = {turned.field: field_error(turned, body)}
        if errors or request is None:
            ack(response_action="errors", errors=_on_blocks(errors, view))
            return
        ack()
        deps.later(after_asked, deps, request, requester, origin)

    def submit_deny_reason(ack: Ack, body: dict, view: dict) -> None:
        request_id = view.get("private_metadata", "")
        values = forms.form_fields(view.get("state", {}).get("values", {}))
        # Cleaned here too (the stored reason is cleaned by the model), so that a reason of
        # only invisible characters is asked for again and the audit log holds the clean one.
        reason = clean_text(str(values.get("reason") or ""), multiline=True).strip()
        if not reason:
            ack(response_action="errors", errors={"reason": _("Please give a reason.")})
            return
        if len(reason) > forms.REASON_MAX:
            ack(
                response_action="errors",
                errors={
                    "reason": ngettext(
                        "At most {n} character.", "At most {n} characters.", forms.REASON_MAX
                    )
                },
            )
            return
        if is_batch(request_id):
            decision = deps.batches.deny(request_id, body["user"]["id"], reason)
            answer = bulk_notices.batch_refusal
        else:
            decision = service.deny(request_id, body["user"]["id"], reason)
            answer = answers.refusal
        if not decision.ok:  # why, in place of the form: a field error could not show a mention
            text = answer(decision.request, decision.refusal)
            ack(response_action="update", view=forms.deny_answer_modal(text))
            return
        ack()
        deps.later(
            deps.courier.sync_batch if is_batch(request_id) else deps.courier.sync, request_id
        )

    def submit_bulk(ack: Ack, body: dict, view: dict) -> None:
        requester = body["user"]["id"]
        values = view.get("state", {}).get("values", {})
        fields = forms.form_fields(values)
        typed, errors = parse_people(str(fields.get(bulk_blocks.PEOPLE) or ""))
        shown: dict[str, str] = {}
        if errors:
            shown[bulk_blocks.PEOPLE] = _clip(errors)
        files = _files(values)
        from_file: list = []
        if files:
            text, problem = _download(files[0], deps)
            if problem:
                shown[bulk_blocks.PEOPLE_FILE] = problem
            else:
                from_file, file_errors = parse_people(text)
                if file_errors:
                    shown[bulk_blocks.PEOPLE_FILE] = _clip(file_errors)
        people = typed + from_file
        if not people and not shown:
            shown[bulk_blocks.PEOPLE] = _("Type at least one email address, or attach a CSV file.")
        elif len(people) > BATCH_LIMIT:
            shown[bulk_blocks.PEOPLE] = ngettext(
                "At most {n} person at once; this is {count}.",
                "At most {n} people at once; this is {count}.",
                BATCH_LIMIT,
                count=len(people),
            )
        if shown:
            ack(response_action="errors", errors=shown)
            return
        origin = _origin_channel(view)
        asked = deps.batches.ask(  # stored before anything else
            people,
            requester,
            origin,
            role_id=fields.get("roleId"),
            team_ids=fields.get("teamIds") or [],
            skip_sending_email=bool(fields.get("skipSendingEmail")),
        )
        prepared = asked.prepared
        if asked.turned is not None and not asked.batches:
            where = "roleId" if asked.turned.field == "roleId" else bulk_blocks.PEOPLE
            ack(response_action="errors", errors={where: field_error(asked.turned, body)})
            return
        if prepared.errors or not asked.batches:
            problems = prepared.errors or [
                _(
                    "Nobody left to ask for: everyone is already in awork, already requested "
                    "or on a blocked domain."
                )
            ]
            ack(response_action="errors", errors={bulk_blocks.PEOPLE: _clip(problems)})
            return
        ack()
        deps.later(after_batches, deps, asked.batches, requester, origin)

    app.view(forms.INVITE_FORM)(submit_invite)
    app.view(forms.DENY_REASON)(submit_deny_reason)
    app.view(bulk_blocks.BULK_FORM)(submit_bulk)


def field_error(turned: Turned, body: dict) -> str:
    """A refusal of the ask as a field error (plain text): a duplicate links its request."""
    if turned.why in ("member", "open"):
        link = mrkdwn.permalink(
            (body.get("team") or {}).get("domain"),
            turned.existing and turned.existing.approval_message,
        )
        return answers.duplicate_error(turned.why, turned.existing, link)
    return answers.turned_away(turned, plain=True)


def _clip(problems: list[str], shown: int = 5) -> str:
    more = len(problems) - shown
    if more <= 0:
        return " ".join(problems)
    return " ".join([*problems[:shown], ngettext("(and {n} more)", "(and {n} more)", more)])


def _files(values: dict) -> list[dict]:
    element = (values.get(bulk_blocks.PEOPLE_FILE) or {}).get(bulk_blocks.PEOPLE_FILE)
    files = element.get("files") if isinstance(element, dict) else None
    return [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []


def _download(file: dict, deps: Deps) -> tuple[str, str | None]:
    """The uploaded list's text, or why not (in the current language): see handlers/files.py."""
    text, problem = download(file, deps.settings.slack_bot_token.get_secret_value())
    return text, _(problem) if problem else None


def _on_blocks(errors: dict[str, str], view: dict) -> dict[str, str]:
    """Field errors keyed by block ids that exist in the view (Slack rejects others). One
    whose field is not in the view is shown under the email, naming its field as the form
    labels it ("Plan: …"), never by awork's name."""
    present = {block.get("block_id") for block in view.get("blocks", [])}
    shown: dict[str, str] = {}
    for field, message in errors.items():
        key = field if field in present else "email"
        if key != field:
            message = f"{field_label(field)}: {message}"
        shown[key] = shown[key] + " " + message if key in shown else message
    return shown


def _origin_channel(view: dict) -> str | None:
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return None
    channel = metadata.get("channel") if isinstance(metadata, dict) else None
    return channel if isinstance(channel, str) and channel else None
