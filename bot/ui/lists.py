"""Lists of requests and batches: `/invite pending`, `/invite mine`, `/invite status` and the
App Home tab. Pure functions from domain models to Slack blocks; a line of a list is built
from a request's or batch's summary (bot/domain/listing.py), which is what the approvers'
list reads from the store."""

from __future__ import annotations

from typing import Any

from bot.domain.listing import Listed, summary
from bot.domain.records import InviteRequest, Status
from bot.ui.answers import DEFAULT_COMMAND
from bot.ui.approval import APPROVE, DENY, RETRY, action_buttons, approval_message
from bot.ui.mrkdwn import context, escape, people, section, slack_date

PAGE_SIZE = 20  # two blocks a request, plus header and footer: within Block Kit's 50 per message
MINE_PAGE = PAGE_SIZE * 2  # `/invite mine`: one block a request
HOME_SHOWN = MINE_PAGE  # own requests on the App Home: the first page of `/invite mine`


STATUS_WORDS = {
    Status.PENDING: ":inbox_tray: waiting for approval",
    Status.INVITING: ":hourglass_flowing_sand: being invited",
    Status.INVITED: ":envelope: invited",
    Status.FAILED: ":warning: awork refused",
    Status.DENIED: ":no_entry: denied",
    Status.JOINING: ":hourglass_flowing_sand: joining",
    Status.JOINED: ":tada: joined",
    Status.LAPSED: ":hourglass: lapsed",
    Status.EXPIRED: ":hourglass: expired",
}


# A failure awork did not refuse (its answer lost, or awork unavailable): it may be tried again.
NOT_THROUGH = ":warning: did not go through"


def status_words(item: Listed) -> str:
    if item.status == Status.FAILED and item.retryable:
        return NOT_THROUGH
    return STATUS_WORDS[Status(item.status)]


def _page(items: list[Any], page: int, size: int) -> tuple[list[Any], int, int]:
    pages = max(1, -(-len(items) // size))
    page = min(max(page, 1), pages)
    return items[(page - 1) * size : page * size], page, pages


BATCH_WORDS = {
    "pending": ":inbox_tray: waiting for approval",
    "running": ":hourglass_flowing_sand: being invited",
    "done": ":envelope: done",
    "denied": ":no_entry: denied",
    "expired": ":hourglass: expired",
}


def listed(item: Any) -> Listed:
    """A request or a batch as a list shows it (a summary is taken as it is)."""
    return item if isinstance(item, Listed) else Listed.of(summary(item))


def item_line(item: Any) -> str:
    """A request, or a batch (many people in one request), in a list."""
    shown = listed(item)
    asked = f"`{shown.id}` · asked {slack_date(shown.created_at)}"
    if shown.is_batch:
        more = ", …" if shown.people > 1 else ""
        return (
            f"*{people(shown.people)}* ({escape(shown.email)}{more}) — "
            f"{BATCH_WORDS[shown.status]} · {asked}"
        )
    who = f"{escape(shown.full_name)} · " if shown.full_name else ""
    return f"*{who}{escape(shown.email)}* — {status_words(shown)} · {asked}"


def pending_list(
    requests: list[Any], page: int = 1, command: str = DEFAULT_COMMAND
) -> list[dict[str, Any]]:
    """`/invite pending`: open requests (and batches) with their buttons, a page at a time."""
    shown, page, pages = _page([listed(item) for item in requests], page, PAGE_SIZE)
    result = [section(f"*Waiting for a decision: {len(requests)}*")]
    for request in shown:
        result.append(section(item_line(request)))
        if request.is_batch:
            count = request.people
            approve = f"Approve all {count}" if count > 1 else "Approve"
            result.append(
                action_buttons(request, (APPROVE, approve, "primary"), (DENY, "Deny", "danger"))
            )
        elif request.status == Status.PENDING:
            result.append(
                action_buttons(request, (APPROVE, "Approve", "primary"), (DENY, "Deny", "danger"))
            )
        else:
            result.append(action_buttons(request, (RETRY, "Try again", "primary")))
    if pages > 1:
        result.append(
            context(f"Page {page} of {pages}. More: `{command} pending {page % pages + 1}`")
        )
    return result


def my_list(
    shown: list[Any], page: int = 1, command: str = DEFAULT_COMMAND, total: int | None = None
) -> list[dict[str, Any]]:
    """`/invite mine`: one page (`shown`, page `page`) of a requester's own requests and
    batches with their status, of `total` in all."""
    total = len(shown) if total is None else total
    pages = max(1, -(-total // MINE_PAGE))
    result = [section(f"*Your invitation requests: {total}*")]
    result += [section(item_line(request)) for request in shown]
    if pages > 1:
        result.append(context(f"Page {page} of {pages}. More: `{command} mine {page % pages + 1}`"))
    if not total:
        result.append(context(f"None yet. `{command}` asks for one."))
    return result


def status_card(request: InviteRequest) -> list[dict[str, Any]]:
    """`/invite status <id>`: one request, as its approval message shows it."""
    _, message = approval_message(request)
    actions_free = [block for block in message if block.get("type") != "actions"]
    return [section(item_line(request)), *actions_free]


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
    shown[0] = section(f"*Your invitation requests: {total}*")
    return [
        *shown,
        context(
            f"Showing the newest {HOME_SHOWN} of {total}. `{command} mine` lists them all, "
            f"a page at a time: `{command} mine 2` shows the next."
        ),
    ]
