"""Lists of requests and batches: `/invite pending`, `/invite mine`, `/invite status` and the
App Home tab. Pure functions from domain models to Slack blocks, in the language being spoken;
a line of a list is built from a request's or batch's summary (bot/domain/listing.py), which
is what the approvers' list reads from the store."""

from __future__ import annotations

from typing import Any

from bot.domain.listing import Listed, summary
from bot.domain.records import InviteRequest, Status
from bot.i18n import N_, _, ngettext, pgettext
from bot.ui.answers import DEFAULT_COMMAND
from bot.ui.approval import APPROVE, DENY, RETRY, action_buttons, approval_message
from bot.ui.mrkdwn import context, escape, people, section, slack_date

PAGE_SIZE = 20  # two blocks a request, plus header and footer: within Block Kit's 50 per message
MINE_PAGE = PAGE_SIZE * 2  # `/invite mine`: one block a request
HOME_SHOWN = MINE_PAGE  # own requests on the App Home: the first page of `/invite mine`


STATUS_WORDS = {
    Status.PENDING: N_(":inbox_tray: waiting for approval"),
    Status.INVITING: N_(":hourglass_flowing_sand: being invited"),
    Status.INVITED: N_(":envelope: invited"),
    Status.FAILED: N_(":warning: awork refused"),
    Status.DENIED: N_(":no_entry: denied"),
    Status.JOINING: N_(":hourglass_flowing_sand: joining"),
    Status.JOINED: N_(":tada: joined"),
    Status.LAPSED: N_(":hourglass: lapsed"),
    Status.EXPIRED: N_(":hourglass: expired"),
}


# A failure awork did not refuse (its answer lost, or awork unavailable): it may be tried again.
NOT_THROUGH = N_(":warning: did not go through")


def status_words(item: Listed) -> str:
    if item.status == Status.FAILED and item.retryable:
        return _(NOT_THROUGH)
    return _(STATUS_WORDS[Status(item.status)])


