"""The shell's forms: a modal the bot opens is shown as numbered fields, filled by `N value`.

Every answer is echoed as the form now holds it (`7 a` -> `Role: Admin (admin)`), a choice
that matches nothing lists the valid ones (for external selects fetched the way Slack does,
through the bot's options listener), `show` prints the form as filled so far, and a multi-line
field takes `N` alone followed by its lines up to an empty line.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.cli.shell.screen import Screen, indented
from bot.cli.shell.signed import Sender
from bot.cli.shell.world import TEAM_ID
from bot.i18n import N_, _, pgettext

TEXT_KINDS = ("plain_text_input", "number_input", "email_text_input", "url_text_input")
SELECT_KINDS = ("static_select", "radio_buttons")
EXTERNAL_KINDS = ("external_select", "multi_external_select")
YES = ("yes", "y", "true", "1", "x", "on")  # and the word for `yes` in the shell's language
FORM_HINT = N_(
    "Fill in with `N value` (`N` alone: a multi-line answer, ended by an empty line; or a "
    "field's choices), `show` to see it, then `submit` (or `cancel`)."
)


@dataclass
class Form:
    user: str
    view: dict[str, Any]
    view_id: str
    values: dict[str, Any] = field(default_factory=dict)  # block id -> Slack state element


class Cancelled(Exception):
    """Ctrl-C while the lines of a multi-line answer were typed: the field stays as it was."""


def inputs(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in view.get("blocks") or [] if b.get("type") == "input"]


def label(block: dict[str, Any]) -> str:
    return block["label"]["text"]


def multiline(block: dict[str, Any]) -> bool:
    element = block["element"]
    return element["type"] == "plain_text_input" and bool(element.get("multiline"))


def field_line(number: int, block: dict[str, Any]) -> str:
    """How a field is offered: `7. Role — type a name`."""
    element = block["element"]
    name = label(block) + ("" if block.get("optional") else " *")
    kind = element["type"]
    if kind == "checkboxes":
        choice = element["options"][0]["text"]["text"]
        return _(
            "{number}. {name} — “{choice}”: yes or no", number=number, name=name, choice=choice
        )
    if kind in SELECT_KINDS:
        choices = " | ".join(o["text"]["text"] for o in element.get("options") or [])
        return _("{number}. {name} — one of: {choices}", number=number, name=name, choices=choices)
    if kind in EXTERNAL_KINDS and kind.startswith("multi"):
        return _(
            "{number}. {name} — type a name (several, comma-separated); `{number}` alone lists them",
            number=number,
            name=name,
        )
    if kind in EXTERNAL_KINDS:
        return _(
            "{number}. {name} — type a name; `{number}` alone lists them", number=number, name=name
        )
    if kind == "file_input":
        return _(
            "{number}. {name} — (files can be attached in Slack only)", number=number, name=name
        )
    if multiline(block):
        return _(
            "{number}. {name} — several lines: `{number}` alone, the lines, an empty line",
            number=number,
            name=name,
        )
    return f"{number}. {name}"


def yes(text: str) -> bool:
    """Whether a checkbox's answer ticks it: `yes` (or the shell's language's word for it)."""
    answer = text.strip().lower()
    return answer in YES or answer == pgettext("a form's yes-or-no answer", "yes").lower()


def shown(state: dict[str, Any] | None) -> str:
    """A field's state as words: the text, the option(s) chosen, yes/no, or `—`."""
    if not state:
        return "—"
    if "value" in state:
        return str(state["value"]) if state["value"] not in (None, "") else "—"
    if "selected_option" in state:
        option = state["selected_option"]
        return option["text"]["text"] if option else "—"
    if state.get("type") == "checkboxes":
        ticked = state.get("selected_options")
        if ticked:
            return _("yes ({choice})", choice=ticked[0]["text"]["text"])
        return pgettext("a form's yes-or-no answer", "no")
    if "selected_options" in state:
        return ", ".join(o["text"]["text"] for o in state["selected_options"]) or "—"
    return "—"


def initial_state(block: dict[str, Any]) -> dict[str, Any] | None:
    """What Slack's state holds for a field before anyone touches it (its initial value)."""
    element = block["element"]
    kind = element["type"]
    if kind in TEXT_KINDS and element.get("initial_value"):
        return {"type": kind, "value": element["initial_value"]}
    if "initial_option" in element:
        return {"type": kind, "selected_option": element["initial_option"]}
    if "initial_options" in element:
        return {"type": kind, "selected_options": element["initial_options"]}
    return None


