"""What the Slack listeners need, handed to each `register(app, deps)`."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.bulk import BatchService
from bot.catalog import Catalog
from bot.config import Settings
from bot.service import InviteService

if TYPE_CHECKING:
    from handlers.notify import Courier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deps:
    settings: Settings
    service: InviteService
    catalog: Catalog
    courier: Courier
    batches: BatchService
    followups: Executor

    def later(self, work: Callable[..., Any], *args: Any) -> None:
        """Run `work` after the ack, in the follow-up pool.

        Listeners ack inline (Bolt's `process_before_response`), so Slack has its answer as
        soon as the listener returns; whatever is slow - opening a modal, posting, calling
        awork - goes here. The context (the request id in the log) goes along."""
        context = contextvars.copy_context()

        def run() -> None:
            try:
                context.run(work, *args)
            except Exception as exc:  # logged for the operator; Slack already has its ack
                log.error("follow-up work failed: %s", type(exc).__name__, exc_info=exc)

        self.followups.submit(run)
