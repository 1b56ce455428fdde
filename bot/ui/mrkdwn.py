"""mrkdwn and the Block Kit pieces that carry it: the bottom of the Block Kit builders, pure
functions that every other builder module (`blocks`, `forms`, `lists`, `bulk_blocks`) uses.

Every piece of user text goes through `escape` before it is put into mrkdwn.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.domain.records import MessageRef


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
    """A count with its noun in agreement: "1 person", "3 people"."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def people(count: int) -> str:
    return counted(count, "person", "people")


def shortened(names: list[str], shown: int) -> str:
    """Escaped names, the first `shown` of them and "and N more"."""
    listed = ", ".join(escape(name) for name in names[:shown])
    return listed + (f" and {len(names) - shown} more" if len(names) > shown else "")


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
    return f"\nYou asked in <#{channel}>."


def approved_by(record: Any, nobody: str = "an approver") -> str:
    """Who approved a request or a batch: both approvers of an admin role's two approvals,
    else the one who decided - or the policy, naming its rule (capitalised like `nobody`)."""
    if str(getattr(record, "approval_rule", "")) == "policy":
        policy = "The policy" if nobody[:1].isupper() else "the policy"
        return f"{policy} ({escape(record.policy_rule or 'approved_domains')})"
    given = list(dict.fromkeys(record.approvals))
    if len(given) >= 2:
        return " and ".join(f"<@{user}>" for user in given)
    return f"<@{record.decided_by}>" if record.decided_by else nobody


def policy_note(record: Any) -> str | None:
    """The policy's rule behind a request or a batch (INVITE_POLICY), for its messages: an
    approved domain, or the route whose approvers decide it. None without one."""
    rule = getattr(record, "policy_rule", None)
    if not rule or rule == "default":
        return None
    if str(getattr(record, "approval_rule", "")) == "policy":
        return f":scroll: Policy: `{escape(rule)}` — invited without an approver"
    if getattr(record, "route", None):
        return f":scroll: Policy: route `{escape(record.route)}` — decided by its approvers"
    return f":scroll: Policy: `{escape(rule)}`"


def route_words(record: Any) -> str:
    """For the requester's "waiting" notice: which route's approvers decide (INVITE_POLICY),
    or nothing when no route does."""
    if not getattr(record, "route", None):
        return ""
    return f" It goes to the approvers of `{escape(record.route)}` (policy rule: routes)."


OPTION_MAX = 75  # Slack's limit on an option's text


def option(value: str, text: str) -> dict[str, Any]:
    return {"text": plain(text, OPTION_MAX), "value": value[:150]}


def slack_date(when: datetime) -> str:
    """A date Slack shows in each reader's own time zone."""
    stamp = int(when.timestamp())
    fallback = when.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{stamp}^{{date_short_pretty}} at {{time}}|{fallback}>"


def permalink(team_domain: str | None, ref: MessageRef | None) -> str | None:
    """A link to a message, built the way Slack's own permalinks look (no API call)."""
    if not team_domain or ref is None:
        return None
    return f"https://{team_domain}.slack.com/archives/{ref.channel}/p{ref.ts.replace('.', '')}"


# --- sandbox mode ----------------------------------------------------------------------------

SANDBOX_NOTE = ":test_tube: *sandbox — no real invitation*"
SANDBOX_SUFFIX = " (sandbox — no real invitation)"  # after a message's text


def label_sandbox(payload: dict[str, Any], block_limit: int = 50) -> dict[str, Any]:
    """A message (or a modal, with `block_limit` 100) marked as coming from the awork sandbox."""
    labelled = dict(payload)
    if "text" in labelled or "blocks" not in labelled:
        text = labelled.get("text") or ""
        labelled["text"] = f"{text}{SANDBOX_SUFFIX}".strip()
    if labelled.get("blocks") is not None:
        labelled["blocks"] = [context(SANDBOX_NOTE), *labelled["blocks"]][:block_limit]
    return labelled