def _page(items: list[Any], page: int, size: int) -> tuple[list[Any], int, int]:
    pages = max(1, -(-len(items) // size))
    page = min(max(page, 1), pages)
    return items[(page - 1) * size : page * size], page, pages


BATCH_WORDS = {
    "pending": N_(":inbox_tray: waiting for approval"),
    "running": N_(":hourglass_flowing_sand: being invited"),
    "done": N_(":envelope: done"),
    "denied": N_(":no_entry: denied"),
    "expired": N_(":hourglass: expired"),
}


def batch_words(item: Listed) -> str:
    """A batch's state in a list: a finished one with failures says how many failed."""
    if item.status == "done" and item.failed:
        return ngettext(":warning: done, {n} failed", ":warning: done, {n} failed", item.failed)
    return _(BATCH_WORDS[item.status])


def listed(item: Any) -> Listed:
    """A request or a batch as a list shows it (a summary is taken as it is)."""
    return item if isinstance(item, Listed) else Listed.of(summary(item))


def item_line(item: Any, asked: bool = True) -> str:
    """A request, or a batch (many people in one request), in a list; `asked`: with its id
    and when it was asked (a status card, whose message says both, goes without)."""
    shown = listed(item)
    if shown.is_batch:
        more = ", …" if shown.people > 1 else ""
        line = f"*{people(shown.people)}* ({escape(shown.email)}{more}) — {batch_words(shown)}"
    else:
        who = f"{escape(shown.full_name)} · " if shown.full_name else ""
        line = f"*{who}{escape(shown.email)}* — {status_words(shown)}"
    if not asked:
        return line
    return line + " · " + _("`{id}` · asked {date}", id=shown.id, date=slack_date(shown.created_at))


def page_note(
    asked: int | None, shown: int, pages: int, wrong: str | None, example: str
) -> str | None:
    """Why the page shown is not the one asked for: a word that is no page number (`wrong`,
    as typed; page 1 is shown), or a page past the last (`asked`; the last is shown).
    `example`: the command that asks for a page (`/invite pending 2`)."""
    if wrong is not None:
        word = escape(wrong.replace("`", "'"))
        return _(
            ":warning: `{word}` is not a page number (try `{example}`); here is page 1.",
            word=word,
            example=example,
        )
    if asked is not None and asked > shown:
        return _(
            ":warning: There is no page {page}; the last page is {last}.", page=asked, last=pages
        )
    return None


def pending_list(
    requests: list[Any],
    page: int = 1,
    command: str = DEFAULT_COMMAND,
    wrong: str | None = None,
) -> list[dict[str, Any]]:
    """`/invite pending`: open requests (and batches) with their buttons, a page at a time.
    A page past the last shows the last, and `wrong` (a word that is no page number) the
    first - each saying so."""
    shown, number, pages = _page([listed(item) for item in requests], page, PAGE_SIZE)
    result = [section(_("*Waiting for a decision: {count}*", count=len(requests)))]
    note = page_note(page, number, pages, wrong, f"{command} pending 2")
    if note:
        result.append(context(note))
    approve, deny = pgettext("button", "Approve"), pgettext("button", "Deny")
    for request in shown:
        result.append(section(item_line(request)))
        if request.is_batch:
            count = request.people
            label = ngettext("Approve all {n}", "Approve all {n}", count) if count > 1 else approve
            result.append(
                action_buttons(request, (APPROVE, label, "primary"), (DENY, deny, "danger"))
            )
        elif request.status == Status.PENDING:
            result.append(
                action_buttons(request, (APPROVE, approve, "primary"), (DENY, deny, "danger"))
            )
        else:
            result.append(
                action_buttons(request, (RETRY, pgettext("button", "Try again"), "primary"))
            )
    if pages > 1:
        result.append(context(more_pages(number, pages, f"{command} pending {number % pages + 1}")))
    return result


def more_pages(page: int, pages: int, next_command: str) -> str:
    return _(
        "Page {page} of {pages}. More: `{command}`", page=page, pages=pages, command=next_command
    )


def my_list(
    shown: list[Any],
    page: int = 1,
    command: str = DEFAULT_COMMAND,
    total: int | None = None,
    asked: int | None = None,
    wrong: str | None = None,
) -> list[dict[str, Any]]:
    """`/invite mine`: one page (`shown`, page `page`) of a requester's own requests and
    batches with their status, of `total` in all. `asked`: the page asked for (past the last,
    `page` is the last), `wrong`: a word that was no page number (`page` is 1) - said above."""
    total = len(shown) if total is None else total
    pages = max(1, -(-total // MINE_PAGE))
    result = [section(_("*Your invitation requests: {count}*", count=total))]
    note = page_note(asked, page, pages, wrong, f"{command} mine 2")
    if note:
        result.append(context(note))
    result += [section(item_line(request)) for request in shown]
    if pages > 1:
        result.append(context(more_pages(page, pages, f"{command} mine {page % pages + 1}")))
    if not total:
        result.append(context(_("None yet. `{command}` asks for one.", command=command)))
    return result


def status_card(request: InviteRequest) -> list[dict[str, Any]]:
    """`/invite status <id>`: one request, as its approval message shows it (which names its
    id and when it was asked: the line above does not again)."""
    _title, message = approval_message(request)
    actions_free = [block for block in message if block.get("type") != "actions"]
    return [section(item_line(request, asked=False)), *actions_free]


def home_view(
    waiting: list[Any],
    mine: list[Any],
    approver: bool,
    command: str = DEFAULT_COMMAND,
    mine_total: int | None = None,
) -> dict[str, Any]:
    """The App Home tab: 'Waiting for you' for approvers, 'Your requests' for everyone (the
    newest page of them, `mine`, of `mine_total`). `command`: the slash command as installed
    (last seen in a command)."""
    result: list[dict[str, Any]] = []
    if approver:
        result += pending_list(waiting, command=command)[:60]
        result.append({"type": "divider"})
    result += home_mine(mine, command, mine_total)
    return {"type": "home", "blocks": result[:100]}


def home_mine(
    mine: list[Any], command: str = DEFAULT_COMMAND, total: int | None = None
) -> list[dict[str, Any]]:
    """'Your requests' on the App Home: the newest page of them, and when there are more, how
    many and the command that lists the rest (within the 100 blocks of a Home tab)."""
    total = len(mine) if total is None else total
    shown = my_list(mine[:HOME_SHOWN], command=command, total=min(total, HOME_SHOWN))
    if total <= HOME_SHOWN:
        return shown
    shown[0] = section(_("*Your invitation requests: {count}*", count=total))
    return [
        *shown,
        context(
            _(
                "Showing the newest {shown} of {total}. `{command} mine` lists them all, "
                "a page at a time: `{command} mine 2` shows the next.",
                shown=HOME_SHOWN,
                total=total,
                command=command,
            )
        ),
    ]