class Forms:
    """The forms open in the shell, one per user: opening (the bot's `views.open`), filling,
    showing and sending them."""

    def __init__(self, screen: Screen, sender: Sender, read_block: Callable[[], str]) -> None:
        self.screen = screen
        self.sender = sender
        self.read_block = read_block  # a multi-line answer from the shell's input
        self.by_user: dict[str, Form] = {}

    def open_view(self, args: dict[str, Any], user: str) -> dict[str, Any]:
        view = dict(args.get("view") or {})
        view_id = "V" + secrets.token_hex(4)
        form = Form(user=user, view=view, view_id=view_id)
        for block in inputs(view):
            state = initial_state(block)
            if state is not None:
                form.values[block["block_id"]] = state
        self.by_user[user] = form
        self.screen.header(
            _(
                "── form for {who}: {title} ──",
                who=self.screen.people.name(user),
                title=view.get("title", {}).get("text", ""),
            )
        )
        for number, block in enumerate(inputs(view), start=1):
            line = field_line(number, block)
            if block["block_id"] in form.values:
                value = shown(form.values[block["block_id"]])
                line = _("{field} (now: {value})", field=line, value=value)
            self.screen.print("  " + line)
        self._print_texts(view)
        self.screen.print("  " + _(FORM_HINT))
        return {"ok": True, "view": {"id": view_id, **view}}

    def _print_texts(self, view: dict[str, Any]) -> None:
        """A view's texts (its sections and context lines), as a message's are printed."""
        for block in view.get("blocks") or []:
            if block.get("type") in ("section", "context"):
                self.screen.print(indented(self.screen.block_text(block)))

    def fill(self, form: Form, words: list[str]) -> None:
        if words[0] == "cancel":
            del self.by_user[form.user]
            self.screen.print("  " + _("form closed"))
            return
        if words[0] == "submit":
            self._submit(form)
            return
        if words[0] == "show":
            self._show(form)
            return
        fields = inputs(form.view)
        number = int(words[0])
        if not 1 <= number <= len(fields):
            raise ValueError(_("the form has fields 1 to {last}", last=len(fields)))
        block = fields[number - 1]
        if len(words) == 1 and multiline(block):
            try:
                text = self.read_block()
            except Cancelled:
                self.screen.print("  " + _("(cancelled; {field} is unchanged)", field=label(block)))
                return
        elif len(words) == 1 and block["element"]["type"] in SELECT_KINDS + EXTERNAL_KINDS:
            names = ", ".join(o["text"]["text"] for o in self._options(form, block, ""))
            names = names or _("(none)")
            self.screen.print("  " + _("{field}: one of {names}", field=label(block), names=names))
            return
        else:
            text = " ".join(words[1:])
        state = self._state(form, block, text)
        if state is not None:
            form.values[block["block_id"]] = state
            self._echo(block, state)

    def _echo(self, block: dict[str, Any], state: dict[str, Any]) -> None:
        value = shown(state)
        if "\n" in value:
            self.screen.print(f"  {label(block)}:\n    " + value.replace("\n", "\n    "))
        else:
            self.screen.print(f"  {label(block)}: {value}")

    def _show(self, form: Form) -> None:
        """The form as filled so far."""
        title = form.view.get("title", {}).get("text") or _("Form")
        self.screen.print("  " + _("{title}, so far:", title=title))
        for number, block in enumerate(inputs(form.view), start=1):
            name = label(block) + ("" if block.get("optional") else " *")
            value = shown(form.values.get(block["block_id"]))
            if "\n" in value:
                self.screen.print(
                    f"  {number}. {name}:\n       " + value.replace("\n", "\n       ")
                )
            else:
                self.screen.print(f"  {number}. {name}: {value}")

    def _state(self, form: Form, block: dict[str, Any], text: str) -> dict[str, Any] | None:
        element = block["element"]
        kind = element["type"]
        if kind in TEXT_KINDS:
            return {"type": kind, "value": text.replace("\\n", "\n") or None}
        if kind in SELECT_KINDS:
            if not text:
                return {"type": kind, "selected_option": None}
            option = self._choose(element.get("options") or [], text, label(block))
            return None if option is None else {"type": kind, "selected_option": option}
        if kind == "checkboxes":
            chosen = yes(text)
            return {
                "type": kind,
                "selected_options": element.get("options", [])[:1] if chosen else [],
            }
        if kind in EXTERNAL_KINDS:
            many = kind.startswith("multi")
            queries = [q.strip() for q in text.split(",") if q.strip()] if many else [text]
            picked = []
            for query in queries if text else []:
                option = self._choose(
                    self._options(form, block, query),
                    query,
                    label(block),
                    everything=lambda: self._options(form, block, ""),
                )
                if option is None:
                    return None
                picked.append(option)
            if many:
                return {"type": kind, "selected_options": picked}
            return {"type": kind, "selected_option": picked[0] if picked else None}
        self.screen.print("  " + _("(this field can only be filled in Slack)"))
        return None

    def _choose(
        self,
        options: list[dict[str, Any]],
        text: str,
        what: str,
        everything: Callable[[], list[dict[str, Any]]] | None = None,
    ) -> dict[str, Any] | None:
        """The one option `text` names (its text or value, or the start of its text); else
        the choices are listed: those that match, or all of them."""
        wanted = text.lower()
        exact = [
            o for o in options if wanted in (o["text"]["text"].lower(), str(o.get("value")).lower())
        ]
        matches = exact or [o for o in options if o["text"]["text"].lower().startswith(wanted)]
        if len(matches) == 1:
            return {"text": matches[0]["text"], "value": matches[0]["value"]}
        if matches:
            names = ", ".join(o["text"]["text"] for o in matches)
            self.screen.print(
                "  ?? "
                + _(
                    "“{text}” could be more than one {field}: {names}",
                    text=text,
                    field=what,
                    names=names,
                )
            )
            return None
        if everything is not None:
            options = everything()
        names = ", ".join(o["text"]["text"] for o in options) or _("(none)")
        self.screen.print(
            "  ?? "
            + _(
                "“{text}” is not a choice for {field}; choose one of {names}",
                text=text,
                field=what,
                names=names,
            )
        )
        return None

    def _options(self, form: Form, block: dict[str, Any], query: str) -> list[dict[str, Any]]:
        """A select's options: its own, or for an external select the bot's answer to the
        `block_suggestion` Slack would send while the user types `query`."""
        element = block["element"]
        if element["type"] not in EXTERNAL_KINDS:
            return list(element.get("options") or [])
        response = self.sender.interactive(
            {
                "type": "block_suggestion",
                "action_id": element.get("action_id", block["block_id"]),
                "block_id": block["block_id"],
                "value": query,
                "container": {"type": "view", "view_id": form.view_id},
                "view": {**form.view, "id": form.view_id},
            }
        )
        return json.loads(response.body or "{}").get("options", [])

    def _submit(self, form: Form) -> None:
        actions = {
            b["block_id"]: b["element"].get("action_id", b["block_id"]) for b in inputs(form.view)
        }
        values = {
            block_id: {actions.get(block_id, block_id): state}
            for block_id, state in form.values.items()
        }
        response = self.sender.interactive(
            {
                "type": "view_submission",
                "trigger_id": self.sender.trigger(),
                "view": {
                    **form.view,
                    "id": form.view_id,
                    "team_id": TEAM_ID,
                    "state": {"values": values},
                    "hash": secrets.token_hex(6),
                },
                "response_urls": [],
            }
        )
        body = json.loads(response.body) if response.body else {}
        if response.status == 200 and body.get("response_action") == "errors":
            fields = inputs(form.view)
            for block_id, error in body["errors"].items():
                number, label = next(
                    (
                        (i, b["label"]["text"])
                        for i, b in enumerate(fields, start=1)
                        if b["block_id"] == block_id
                    ),
                    ("?", block_id),
                )
                # as the form labels it
                self.screen.print(
                    "  ✗ "
                    + _(
                        "field {number} ({field}): {error}", number=number, field=label, error=error
                    )
                )
            return
        if self.by_user.get(form.user) is form:
            del self.by_user[form.user]
        if response.status == 200 and body.get("response_action") == "update":
            self._print_texts(body["view"])  # the form became an answer: shown, then closed
            return
        self.screen.print(
            "  " + _("form sent") if response.status == 200 else f"  (HTTP {response.status})"
        )
