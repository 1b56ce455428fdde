"""mrkdwn and the Block Kit pieces that carry it: the bottom of the Block Kit builders, pure
functions that every other builder module (`blocks`, `forms`, `lists`, `bulk_blocks`) uses.

Every piece of user text goes through `escape` before it is put into mrkdwn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.domain.records import MessageRef
from bot.i18n import N_, _, ngettext
from bot.i18n.dates import slack_date

__all__ = ["slack_date"]  # dates are bot/i18n/dates.py's; builders import them from here


def escape(text: object) -> str:
    """Make user text inert in mrkdwn: `<!channel>`, `<@U1>` and links become plain text."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain(text: str, limit: int = 150) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:limit], "emoji": True}


TEXT_MAX = 3000  # Slack's limit on a section's (and a context element's) text


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text[:TEXT_MAX]}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": mrkdwn(text)}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [mrkdwn(text)]}


def sections(lines: list[str], kind: Callable[[str], dict[str, Any]] = section) -> list[dict]:
    """Lines as few sections (or `kind` blocks) as Slack's 3,000 characters each allow: long
    text is split over blocks, never cut - the last lines are the ones approvers decide on."""
    result: list[dict[str, Any]] = []
    current = ""
    for line in lines:
        for piece in pieces(line):
            if current and len(current) + 1 + len(piece) > TEXT_MAX:
                result.append(kind(current))
                current = piece
            else:
                current = f"{current}\n{piece}" if current else piece
    if current:
        result.append(kind(current))
    return result


def pieces(line: str, limit: int = TEXT_MAX) -> list[str]:
    """A line longer than `limit` broken into parts that fit, at a space where there is one,
    never inside an entity (`&amp;`) or a `<…>` mention or link."""
    result = []
    while len(line) > limit:
        cut = line.rfind(" ", limit // 2, limit) + 1 or limit
        amp, lt = line.rfind("&", 0, cut), line.rfind("<", 0, cut)
        if amp > 0 and ";" not in line[amp:cut]:
            cut = amp
        if lt > 0 and ">" not in line[lt:cut]:
            cut = min(cut, lt)
        result.append(line[:cut].rstrip())
        line = line[cut:]
    return [*result, line]


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """English count and noun, for the command line's own reports ("3 rules"); what a Slack
    user reads counts with `ngettext`."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def people(count: int) -> str:
    """ "1 person", "3 people" - in the language being spoken."""
    return ngettext("{n} person", "{n} people", count)


def shortened(names: list[str], shown: int) -> str:
    """Escaped names, the first `shown` of them and "and N more"."""
    listed = ", ".join(escape(name) for name in names[:shown])
    more = len(names) - shown
    if more <= 0:
        return listed
    return ngettext("{names} and {n} more", "{names} and {n} more", more, names=listed)


def fitted(name: str, marker: str, limit: int) -> str:
    """`name` + `marker` within `limit` characters: the name is cut, never the marker."""
    if len(name) + len(marker) <= limit:
        return name + marker
    return name[: max(0, limit - len(marker) - 1)] + "…" + marker


def asked_in(channel: str | None) -> str:
    """For news that reaches a requester by DM: a line naming the channel where they asked
    (nothing when unknown, or when that was a direct message)."""
    if not channel or channel.startswith("D"):
        return ""
    where = f"<#{channel}>"
    return "\n" + _("You asked in {channel}.", channel=where)


def approved_by(record: Any, nobody: str | None = None) -> str:
    """Who approved a request or a batch: both approvers of an admin role's two approvals,
    else the one who decided - or the policy, naming its rule (capitalised like `nobody`)."""
    nobody = nobody or _("an approver")
    if str(getattr(record, "approval_rule", "")) == "policy":
        rule = escape(record.policy_rule or "approved_domains")
        if nobody[:1].isupper():
            return _("The policy ({rule})", rule=rule)
        return _("the policy ({rule})", rule=rule)
    given = list(dict.fromkeys(record.approvals))
    if len(given) >= 2:
        first, *others = (f"<@{user}>" for user in given)
        return _("{first} and {second}", first=first, second=" ".join(others))
    return f"<@{record.decided_by}>" if record.decided_by else nobody


def deciders(record: Any) -> int:
    """How many `approved_by` names: 2 for an admin role's two approvals, else 1 (for the
    verb's number: "<@A> und <@B> haben genehmigt")."""
    if str(getattr(record, "approval_rule", "")) == "policy":
        return 1
    return 2 if len(set(record.approvals)) >= 2 else 1


def policy_note(record: Any) -> str | None:
    """The policy's rule behind a request or a batch (INVITE_POLICY), for its messages: an
    approved domain, or the route whose approvers decide it. None without one."""
    rule = getattr(record, "policy_rule", None)
    if not rule or rule == "default":
        return None
    if str(getattr(record, "approval_rule", "")) == "policy":
        return _(":scroll: Policy: `{rule}` — invited without an approver", rule=escape(rule))
    if getattr(record, "route", None):
        return _(
            ":scroll: Policy: route `{route}` — decided by its approvers",
            route=escape(record.route),
        )
    return _(":scroll: Policy: `{rule}`", rule=escape(rule))


def route_words(record: Any) -> str:
    """For the requester's "waiting" notice: which route's approvers decide (INVITE_POLICY),
    or nothing when no route does."""
    if not getattr(record, "route", None):
        return ""
    return " " + _(
        "It goes to the approvers of `{route}` (policy rule: routes).", route=escape(record.route)
    )


OPTION_MAX = 75  # Slack's limit on an option's text


def option(value: str, text: str) -> dict[str, Any]:
    return {"text": plain(text, OPTION_MAX), "value": value[:150]}


def permalink(team_domain: str | None, ref: MessageRef | None) -> str | None:
    """A link to a message, built the way Slack's own permalinks look (no API call)."""
    if not team_domain or ref is None:
        return None
    return f"https://{team_domain}.slack.com/archives/{ref.channel}/p{ref.ts.replace('.', '')}"


# --- sandbox mode ----------------------------------------------------------------------------

SANDBOX_NOTE = N_(":test_tube: *sandbox — no real invitation*")
SANDBOX_SUFFIX = N_(" (sandbox — no real invitation)")  # after a message's text


def label_sandbox(payload: dict[str, Any], block_limit: int = 50) -> dict[str, Any]:
    """A message (or a modal, with `block_limit` 100) marked as coming from the awork sandbox."""
    labelled = dict(payload)
    if "text" in labelled or "blocks" not in labelled:
        text = labelled.get("text") or ""
        labelled["text"] = f"{text}{_(SANDBOX_SUFFIX)}".strip()
    if labelled.get("blocks") is not None:
        labelled["blocks"] = [context(_(SANDBOX_NOTE)), *labelled["blocks"]][:block_limit]
    return labelled
